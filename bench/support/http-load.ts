/**
 * A small closed-loop HTTP load generator on node:http: `connections` workers, each with one
 * request in flight at a time over a keep-alive Agent (so, at most `connections` sockets),
 * sending until the deadline or until `maxRequests` have been sent, whichever comes first.
 * Loopback targets only.
 */
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { percentile } from './figures.ts';

/** One request to send: the n-th of the run (0-based) decides it. */
export interface LoadRequest {
  method: 'GET' | 'POST';
  path: string;
  /** JSON body; sent with content-type application/json. */
  body?: unknown;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
}

export interface LoadResult {
  /** Responses with a 2xx status. */
  ok: number;
  /** Non-2xx responses and failed requests (connection errors, timeouts). */
  errors: number;
  /** Count per status code, or per error code for failed requests (e.g. `ECONNRESET`, `timeout`). */
  outcomes: Record<string, number>;
  /** Latency of each 2xx response, in ms (from sending to the end of the body). */
  latenciesMs: number[];
  /** From the first request to the last response, in ms. */
  elapsedMs: number;
  /** The first few error bodies/messages, for diagnosis. */
  samples: string[];
}

/** Upper bound on the request rate `compareLoads` lets a slice reach (a guard, far above what a server here does). */
const MAX_REQUESTS_PER_S = 200_000;

/** A keep-alive pool of up to `connections` sockets to one target. Destroy it when done. */
export function keepAliveAgent(connections: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, keepAliveMsecs: 10_000 });
}

/**
 * Runs the load against `target` (an http://127.0.0.1:port URL) for `durationMs`.
 * `next(n)` returns the n-th request (a shared counter: requests are spread over workers in
 * the order they become free). Never throws for failed requests; counts them.
 */
export async function runLoad(options: {
  target: string;
  agent: Agent;
  connections: number;
  durationMs: number;
  /** Upper bound on requests sent, whatever the duration. */
  maxRequests: number;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
  next: (n: number) => LoadRequest;
  /** Where n starts (to continue a sequence across several calls). Default 0. */
  firstIndex?: number;
}): Promise<LoadResult & { nextIndex: number }> {
  const url = new URL(options.target);
  if (url.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new Error(`the load generator only targets loopback http, not ${options.target}`);
  }
  const timeoutMs = options.timeoutMs ?? 30_000;
  const result: LoadResult = { ok: 0, errors: 0, outcomes: {}, latenciesMs: [], elapsedMs: 0, samples: [] };
  const count = (key: string) => (result.outcomes[key] = (result.outcomes[key] ?? 0) + 1);
  const sample = (text: string) => {
    if (result.samples.length < 5) result.samples.push(text.slice(0, 500));
  };
  let n = options.firstIndex ?? 0;
  const last = n + options.maxRequests;
  const started = performance.now();
  const deadline = started + options.durationMs;

  const one = (req: LoadRequest): Promise<void> =>
    new Promise((resolve) => {
      const body = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
      const sent = performance.now();
      let settled = false;
      const fail = (code: string, detail: string) => {
        if (settled) return;
        settled = true;
        result.errors++;
        count(code);
        sample(`${req.method} ${req.path}: ${detail}`);
        resolve();
      };
      const r = request(
        {
          agent: options.agent,
          host: url.hostname.replace(/^\[|\]$/g, ''),
          port: url.port,
          method: req.method,
          path: req.path,
          headers: { ...req.headers, ...(body ? { 'content-type': 'application/json', 'content-length': body.length } : {}) },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error: NodeJS.ErrnoException) => fail(error.code ?? 'response_error', error.message));
          res.on('end', () => {
            if (settled) return;
            settled = true;
            const status = res.statusCode ?? 0;
            count(String(status));
            if (status >= 200 && status < 300) {
              result.ok++;
              result.latenciesMs.push(performance.now() - sent);
            } else {
              result.errors++;
              sample(`${req.method} ${req.path} -> ${status}: ${Buffer.concat(chunks).toString('utf8')}`);
            }
            resolve();
          });
        },
      );
      r.on('timeout', () => {
        r.destroy();
        fail('timeout', `no response within ${timeoutMs} ms`);
      });
      r.on('error', (error: NodeJS.ErrnoException) => fail(error.code ?? 'request_error', error.message));
      r.end(body);
    });

  const worker = async () => {
    while (n < last && performance.now() < deadline) {
      const before = result.errors;
      await one(options.next(n++));
      // A failing target (e.g. connection refused) must not turn into a tight loop.
      if (result.errors > before && result.ok === 0) await new Promise((r) => setTimeout(r, 10));
    }
  };
  await Promise.all(Array.from({ length: options.connections }, worker));
  result.elapsedMs = performance.now() - started;
  return { ...result, nextIndex: n };
}

