/**
 * The page's one way to talk to Otto. Routes present in the OpenAPI document the build read
 * are called through `api` (openapi-fetch, typed by the generated `openapi.d.ts`, so a route or
 * field that changes breaks the build); routes other parts of Otto are still adding are called
 * through `apiJson` with the hand-written shapes in `types.ts`, and shown only when the running
 * server's /openapi.json lists them (`hasRoute`).
 *
 * The API key, when one is needed, lives in sessionStorage only: it is gone when the tab closes.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './openapi';

const KEY_STORAGE = 'otto.api_key';

/** The API key for this browser session, if the user gave one. */
export function apiKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

/** Keeps `key` for this browser session (sessionStorage), or forgets it with `null`. */
export function setApiKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY_STORAGE);
  else sessionStorage.setItem(KEY_STORAGE, key);
}

/** An error answer from Otto: `{error: {code, message, field?}}` with its HTTP status. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

type Listener = () => void;

/** Tiny observable value, for state the whole page shares (auth failures, degraded header). */
function observable<T>(initial: T) {
  let value = initial;
  const listeners = new Set<Listener>();
  return {
    get: () => value,
    set(next: T) {
      if (Object.is(next, value)) return;
      value = next;
      for (const l of listeners) l();
    },
    subscribe(listener: Listener): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** True after any response carried `Otto-Degraded` (false again after one without it). */
export const degradedHeader = observable(false);
/** Bumped each time the server answers 401: the page then asks for a key. */
export const unauthorized = observable(0);

function authHeaders(): Record<string, string> {
  const key = apiKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

function observe(response: Response): void {
  degradedHeader.set(response.headers.has('otto-degraded'));
  if (response.status === 401) unauthorized.set(unauthorized.get() + 1);
}

const middleware: Middleware = {
  onRequest({ request }) {
    const key = apiKey();
    if (key) request.headers.set('authorization', `Bearer ${key}`);
    return request;
  },
  onResponse({ response }) {
    observe(response);
    return response;
  },
};

/** The typed client (openapi-fetch) for routes in the generated OpenAPI types. */
export const api = createClient<paths>({ baseUrl: '' });
api.use(middleware);

/** Turns an error body into an ApiError. */
export function toApiError(status: number, body: unknown): ApiError {
  const error = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } } | undefined)?.error;
  if (error && typeof error.message === 'string') {
    return new ApiError(status, typeof error.code === 'string' ? error.code : 'ERROR', error.message, typeof error.field === 'string' ? error.field : undefined);
  }
  return new ApiError(status, 'ERROR', status >= 500 ? 'Otto could not answer (server error); try again shortly' : `request failed (${status})`);
}

/** Unwraps an openapi-fetch result: its data, or throws ApiError. */
export async function ok<T>(promise: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await promise;
  } catch {
    throw new ApiError(0, 'NETWORK', 'Otto cannot be reached; check that it is running');
  }
  if (!result.response.ok) throw toApiError(result.response.status, result.error);
  return result.data as T;
}

/**
 * Calls a JSON route that the generated types may not have yet (see `hasRoute`). Throws ApiError.
 * Returns undefined for 204.
 */
export async function apiJson<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, options: { query?: Record<string, string>; body?: unknown } = {}): Promise<T> {
  const url = options.query ? `${path}?${new URLSearchParams(options.query).toString()}` : path;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: { ...authHeaders(), ...(options.body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'Otto cannot be reached; check that it is running');
  }
  observe(response);
  if (response.status === 204) return undefined as T;
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) throw toApiError(response.status, body);
  return body as T;
}

let routes: Promise<Set<string>> | undefined;

/**
 * The routes of the running server, as `METHOD /path/{param}` from its /openapi.json (fetched
 * once per page load; refetched after `forgetRoutes`). Throws ApiError (401 without a valid key).
 */
export function serverRoutes(): Promise<Set<string>> {
  routes ??= apiJson<{ paths?: Record<string, Record<string, unknown>> }>('GET', '/openapi.json')
    .then((doc) => {
      const set = new Set<string>();
      for (const [path, item] of Object.entries(doc.paths ?? {})) for (const method of Object.keys(item)) set.add(`${method.toUpperCase()} ${path}`);
      return set;
    })
    .catch((error: unknown) => {
      routes = undefined;
      throw error;
    });
  return routes;
}

/** Forgets the cached route list (after signing in). */
export function forgetRoutes(): void {
  routes = undefined;
}

/** One parsed server-sent event. */
export interface StreamEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * Follows a server-sent event stream with fetch (so the API key travels as a header, which
 * EventSource cannot send), reconnecting with `Last-Event-ID` after a drop. Returns a stop function.
 */
export function followEvents(args: { path: string; lastEventId?: string; onEvent: (event: StreamEvent) => void; onState?: (state: 'open' | 'retrying') => void }): () => void {
  const controller = new AbortController();
  let lastId = args.lastEventId;
  let delay = 500;
  const run = async () => {
    while (!controller.signal.aborted) {
      try {
        const response = await fetch(args.path, {
          headers: { accept: 'text/event-stream', ...authHeaders(), ...(lastId !== undefined ? { 'last-event-id': lastId } : {}) },
          signal: controller.signal,
        });
        observe(response);
        if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
        args.onState?.('open');
        delay = 500;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event: StreamEvent = { id: undefined, event: 'message', data: '' };
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (field === 'id') event.id = text;
              else if (field === 'event') event.event = text;
              else if (field === 'data') data.push(text);
            }
            if (data.length === 0) continue;
            event.data = data.join('\n');
            if (event.id !== undefined) lastId = event.id;
            args.onEvent(event);
          }
        }
      } catch {
        if (controller.signal.aborted) return;
      }
      if (controller.signal.aborted) return;
      args.onState?.('retrying');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  };
  void run();
  return () => controller.abort();
}
