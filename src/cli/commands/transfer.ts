import { describeStoreUrl, openStoreUrl, openStoreUrlMigrated, type OpenStoreUrlOptions } from '../../storage/store-url.ts';
import type { Store } from '../../storage/contract.ts';
import { transfer, type TransferProgress, type TransferSummary } from '../../storage/transfer/index.ts';
import { UsageError, type CliIO, type Command } from '../command.ts';

/**
 * How the CLI opens a transfer target: migrations applied first, and the settings under which
 * a checkpoint can never reach the disk before the documents it covers, yet without an fsync
 * per document: SQLite `synchronous=NORMAL` (its WAL keeps commits in order, and closing
 * checkpoints it to disk), JSONL `fsync=batch` (the transfer flushes before each checkpoint).
 */
export const TARGET_OPTIONS: OpenStoreUrlOptions = { sqliteSynchronous: 'NORMAL', fsync: 'batch' };

/** The options transfer, export and import share. */
export const copyOptions = {
  collections: { type: 'string' },
  'batch-size': { type: 'string' },
  restart: { type: 'boolean' },
} as const;

export const copyOptionsHelp = `  --collections a,b   only these collections (default: every domain collection, _counters and
                      any other collection not starting with "_"; never _migrations or _transfers)
  --batch-size n      documents per batch and per checkpoint, 1-10000 (default 500)
  --restart           ignore an interrupted earlier run's checkpoints and copy everything again`;

/** Parses --collections and --batch-size; throws UsageError. */
export function parseCopyOptions(values: Record<string, string | boolean | undefined>): { collections?: string[]; batchSize?: number; restart: boolean } {
  const out: { collections?: string[]; batchSize?: number; restart: boolean } = { restart: values.restart === true };
  if (typeof values.collections === 'string') {
    const names = values.collections.split(',').map((s) => s.trim()).filter(Boolean);
    if (names.length === 0) throw new UsageError('--collections needs at least one name');
    out.collections = names;
  }
  if (values['batch-size'] !== undefined) {
    const text = String(values['batch-size']);
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < 1 || n > 10_000) throw new UsageError('--batch-size must be a whole number from 1 to 10000');
    out.batchSize = n;
  }
  return out;
}

/** The store URL option's value; throws UsageError when missing. */
export function requireOption(values: Record<string, string | boolean | undefined>, name: string, example: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`--${name} is required, e.g. --${name} ${example}`);
  return value;
}