/** Adds `b` into `a` (for runs made of several slices). */
export function mergeLoad(a: LoadResult, b: LoadResult): LoadResult {
  const outcomes = { ...a.outcomes };
  for (const [k, v] of Object.entries(b.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + v;
  return {
    ok: a.ok + b.ok,
    errors: a.errors + b.errors,
    outcomes,
    latenciesMs: a.latenciesMs.concat(b.latenciesMs),
    elapsedMs: a.elapsedMs + b.elapsedMs,
    samples: a.samples.concat(b.samples).slice(0, 5),
  };
}

export function emptyLoad(): LoadResult {
  return { ok: 0, errors: 0, outcomes: {}, latenciesMs: [], elapsedMs: 0, samples: [] };
}

/** The flags (for `parseBenchArgs`) of a benchmark putting two Otto-style servers under the same closed-loop load. */
export const LOAD_OPTIONS = {
  duration: { type: 'string', default: '10' },
  slices: { type: 'string', default: '5' },
  warmup: { type: 'string', default: '2' },
  connections: { type: 'string', default: '50' },
  conversations: { type: 'string', default: '50' },
  synchronous: { type: 'string', default: 'FULL' },
} as const;

/** The load flags, checked. */
export interface LoadSettings {
  duration: number;
  slices: number;
  warmup: number;
  connections: number;
  conversations: number;
  synchronous: 'FULL' | 'NORMAL';
}

/** Checks the values of `LOAD_OPTIONS`; returns them as numbers, or a message naming the bad flag. */
export function loadSettings(values: Record<keyof typeof LOAD_OPTIONS, string>): LoadSettings | string {
  const duration = Number(values.duration);
  const warmup = Number(values.warmup);
  if (!(duration > 0 && duration <= 3600)) return '--duration must be a number of seconds from 0 to 3600';
  if (!(warmup >= 0 && warmup <= 600)) return '--warmup must be a number of seconds from 0 to 600';
  const ints = { slices: 0, connections: 0, conversations: 0 };
  const limits = { slices: 100, connections: 1000, conversations: 100_000 };
  for (const key of ['slices', 'connections', 'conversations'] as const) {
    const n = Number(values[key]);
    if (!Number.isSafeInteger(n) || n < 1 || n > limits[key]) return `--${key} must be an integer from 1 to ${limits[key]}`;
    ints[key] = n;
  }
  const synchronous = values.synchronous.toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') return '--synchronous must be FULL or NORMAL';
  return { duration, warmup, ...ints, synchronous };
}

/** One side of `compareLoads`: a server, its connection pool and the requests it is sent. */
export interface LoadSide {
  /** The server, http://127.0.0.1:port. */
  url: string;
  agent: Agent;
  /** The n-th request of this side (n continues across the warm-up and the slices). */
  next: (n: number) => LoadRequest;
  /** The server process's CPU time so far in ms, when it can be read. */
  cpuMs?: () => number | undefined;
}

/** What one side did over the measured slices: the merged load, 2xx per second, latency percentiles and the server's CPU time (null when unreadable). */
export interface SideFigures extends LoadResult {
  perS: number;
  p50: number;
  p99: number;
  cpuMs: number | null;
}

/**
 * Puts two servers under the same closed-loop load: an untimed warm-up of `warmup` seconds for
 * each, then `duration` seconds per side split into `slices` slices that alternate between them
 * (the side going first swaps every slice), so that machine noise hits both alike. Reports the
 * warm-ups, each slice and each side's first error samples through `progress`. Returns each
 * side's figures over the measured slices. Never throws for failed requests (counted as errors).
 */
export async function compareLoads<N extends string>(args: {
  sides: Record<N, LoadSide>;
  /** The two sides, the first going first in the first slice. */
  order: readonly [N, N];
  settings: Pick<LoadSettings, 'duration' | 'warmup' | 'slices' | 'connections'>;
  progress: (line: string) => void;
}): Promise<Record<N, SideFigures>> {
  const { sides, order, settings, progress } = args;
  const index = new Map<N, number>(order.map((name) => [name, 0]));
  const load = async (name: N, seconds: number): Promise<LoadResult> => {
    const side = sides[name];
    const r = await runLoad({
      target: side.url,
      agent: side.agent,
      connections: settings.connections,
      durationMs: seconds * 1000,
      maxRequests: Math.ceil(seconds * MAX_REQUESTS_PER_S),
      next: side.next,
      firstIndex: index.get(name),
    });
    index.set(name, r.nextIndex);
    return r;
  };
  if (settings.warmup > 0) {
    for (const name of order) {
      const w = await load(name, settings.warmup);
      progress(`warm-up ${name}: ${w.ok} ok, ${w.errors} errors in ${(w.elapsedMs / 1000).toFixed(1)} s`);
    }
  }
  const totals = new Map<N, LoadResult>(order.map((name) => [name, emptyLoad()]));
  const cpu = new Map<N, number | null>(order.map((name) => [name, 0]));
  const slice = settings.duration / settings.slices;
  progress(`measuring ${settings.duration} s per side in ${settings.slices} alternating slices of ${slice.toFixed(1)} s, ${settings.connections} connections`);
  for (let k = 0; k < settings.slices; k++) {
    for (const name of k % 2 === 0 ? order : [order[1], order[0]]) {
      const before = sides[name].cpuMs?.();
      const r = await load(name, slice);
      const after = sides[name].cpuMs?.();
      const spent = cpu.get(name)!;
      cpu.set(name, spent !== null && before !== undefined && after !== undefined ? spent + after - before : null);
      totals.set(name, mergeLoad(totals.get(name)!, r));
      progress(`slice ${k + 1}/${settings.slices} ${name}: ${(r.ok / (r.elapsedMs / 1000)).toFixed(0)} req/s, p50 ${percentile(r.latenciesMs, 0.5).toFixed(1)} ms, ${r.errors} errors; load average ${loadavg()[0]!.toFixed(2)}`);
    }
  }
  const figures = {} as Record<N, SideFigures>;
  for (const name of order) {
    const t = totals.get(name)!;
    figures[name] = { ...t, perS: t.ok / (t.elapsedMs / 1000), p50: percentile(t.latenciesMs, 0.5), p99: percentile(t.latenciesMs, 0.99), cpuMs: cpu.get(name)! };
    for (const sample of t.samples) progress(`${name} error sample: ${sample}`);
  }
  return figures;
}
