/**
 * Child processes for benchmarks: a server started with `node <args>` that prints a
 * `listening http://…` line on stdout once it accepts connections. Used for `otto serve`
 * (bin/otto.js) and for the bare baseline server (bare-http-server.ts).
 *
 * Every child started here that is still running when the benchmark exits is SIGKILLed by
 * an 'exit' handler, so a failed run never leaves a server behind.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** `otto`'s entry point. */
export const ottoBin = join(repoRoot, 'bin', 'otto.js');

const LISTENING = /^\s*listening\s+(https?:\/\/\S+)/m;
const STOP_GRACE_MS = 10_000;
const MAX_CAPTURE_CHARS = 1_000_000;

/** Variables of the benchmark's own environment that would change how Otto runs. */
const OTTO_SETTINGS = /^(OTTO_|MONGODB_)|^(PORT|OPENAI_API_KEY|NODE_OPTIONS|NODE_TEST_CONTEXT)$/;

/** The benchmark's environment minus Otto's settings, plus `env`. */
export function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!OTTO_SETTINGS.test(name)) out[name] = value;
  return { ...out, ...env };
}

/**
 * Otto's environment for a benchmark: SQLite in `dataDir`, FULL sync, loopback on a port
 * the OS picks, offline replies, no keys.
 */
export function ottoEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return cleanEnv({
    OTTO_STORAGE: 'sqlite',
    OTTO_DATA_DIR: dataDir,
    OTTO_SQLITE_SYNC: 'FULL',
    OTTO_HOST: '127.0.0.1',
    PORT: '0',
    OTTO_LLM_PROVIDER: 'offline',
    ...extra,
  });
}

export interface ListeningChild {
  readonly label: string;
  readonly pid: number;
  /** e.g. `http://127.0.0.1:40123` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** From just before spawn() to the chunk of stdout holding the `listening` line. */
  readonly startupMs: number;
  /** CPU time (user + system) the child had used when its `listening` line arrived, in ms (Linux; else undefined). */
  readonly startupCpuMs: number | undefined;
  stdout(): string;
  stderr(): string;
  /** User + system CPU time the child has used so far, in ms (Linux /proc; undefined elsewhere). */
  cpuMs(): number | undefined;
  /** SIGTERM (SIGKILL after 10 s), and wait for the exit. Idempotent. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const proc of live) {
    try {
      proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * Spawns `node ...args` (this Node) and resolves once it prints its `listening` line.
 * Rejects, after SIGKILLing it, when it exits first or is not listening within `readyTimeoutMs`.
 */
export async function startListening(options: {
  label: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}): Promise<ListeningChild> {
  const timeoutMs = options.readyTimeoutMs ?? 60_000;
  const started = performance.now();
  const proc = spawn(process.execPath, options.args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let out = '';
  let err = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('close', (code, signal) => {
      live.delete(proc);
      exit = { code, signal };
      resolve(exit);
    });
    proc.once('error', (error) => {
      err += `\nspawn failed: ${error.message}`;
      if (proc.pid === undefined) {
        live.delete(proc);
        exit = { code: null, signal: null };
        resolve(exit);
      }
    });
  });
  const keep = (text: string) => (text.length > MAX_CAPTURE_CHARS ? text.slice(-MAX_CAPTURE_CHARS) : text);
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err = keep(err + chunk)));

  const ready = await new Promise<{ url: string; at: number; cpu: number | undefined }>((resolve, reject) => {
    const timer = setTimeout(() => finish(() => reject(new Error(`${options.label} printed no "listening" line within ${timeoutMs / 1000} s`))), timeoutMs);
    const onData = (chunk: string) => {
      const at = performance.now();
      out = keep(out + chunk);
      const match = LISTENING.exec(out);
      if (match) finish(() => resolve({ url: match[1]!.replace(/\/+$/, ''), at, cpu: cpuMsOf(proc.pid!) }));
    };
    const finish = (then: () => void) => {
      clearTimeout(timer);
      proc.stdout!.off('data', onData);
      proc.stdout!.on('data', (chunk: string) => (out = keep(out + chunk)));
      then();
    };
    proc.stdout!.setEncoding('utf8').on('data', onData);
    void closed.then((e) => finish(() => reject(new Error(`${options.label} exited before it was listening (${e.signal ?? `code ${e.code}`})`))));
  }).catch(async (error: unknown) => {
    if (!exit) proc.kill('SIGKILL');
    await closed;
    throw new Error(`${(error as Error).message}\n[stdout]\n${out.trimEnd()}\n[stderr]\n${err.trimEnd()}`);
  });

  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  return {
    label: options.label,
    pid: proc.pid!,
    url: ready.url,
    port: Number(new URL(ready.url).port),
    startupMs: ready.at - started,
    startupCpuMs: ready.cpu,
    stdout: () => out,
    stderr: () => err,
    cpuMs: () => cpuMsOf(proc.pid!),
    stop() {
      stopping ??= (async () => {
        if (exit) return exit;
        proc.kill('SIGTERM');
        const escalate = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
        try {
          return await closed;
        } finally {
          clearTimeout(escalate);
        }
      })();
      return stopping;
    },
  };
}

/** Runs `node bin/otto.js ...args` to completion (e.g. `migrate up`); throws with its output when it fails. */
export async function runOtto(args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [ottoBin, ...args], { cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`otto ${args.join(' ')} failed: ${error.message}\n[stdout]\n${stdout}\n[stderr]\n${stderr}`));
      else resolve(`${stdout}${stderr}`);
    });
  });
}

/** utime + stime of a process from /proc/<pid>/stat, in ms. */
function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Field 14 (utime) and 15 (stime) of the whole line are 12 and 13 here; clock ticks are 100 Hz on Linux.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}
