/**
 * Shared pieces of the end-to-end tests: a per-test scope that owns processes, temp dirs and
 * MongoDB databases (cleaned up after the test, with every server's output printed when the
 * test did not pass), a JSON HTTP client with timeouts, a server-sent-events client and a
 * bounded poll.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient } from 'mongodb';
import { mongoTestTarget } from '../support/mongodb-server.ts';
import { startOttoProcess, type OttoProcess, type StartOttoProcessOptions } from '../support/otto-process.ts';

/** Time limit of one HTTP request made by a test. */
const REQUEST_TIMEOUT_MS = 20_000;

/** What one test started; everything is stopped and removed after the test. */
export class Scope {
  /** Every process started in the test, including stopped ones (their output is dumped on failure). */
  readonly processes: OttoProcess[] = [];
  private readonly dirs: string[] = [];
  private readonly databases: Array<{ uri: string; name: string }> = [];
  /** Starts still in flight (e.g. the other half of a Promise.all that already failed). */
  private readonly starting = new Set<Promise<unknown>>();
  passed = false;

  /** Starts an Otto process that is stopped after the test if still running. */
  async start(options: StartOttoProcessOptions): Promise<OttoProcess> {
    // When it fails to start, the error message holds its captured output.
    const start = startOttoProcess(options).then((otto) => {
      this.processes.push(otto);
      return otto;
    });
    const settled = start.catch(() => {});
    this.starting.add(settled);
    void settled.finally(() => this.starting.delete(settled));
    return start;
  }

  /** A fresh temp dir, removed after the test. */
  async tempDir(prefix = 'otto-e2e-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  /** A fresh MongoDB database name on `uri`, dropped after the test. */
  mongoDatabase(uri: string): string {
    const name = `otto_e2e_${randomBytes(6).toString('hex')}`;
    this.databases.push({ uri, name });
    return name;
  }

  /** Every process's captured output, for a failure report. */
  dump(): string {
    return this.processes.map((p) => p.output()).join('\n');
  }

  /** Waits for starts still in flight (each ends listening or dead within its ready timeout). */
  async settle(): Promise<void> {
    await Promise.all([...this.starting]);
  }

  /** Stops every process (SIGTERM, then SIGKILL), removes temp dirs and drops databases. Never throws. */
  async cleanup(): Promise<void> {
    await this.settle();
    await Promise.all(this.processes.map((p) => p.stop().catch(() => p.kill().catch(() => {}))));
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true }).catch(() => {});
    for (const { uri, name } of this.databases) {
      const client = new MongoClient(uri, { directConnection: true, serverSelectionTimeoutMS: 5_000 });
      try {
        await client.db(name).dropDatabase();
      } catch (error) {
        process.stderr.write(`could not drop MongoDB database ${name}: ${(error as Error).message}\n`);
      } finally {
        await client.close().catch(() => {});
      }
    }
  }
}

/**
 * Runs `body` with a fresh scope. After the test (passed, failed or timed out) the scope is
 * cleaned up; unless the body finished, every server's output is printed to stderr first.
 */
export async function withScope(t: TestContext, body: (scope: Scope) => Promise<void>): Promise<void> {
  const scope = new Scope();
  t.after(async () => {
    await scope.settle();
    if (!scope.passed && scope.processes.length > 0) {
      process.stderr.write(`\n===== ${t.fullName}: server output =====\n${scope.dump()}\n===== end of server output =====\n`);
    }
    await scope.cleanup();
  });
  await body(scope);
  scope.passed = true;
}

/** The MongoDB-wire test server of this test file (OTTO_TEST_MONGODB_URI or one started here), or why not. */
let pendingTarget: Promise<{ uri: string; stop(): Promise<void> } | { skip: string }> | undefined;
export function mongoTarget(): Promise<{ uri: string; stop(): Promise<void> } | { skip: string }> {
  // scripts/run-tests.js already tried to provide one and said why not: don't build again.
  const skipped = process.env.OTTO_TEST_MONGODB_URI ? undefined : process.env.OTTO_TEST_MONGODB_SKIP;
  pendingTarget ??= (skipped ? Promise.resolve({ skip: skipped }) : mongoTestTarget()).then((target) => {
    if ('skip' in target) process.stderr.write(`\n!!! ${target.skip}\n`);
    return target;
  });
  return pendingTarget;
}
/** Stops a FerretDB started by {@link mongoTarget} (nothing for OTTO_TEST_MONGODB_URI). */
export async function stopMongoTarget(): Promise<void> {
  const target = await pendingTarget?.catch(() => undefined);
  if (target && !('skip' in target)) await target.stop();
}

