/**
 * A real MongoDB-wire server for Otto's tests: FerretDB v1.24.2 with its SQLite
 * backend, embedded in the small Go program in tools/ferretdb/.
 *
 * The binary is built once with `go build` into .cache/ferretdb/, named after a
 * hash of the Go sources, and reused until those sources change.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const toolDir = join(repoRoot, 'tools', 'ferretdb');
const cacheDir = join(repoRoot, '.cache', 'ferretdb');
const goSources = ['go.mod', 'go.sum', 'main.go'];

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL_LINES = 40;

/** A running (or killed, restartable) FerretDB server started by {@link startFerretDb}. */
export interface FerretDbServer {
  /** Connection string, e.g. `mongodb://127.0.0.1:40123/`. */
  readonly uri: string;
  readonly port: number;
  /** Directory holding the SQLite files; it survives kill() and restart(). */
  readonly dataDir: string;
  /** SIGTERM (SIGKILL after 5 s), wait for the exit, and remove the data dir if startFerretDb created it. */
  stop(): Promise<void>;
  /** Start again on the same port and data dir (SIGTERMing it first if still running), and wait for ping. */
  restart(): Promise<void>;
  /** SIGKILL the server (an outage) and wait for it to die; the data dir is kept for restart(). */
  kill(): Promise<void>;
}

