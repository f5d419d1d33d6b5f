/**
 * A real `otto serve` process for end-to-end tests: `node bin/otto.js serve` from the repo
 * root on a loopback port chosen by the OS (PORT=0), with its stdout and stderr captured.
 *
 * Every process started here that is still running when Node.js exits is SIGKILLed by an
 * 'exit' handler (and a temp data dir created here is removed), so a failed or timed-out
 * test never leaves an Otto behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(repoRoot, 'bin', 'otto.js');

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
/** Captured output is kept up to this many characters per stream (the tail, when longer). */
const MAX_CAPTURE_CHARS = 2_000_000;

/** Variables inherited from the test's environment that would change how Otto runs. */
const INHERITED_SETTINGS = /^(OTTO_|MONGODB_)|^(PORT|OPENAI_API_KEY|NODE_TEST_CONTEXT)$/;

/** This test process's environment without any setting that would change how Otto runs (OTTO_*, MONGODB_*, PORT, OPENAI_API_KEY), plus `extra`. */
export function envWithoutOttoSettings(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!INHERITED_SETTINGS.test(name)) env[name] = value;
  return { ...env, ...extra };
}

export interface StartOttoProcessOptions {
  /**
   * Otto's environment, on top of the test's own (minus any OTTO_*, MONGODB_*, PORT and
   * OPENAI_API_KEY it has). Defaults: PORT=0, OTTO_HOST=127.0.0.1, OTTO_LLM_PROVIDER=offline.
   * A value of `undefined` removes the variable.
   */
  env?: Record<string, string | undefined>;
  /**
   * OTTO_DATA_DIR (kept; never removed). Without it (and without OTTO_DATA_DIR in `env`), a
   * fresh temp dir is used and removed as soon as the process has exited.
   */
  dataDir?: string;
  /** How long to wait for the `listening` line; default 30 s. */
  readyTimeoutMs?: number;
  /** A name for error messages and dumps, e.g. "A". */
  label?: string;
}

