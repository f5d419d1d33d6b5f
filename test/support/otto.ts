import { loadConfig } from '../../src/config.ts';
import type { Provider } from '../../src/engine/index.ts';
import { createOtto, type Otto } from '../../src/http/otto.ts';

/** Builds a whole Otto on the memory engine (or the given env), for `app.inject()` tests. */
export async function testOtto(env: NodeJS.ProcessEnv = {}, options: { provider?: Provider } = {}): Promise<Otto> {
  return createOtto({ config: loadConfig({ OTTO_STORAGE: 'memory', OTTO_SYNC_INTERVAL_MS: '50', ...env }), provider: options.provider });
}

/** JSON request helper over inject. */
export async function call(otto: Otto, method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await otto.app.inject({ method: method as 'GET', url, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers }, payload: body === undefined ? undefined : JSON.stringify(body) });
  let json: any;
  try {
    json = response.json();
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, json, headers: response.headers, body: response.body };
}