/** Options for {@link startFerretDb}. */
export interface StartFerretDbOptions {
  /** Loopback port to listen on; a free one is picked if omitted. */
  port?: number;
  /** Data directory (created if missing, never removed); a temp dir that stop() removes if omitted. */
  dataDir?: string;
  /** Receives build progress and the server's stderr lines (otherwise kept only for error messages). */
  log?: (line: string) => void;
  /**
   * Keep the Node.js process alive while the server runs (for foreground scripts).
   * Off by default, so a forgotten server never holds a test process open.
   */
  keepAlive?: boolean;
  /** Called when the server exits without stop(), kill() or restart() asking it to. */
  onUnexpectedExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

/** What {@link mongoTestTarget} found to test against. */
export type MongoTestTarget =
  | { uri: string; source: 'env'; stop(): Promise<void> }
  | { uri: string; source: 'ferretdb'; server: FerretDbServer; stop(): Promise<void> };

let pendingBuild: Promise<string> | undefined;

/**
 * Build the FerretDB test server (tools/ferretdb) unless an up-to-date binary is
 * cached in .cache/ferretdb/, and return the binary's path.
 *
 * The first build takes about 80 s; a one-line progress message goes to
 * `opts.log` (stderr by default) before it starts. Throws an Error if `go` is
 * not installed or the build fails (with the tail of go's output).
 */
export async function buildFerretDb(opts: { log?: (line: string) => void } = {}): Promise<string> {
  pendingBuild ??= build(opts.log ?? ((line) => process.stderr.write(`${line}\n`)));
  try {
    return await pendingBuild;
  } catch (err) {
    pendingBuild = undefined; // let a later call try again
    throw err;
  }
}

async function build(log: (line: string) => void): Promise<string> {
  const hash = createHash('sha256');
  for (const name of goSources) {
    hash.update(`${name}\0`).update(await readFile(join(toolDir, name))).update('\0');
  }
  const binary = join(cacheDir, `otto-ferretdb-${hash.digest('hex').slice(0, 12)}`);
  if (existsSync(binary)) return binary;

  const goVersion = await run('go', ['version'], repoRoot);
  if (goVersion.error || goVersion.code !== 0) {
    throw new Error(
      goVersion.error?.code === 'ENOENT'
        ? 'cannot build the FerretDB test server: `go` is not on PATH'
        : `cannot build the FerretDB test server: \`go version\` failed: ${goVersion.error?.message ?? tail(goVersion.output)}`,
    );
  }

  await mkdir(cacheDir, { recursive: true });
  // Build under a unique name and rename, so concurrent builders never run a partial binary.
  const partial = `${binary}.${process.pid}.partial`;
  log(`building FerretDB test server (first build takes ~80 s)… [${goVersion.output.trim()}]`);
  const result = await run('go', ['build', '-buildvcs=false', '-o', partial, '.'], toolDir);
  if (result.error || result.code !== 0) {
    await rm(partial, { force: true });
    const why = result.error?.message ?? `exit code ${result.code}`;
    throw new Error(`building the FerretDB test server failed (${why}):\n${tail(result.output)}`);
  }
  await rename(partial, binary);
  return binary;
}

/**
 * Start a FerretDB server on a loopback port and wait until it answers a MongoDB
 * `ping` (up to ~30 s). Builds the binary first if needed (see {@link buildFerretDb}).
 *
 * Without `opts.dataDir` the data lives in a fresh temp dir that stop() removes.
 * A server still running when Node.js exits is SIGKILLed by an 'exit' handler.
 */
export async function startFerretDb(opts: StartFerretDbOptions = {}): Promise<FerretDbServer> {
  const binary = await buildFerretDb(opts.log ? { log: opts.log } : {});
  const port = opts.port ?? (await freePort());
  const ownsDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'otto-ferretdb-')));
  const uri = `mongodb://127.0.0.1:${port}/`;

  let current: Instance | undefined;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const proc = spawn(binary, ['-listen', `127.0.0.1:${port}`, '-data', dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const instance: Instance = { proc, output: [], expectingExit: false, exited: Promise.resolve() };
    current = instance;
    live.set(proc, ownsDataDir ? dataDir : undefined);
    instance.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        live.delete(proc);
        instance.exitStatus = signal ? `killed by ${signal}` : `exit code ${code}`;
        if (!instance.expectingExit) opts.onUnexpectedExit?.(code, signal);
        resolve();
      });
    });
    proc.once('error', (err) => instance.output.push(`spawn error: ${err.message}`));
    for (const stream of [proc.stdout, proc.stderr]) {
      let partialLine = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const lines = (partialLine + chunk).split('\n');
        partialLine = lines.pop() ?? '';
        for (const line of lines) {
          instance.output.push(line);
          if (instance.output.length > OUTPUT_TAIL_LINES) instance.output.shift();
          if (stream === proc.stderr) opts.log?.(line);
        }
      });
    }

    // The process stays referenced until it answers, so the event loop can't drain while we wait.
    const deadline = Date.now() + READY_TIMEOUT_MS;
    try {
      for (;;) {
        if (instance.exitStatus !== undefined) {
          throw new Error(
            `FerretDB test server exited before it was ready (${instance.exitStatus}):\n${instance.output.join('\n')}`,
          );
        }
        if (await ping(uri)) return;
        if (Date.now() > deadline) {
          await signalAndWait(instance, 'SIGKILL');
          throw new Error(
            `FerretDB test server did not answer ping on ${uri} within ${READY_TIMEOUT_MS / 1000} s:\n` +
              instance.output.join('\n'),
          );
        }
        await sleep(100);
      }
    } finally {
      setKeepAlive(proc, opts.keepAlive ?? false);
    }
  };

  const removeOwnedDataDir = async (): Promise<void> => {
    if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
  };

  try {
    await launch();
  } catch (err) {
    await removeOwnedDataDir();
    throw err;
  }

  return {
    uri,
    port,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (current) await signalAndWait(current, 'SIGTERM');
      await removeOwnedDataDir();
    },
    async kill() {
      if (stopped) throw new Error('FerretDB test server was stopped');
      if (current) await signalAndWait(current, 'SIGKILL');
    },
    async restart() {
      if (stopped) throw new Error('FerretDB test server was stopped');
      if (current) await signalAndWait(current, 'SIGTERM');
      await launch();
    },
  };
}