export interface OttoExit {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface OttoProcess {
  /** e.g. `http://127.0.0.1:40123` (no trailing slash). */
  readonly url: string;
  readonly pid: number;
  readonly label: string;
  /** Everything the process wrote to stdout so far (the startup block, "Otto stopped"). */
  stdout(): string;
  /** Everything the process wrote to stderr so far (migrations, shutdown, errors). */
  stderr(): string;
  /** Both streams, labelled, for failure messages. */
  output(): string;
  /** The exit, once the process has exited (and its pipes closed); otherwise undefined. */
  exitStatus(): OttoExit | undefined;
  /** Sends `signal` (default SIGTERM), SIGKILLs after 10 s, and waits for the exit. Idempotent. */
  stop(signal?: 'SIGTERM' | 'SIGINT'): Promise<OttoExit>;
  /** SIGKILL (a crash), and wait for the exit. */
  kill(): Promise<void>;
}

interface Live {
  proc: ChildProcess;
  ownedDir: string | undefined;
}

/** Processes not yet exited, killed if Node.js exits first. */
const live = new Set<Live>();
process.on('exit', () => {
  for (const entry of live) {
    try {
      entry.proc.kill('SIGKILL');
    } catch {
      // already gone
    }
    if (entry.ownedDir) rmSync(entry.ownedDir, { recursive: true, force: true });
  }
});

/** Builds the child's environment: the test's own minus Otto settings, then defaults, then `env`. */
function childEnv(options: StartOttoProcessOptions, ownedDir: string | undefined): NodeJS.ProcessEnv {
  const env = envWithoutOttoSettings({ PORT: '0', OTTO_HOST: '127.0.0.1', OTTO_LLM_PROVIDER: 'offline' });
  const dataDir = options.dataDir ?? ownedDir;
  if (dataDir !== undefined) env.OTTO_DATA_DIR = dataDir;
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

function keep(text: string): string {
  return text.length > MAX_CAPTURE_CHARS ? text.slice(-MAX_CAPTURE_CHARS) : text;
}

/** Ref or unref the child and its pipes: an unref'd leftover never holds the test process open. */
function setKeepAlive(proc: ChildProcess, on: boolean): void {
  for (const handle of [proc, proc.stdout, proc.stderr] as Array<{ ref?(): void; unref?(): void } | null>) {
    if (on) handle?.ref?.();
    else handle?.unref?.();
  }
}

/**
 * Starts `otto serve` and resolves once it prints its `listening` line. Rejects (after
 * SIGKILLing it if needed) when it exits first or is not listening within `readyTimeoutMs`,
 * with its captured output in the error message.
 */
export async function startOttoProcess(options: StartOttoProcessOptions = {}): Promise<OttoProcess> {
  const needsOwnDir = options.dataDir === undefined && options.env?.OTTO_DATA_DIR === undefined;
  const ownedDir = needsOwnDir ? mkdtempSync(join(tmpdir(), 'otto-e2e-data-')) : undefined;
  const label = options.label ?? 'otto';
  const proc = spawn(process.execPath, [bin, 'serve'], { cwd: repoRoot, env: childEnv(options, ownedDir), stdio: ['ignore', 'pipe', 'pipe'] });
  const entry: Live = { proc, ownedDir };
  live.add(entry);

  let out = '';
  let err = '';
  let spawnError: Error | undefined;
  let exit: OttoExit | undefined;
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out = keep(out + chunk)));
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err = keep(err + chunk)));
  // 'close' comes after 'exit' once both pipes are drained, so the output is complete.
  const closed = new Promise<OttoExit>((resolve) => {
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      if (exit) return;
      live.delete(entry);
      if (ownedDir) rmSync(ownedDir, { recursive: true, force: true });
      exit = { code, signal, stdout: out, stderr: err };
      resolve(exit);
    };
    proc.once('close', done);
    proc.once('error', (error) => {
      spawnError = error;
      if (proc.pid === undefined) done(null, null); // never started: no 'close' is coming
    });
  });

  const output = () =>
    [`--- otto[${label}] pid ${proc.pid ?? '?'}${exit ? ` (exited: ${exit.signal ? `killed by ${exit.signal}` : `code ${exit.code}`})` : ''} ---`, '[stdout]', out.trimEnd(), '[stderr]', err.trimEnd(), `--- end of otto[${label}] ---`].join('\n');

  let stopping: Promise<OttoExit> | undefined;
  const signalAndWait = (signal: NodeJS.Signals): Promise<OttoExit> => {
    if (exit) return Promise.resolve(exit);
    setKeepAlive(proc, true);
    proc.kill(signal);
    const escalate = signal === 'SIGKILL' ? undefined : setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
    return closed.finally(() => clearTimeout(escalate));
  };

  // Wait for the listening line, an early exit, or the deadline.
  const timeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const url = await new Promise<string>((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      const match = out.match(/^\s*listening\s+(https?:\/\/\S+)/m);
      if (match) return finish(() => resolve(match[1]!.replace(/\/+$/, '')));
      if (spawnError) return finish(() => reject(new Error(`otto[${label}] could not be spawned: ${spawnError!.message}`)));
      if (exit) return finish(() => reject(new Error(`otto[${label}] exited before it was listening (${exit!.signal ?? `code ${exit!.code}`})`)));
      if (Date.now() - started > timeoutMs) {
        return finish(() => reject(new Error(`otto[${label}] printed no "listening" line within ${timeoutMs / 1000} s`)));
      }
    };
    const timer = setInterval(check, 25);
    const finish = (then: () => void) => {
      clearInterval(timer);
      proc.stdout!.off('data', check);
      then();
    };
    proc.stdout!.on('data', check);
    void closed.then(check);
  }).catch(async (error: unknown) => {
    await signalAndWait('SIGKILL');
    // The output is read after the exit, so it is complete.
    throw new Error(`${(error as Error).message}:\n${output()}`);
  });
  setKeepAlive(proc, false);

  return {
    url,
    pid: proc.pid!,
    label,
    stdout: () => out,
    stderr: () => err,
    output,
    exitStatus: () => exit,
    stop(signal = 'SIGTERM') {
      stopping ??= signalAndWait(signal);
      return stopping;
    },
    async kill() {
      await signalAndWait('SIGKILL');
    },
  };
}