export interface ApiResponse<T = any> {
  status: number;
  json: T;
  text: string;
  headers: Headers;
}

/** One JSON request with a time limit. Never throws for an HTTP status; throws on network errors and timeouts. */
export async function api<T = any>(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = REQUEST_TIMEOUT_MS): Promise<ApiResponse<T>> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text, headers: response.headers };
}

/** Like {@link api}, but asserts the status and returns the JSON. */
export async function expectJson<T = any>(status: number, base: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await api<T>(base, method, path, body);
  assert.equal(response.status, status, `${method} ${path} → ${response.status}: ${response.text.slice(0, 2000)}`);
  return response.json;
}

/** Calls `probe` until it returns a value other than undefined, or `limitMs` passes. Returns the value and how long it took. */
export async function pollUntil<T>(limitMs: number, probe: () => Promise<T | undefined>, intervalMs = 25): Promise<{ value: T | undefined; ms: number }> {
  const started = performance.now();
  for (;;) {
    const value = await probe();
    const ms = performance.now() - started;
    if (value !== undefined || ms > limitMs) return { value, ms };
    await sleep(intervalMs);
  }
}

/** One server-sent event. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * A minimal server-sent-events client over fetch: parses `id:`, `event:` and `data:` lines,
 * skips comments, and collects events until closed.
 */
export class SseClient {
  readonly events: SseEvent[] = [];
  /** The `id` of the last event received (what a reconnect sends as Last-Event-ID). */
  lastEventId: string | undefined;
  /** Comment lines seen (e.g. `connected`). */
  readonly comments: string[] = [];
  status = 0;
  contentType = '';
  private readonly controller = new AbortController();
  private reading: Promise<void> = Promise.resolve();
  private waiters: Array<() => void> = [];
  private ended = false;
  error: unknown;

  /** Connects and resolves once the response headers arrived. */
  static async connect(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient();
    // The time limit covers the response headers only: the stream itself stays open until close().
    const connectTimer = setTimeout(() => client.controller.abort(new Error(`no response from ${url} within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
    let response: globalThis.Response;
    try {
      response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: client.controller.signal });
    } finally {
      clearTimeout(connectTimer);
    }
    client.status = response.status;
    client.contentType = response.headers.get('content-type') ?? '';
    if (!response.ok || !response.body) {
      const text = await response.text().catch(() => '');
      throw new Error(`GET ${url} → ${response.status}: ${text.slice(0, 1000)}`);
    }
    client.reading = client.read(response.body);
    return client;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    let current: { id?: string; event?: string; data: string[] } = { data: [] };
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let newline: number;
        while ((newline = buffer.search(/\r\n|\n|\r/)) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
          if (line === '') {
            if (current.data.length > 0) {
              const event: SseEvent = { event: current.event ?? 'message', data: current.data.join('\n'), ...(current.id !== undefined ? { id: current.id } : {}) };
              if (current.id !== undefined) this.lastEventId = current.id;
              this.events.push(event);
              this.wake();
            }
            current = { data: [] };
            continue;
          }
          if (line.startsWith(':')) {
            this.comments.push(line.slice(1).trim());
            this.wake();
            continue;
          }
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'id') current.id = value;
          else if (field === 'event') current.event = value;
          else if (field === 'data') current.data.push(value);
        }
      }
    } catch (error) {
      if (!this.controller.signal.aborted) this.error = error;
    } finally {
      this.ended = true;
      this.wake();
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** The `message` events' data, parsed. */
  messages<T = any>(): T[] {
    return this.events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data) as T);
  }

  /** Waits until `condition()` holds, the stream ends, or `limitMs` passes; returns whether it holds. */
  async waitFor(condition: () => boolean, limitMs: number): Promise<boolean> {
    const deadline = performance.now() + limitMs;
    while (!condition()) {
      const left = deadline - performance.now();
      if (left <= 0 || this.ended) return condition();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** Closes the connection and waits for the reader to finish. */
  async close(): Promise<void> {
    this.controller.abort();
    await this.reading;
  }
}
