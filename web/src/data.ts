/** Data shared by several views. */
import { api, ok } from './api/client';
import type { Bot } from './api/types';

type Listener = () => void;
const botListeners = new Set<Listener>();

/** Every bot the caller can see (Otto first), following the `Link` pages. */
export async function listBots(): Promise<Bot[]> {
  const bots: Bot[] = [];
  let after: string | undefined;
  for (let page = 0; page < 50; page++) {
    const { data, response, error } = await api.GET('/bots', { params: { query: { limit: 200, ...(after ? { after } : {}) } } });
    if (!response.ok) await ok(Promise.resolve({ data, response, error }));
    bots.push(...(data ?? []));
    after = response.headers.get('otto-next-cursor') ?? undefined;
    if (!after) break;
  }
  return bots;
}

/** Tells every bot list to refetch (after the builder or a form changed bots). */
export function botsChanged(): void {
  for (const l of botListeners) l();
}

/** Calls `listener` whenever bots may have changed. */
export function onBotsChanged(listener: Listener): () => void {
  botListeners.add(listener);
  return () => botListeners.delete(listener);
}