/** True when progress may redraw one line on a terminal: only for the real process's stderr. */
function interactive(io: CliIO): boolean {
  return process.stderr.isTTY === true && io.env === process.env;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function duration(s: number | null): string {
  if (s === null) return '?';
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Progress on stderr: a redrawn bar per collection on a terminal; otherwise plain lines (after
 * a collection's first batch, then at most every 2 s, and when it is finished).
 */
export function progressPrinter(io: CliIO): { update(p: TransferProgress): void; end(): void } {
  const tty = interactive(io);
  let last = 0;
  let open = false;
  let current = '';
  return {
    update(p) {
      if (p.total === 0 && p.copied === 0) return; // nothing to show for an empty collection
      if (!p.finished && p.done >= p.total) return; // the finished line follows at once
      const now = Date.now();
      const first = p.collection !== current;
      current = p.collection;
      const percent = p.total === 0 ? 100 : Math.min(100, Math.floor((p.done * 100) / p.total));
      const counts = `${p.done}/${p.total}`;
      const rate = `${p.docs_per_s} docs/s`;
      const eta = p.finished ? `done in ${seconds(p.elapsed_ms)}` : `ETA ${duration(p.eta_s)}`;
      if (tty) {
        if (!p.finished && !first && now - last < 100) return;
        last = now;
        const width = 24;
        const filled = Math.round((percent * width) / 100);
        const line = `${`${p.collection} (${p.position}/${p.of})`.padEnd(22)} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(percent).padStart(3)}%  ${counts}  ${rate}  ${eta}`;
        process.stderr.write(`\r\x1b[K${line}${p.finished ? '\n' : ''}`);
        open = !p.finished;
        return;
      }
      if (!p.finished && !first && now - last < 2000) return;
      last = now;
      io.err(`transfer ${p.collection} (${p.position}/${p.of}): ${counts} (${percent}%), ${rate}, ${eta}`);
    },
    end() {
      if (tty && open) process.stderr.write('\n');
      open = false;
    },
  };
}

/** Prints what the stores found while opening (e.g. a JSONL file's torn last line) to stderr. */
export function printWarnings(io: CliIO, ...stores: Store[]): void {
  for (const store of stores) for (const warning of (store as { warnings?: string[] }).warnings ?? []) io.err(`warning: ${warning}`);
}

/** The summary table on stdout. */
export function printSummary(io: CliIO, summary: TransferSummary, labels: { from: string; to: string }): void {
  io.out(`copied ${labels.from} → ${labels.to}${summary.resumed ? ' (resumed an interrupted run)' : ''}`);
  const width = Math.max(10, ...summary.collections.map((c) => c.collection.length));
  io.out(`  ${'collection'.padEnd(width)}  ${'copied'.padStart(9)}  ${'skipped'.padStart(9)}  ${'took'.padStart(8)}`);
  for (const c of summary.collections) {
    io.out(`  ${c.collection.padEnd(width)}  ${String(c.copied).padStart(9)}  ${String(c.skipped).padStart(9)}  ${seconds(c.duration_ms).padStart(8)}`);
  }
  const skipped = summary.collections.reduce((n, c) => n + c.skipped, 0);
  io.out(`  ${'total'.padEnd(width)}  ${String(summary.copied).padStart(9)}  ${String(skipped).padStart(9)}  ${seconds(summary.duration_ms).padStart(8)}`);
}

/**
 * Runs a transfer between two open stores with progress, Ctrl-C handling and the summary;
 * returns the exit code (0 done, 130 interrupted). Compacts a JSONL target afterwards.
 */
export async function runCopy(args: {
  io: CliIO;
  from: Store;
  to: Store;
  labels: { from: string; to: string };
  options: { collections?: string[]; batchSize?: number; restart: boolean };
  verifyHint?: string;
}): Promise<number> {
  const { io } = args;
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  const progress = progressPrinter(io);
  try {
    const summary = await transfer({
      from: args.from,
      to: args.to,
      collections: args.options.collections,
      batchSize: args.options.batchSize,
      restart: args.options.restart,
      signal: controller.signal,
      onProgress: (p) => progress.update(p),
    });
    progress.end();
    const compact = (args.to as { compact?: unknown }).compact;
    if (typeof compact === 'function') await (compact as () => Promise<unknown>).call(args.to);
    for (const c of summary.collections) {
      if (c.target_before > 0 && c.resumed_after === null) {
        io.err(`note: ${c.collection} already had ${c.target_before} document(s) in the target; transfer adds and replaces but never deletes, so documents the source lacks are still there (otto verify lists them)`);
      }
    }
    printSummary(io, summary, args.labels);
    if (args.verifyHint) io.out(`check it: ${args.verifyHint}`);
    return 0;
  } catch (error) {
    progress.end();
    if (controller.signal.aborted) {
      io.err('interrupted: what was copied is kept with a checkpoint; run the same command again to resume');
      return 130;
    }
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
  }
}

export const transferCommand: Command = {
  name: 'transfer',
  summary: 'copy every collection from one store into another (resumable)',
  options: { from: { type: 'string' }, to: { type: 'string' }, ...copyOptions },
  help: `Usage: otto transfer --from <store> --to <store> [--collections a,b] [--batch-size n] [--restart]

Copies documents from one store into another, as they are (same ids, versions and timestamps):
SQLite → MongoDB and back, JSONL ↔ anything. Applies the target's pending migrations first
(creating its collections and indexes). Reads the source only; never deletes from the target.

Streaming and resumable: after every batch the last id copied is recorded in the target's
_transfers collection. If the transfer stops (Ctrl-C, kill, a lost connection), run the same
command again and it resumes there; copying a document twice is harmless.

Stores:
  sqlite:<file>                     e.g. sqlite:./data/otto.db
  jsonl:<folder>                    Otto's JSON-lines folder (one file per collection)
  mongodb://[user:pass@]host[:port]/<database>[?options]   (or mongodb+srv://)

Options:
  --from <store>      where to copy from (must exist)
  --to <store>        where to copy to (created when missing)
${copyOptionsHelp}

Progress goes to stderr (a bar on a terminal, plain lines otherwise); the summary to stdout.

Examples:
  otto transfer --from sqlite:./data/otto.db --to mongodb://127.0.0.1:27017/otto
  otto transfer --from mongodb://127.0.0.1:27017/otto --to sqlite:./data/otto.db
  otto transfer --from sqlite:./data/otto.db --to jsonl:./backup --collections bots,guidelines
  otto verify --a sqlite:./data/otto.db --b mongodb://127.0.0.1:27017/otto     # then compare

Exit code: 0 when copied, 1 on failure, 130 when interrupted (run it again to resume).`,
  async run({ values, io }) {
    const fromText = requireOption(values, 'from', 'sqlite:./data/otto.db');
    const toText = requireOption(values, 'to', 'mongodb://127.0.0.1:27017/otto');
    const options = parseCopyOptions(values);
    const labels = { from: describeStoreUrl(fromText, io.cwd), to: describeStoreUrl(toText, io.cwd) };
    if (labels.from === labels.to && labels.from !== 'memory:') throw new UsageError('--from and --to name the same store');
    const from = await openStoreUrl(fromText, { cwd: io.cwd, source: true });
    try {
      const to = await openStoreUrlMigrated(toText, { cwd: io.cwd, ...TARGET_OPTIONS, onProgress: (line) => io.err(line) });
      try {
        printWarnings(io, from, to);
        return await runCopy({ io, from, to, labels, options, verifyHint: `otto verify --a ${labels.from} --b ${labels.to}` });
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  },
};