/**
 * The MongoDB server for tests to use: `OTTO_TEST_MONGODB_URI` if set (stop()
 * does nothing), else a FerretDB server started here (stop() shuts it down and
 * removes its data).
 *
 * When FerretDB can't be built (no Go, or a failed build), returns `{skip}` with
 * a one-line reason and how to enable the tests, except under CI (`CI=true`),
 * where it throws: a missing test server must fail CI rather than skip.
 */
export async function mongoTestTarget(): Promise<MongoTestTarget | { skip: string }> {
  const envUri = process.env.OTTO_TEST_MONGODB_URI;
  if (envUri) return { uri: envUri, source: 'env', stop: async () => {} };

  try {
    await buildFerretDb();
  } catch (err) {
    if (process.env.CI === 'true') throw err;
    const message = err instanceof Error ? err.message : String(err);
    const [firstLine = '', ...details] = message.split('\n');
    const reason = firstLine.replace(/:$/, '');
    if (details.length > 0) process.stderr.write(`${message}\n`); // go's output, to see what broke
    return {
      skip:
        `MONGODB TESTS SKIPPED: ${reason}. To run them, install Go 1.24+ (tools/ferretdb builds a ` +
        'FerretDB test server) or set OTTO_TEST_MONGODB_URI=mongodb://HOST:PORT/',
    };
  }
  const server = await startFerretDb();
  return { uri: server.uri, source: 'ferretdb', server, stop: () => server.stop() };
}

// ---------------------------------------------------------------------------

/** One run of the server process. */
interface Instance {
  proc: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** Set on exit, e.g. `exit code 1` or `killed by SIGKILL`. */
  exitStatus?: string;
  /** True once we asked it to exit, so the exit isn't reported as unexpected. */
  expectingExit: boolean;
  /** Last lines of its stdout and stderr, for error messages. */
  output: string[];
}

/** Server processes still running, each with the temp dir it owns: cleaned up if Node.js exits without stop(). */
const live = new Map<ChildProcess, string | undefined>();
process.on('exit', () => {
  for (const [proc, ownedDir] of live) {
    proc.kill('SIGKILL');
    if (ownedDir) rmSync(ownedDir, { recursive: true, force: true });
  }
});

/** Send `signal` (escalating to SIGKILL after the grace period) and wait for the exit. */
async function signalAndWait(instance: Instance, signal: NodeJS.Signals): Promise<void> {
  const { proc } = instance;
  instance.expectingExit = true;
  if (instance.exitStatus !== undefined) return;
  setKeepAlive(proc, true);
  proc.kill(signal);
  const escalate = signal === 'SIGKILL' ? undefined : setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
  await instance.exited;
  clearTimeout(escalate);
}

/** Ref or unref a child process and its pipes, so that it does or doesn't keep the event loop alive. */
function setKeepAlive(proc: ChildProcess, keepAlive: boolean): void {
  const handles = [proc, proc.stdout, proc.stderr] as ({ ref?(): void; unref?(): void } | null)[];
  for (const handle of handles) {
    if (keepAlive) handle?.ref?.();
    else handle?.unref?.();
  }
}

/** One `ping` attempt; true if the server answered. */
async function ping(uri: string): Promise<boolean> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 500, directConnection: true });
  try {
    await client.db('admin').command({ ping: 1 });
    return true;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => {});
  }
}

/** A loopback port that was free a moment ago (bind port 0, read it, close). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not read a free port');
  return address.port;
}

/** Run a command to completion, collecting its stdout and stderr together. */
function run(
  command: string,
  args: string[],
  cwd: string,
): Promise<{ code: number | null; output: string; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const proc = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    proc.once('error', (error: NodeJS.ErrnoException) => resolve({ code: null, output, error }));
    proc.once('close', (code) => resolve({ code, output }));
  });
}

/** The last lines of a command's output. */
function tail(output: string): string {
  return output.trimEnd().split('\n').slice(-OUTPUT_TAIL_LINES).join('\n');
}
