import { loadConfig, withDotEnv } from '../../config.ts';
import { Mirror, MIRRORS_SPEC, mirrorId, openChangeLogReader, parseTargetUrl, pruneChangeLog, type MirrorCursor, type MirrorStatus } from '../../storage/changes/index.ts';
import { openStore, StorageError, type Store } from '../../storage/index.ts';
import { UsageError, type Command, type CliIO } from '../command.ts';

const HELP = `Usage: otto mirror <status|sync|compact|prune|forget> [options]

Mirrors are copies of the primary store fed from its change log: every write is recorded in
the primary's _changes, and each mirror in OTTO_MIRRORS (comma-separated jsonl:<dir>,
sqlite:<file>, mongodb://host:port/<db>) follows it from its own cursor, kept in the
primary's _mirrors. \`otto serve\` feeds them in the background; a mirror that is down
catches up when it returns, and never slows or fails a write.

otto mirror status [--json]
    For each mirror: its URL (without credentials), the seq it has reached, its lag (the
    primary's last seq minus that, and how old the oldest missing change is) and its status:
      ok      caught up (or within a few seconds)
      behind  changes have waited longer than 10 s, or the first copy is not done yet
      down    the last attempt failed (last_error says why)
    --json   print the list as JSON
    Exit code: 0 when every mirror is ok, 3 when one is behind or down, 1 on failure.

otto mirror sync [--timeout <seconds>]
    Catches every mirror up now, in the foreground (a first sync copies the whole primary),
    and prints the status. Refused for a mirror that a running \`otto serve\` is feeding
    (it is already following). --timeout: give up after this long (default 300).
    Exit code: 0 when all caught up, 1 otherwise.

otto mirror compact [<jsonl:dir> …]
    Folds each JSON-lines mirror (default: every jsonl: one in OTTO_MIRRORS) into one
    snapshot file per collection and empties the append-only tails; reopening gives the same
    data. The folder must not be open in a running \`otto serve\`: stop it first, or run this
    on a copy. Other mirror kinds need no compaction.

otto mirror prune [--keep-days <n>] [--dry-run]
    Deletes the change records that every cursor in _mirrors has passed (every mirror and
    the webhook outbox, including those another Otto process feeds) and that are older than
    --keep-days (default OTTO_CHANGES_KEEP_DAYS, 7); the newest record always stays.
    \`otto serve\` does this every OTTO_CHANGES_PRUNE_INTERVAL_MS (default hourly). Prints
    which cursor holds pruning back. --dry-run: only say what would go.

otto mirror forget <url|id>
    Deletes the cursor of a mirror that is gone for good, so it no longer holds the change
    log back (\`otto mirror prune\` names it). Configured again later, that mirror starts
    with a full copy. Refused for a mirror a running \`otto serve\` is feeding, and for the
    webhook outbox.

Environment: the primary as for \`otto serve\` (OTTO_STORAGE, OTTO_DATA_DIR, MONGODB_URI, …),
OTTO_MIRRORS, OTTO_CHANGES_RECOVERY_MS (how long a pending write-ahead record may wait
before a reader recovers it; default 5000).`;

export const mirrorCommand: Command = {
  name: 'mirror',
  summary: 'mirror status, catch-up, JSONL compaction and change-log pruning (status | sync | compact | prune | forget)',
  positionals: true,
  options: { json: { type: 'boolean' }, timeout: { type: 'string' }, 'keep-days': { type: 'string' }, 'dry-run': { type: 'boolean' } },
  help: HELP,
  async run({ values, positionals, io }) {
    const [action, ...rest] = positionals;
    if (action === 'status') {
      if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0]}`);
      return status(io, values.json === true);
    }
    if (action === 'sync') {
      if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0]}`);
      const timeout = values.timeout === undefined ? 300 : Number(values.timeout);
      if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError('--timeout must be a number of seconds');
      return sync(io, timeout * 1000);
    }
    if (action === 'compact') return compact(io, rest);
    if (action === 'prune') {
      if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0]}`);
      const raw = values['keep-days'];
      const keepDays = raw === undefined ? undefined : Number(raw);
      if (keepDays !== undefined && (typeof raw !== 'string' || !/^\d+(\.\d+)?$/.test(raw) || !Number.isFinite(keepDays))) throw new UsageError('--keep-days must be a number of days (0 or more)');
      return prune(io, { keepDays, dryRun: values['dry-run'] === true });
    }
    if (action === 'forget') {
      if (rest.length !== 1) throw new UsageError('say which mirror: otto mirror forget <url|id>');
      return forget(io, rest[0]!);
    }
    throw new UsageError(action === undefined ? 'say `status`, `sync`, `compact`, `prune` or `forget`' : `unknown subcommand ${JSON.stringify(action)}; say status, sync, compact, prune or forget`);
  },
};

async function withPrimary<R>(io: CliIO, fn: (store: Store, urls: string[], recoveryMs: number) => Promise<R>): Promise<R> {
  const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
  const store = await openStore(config);
  try {
    return await fn(store, config.mirrors.urls, config.changes.recoveryMs);
  } finally {
    await store.close();
  }
}

function line(m: MirrorStatus): string {
  const lag = m.lag === 0 ? 'caught up' : `${m.lag} change(s) behind, oldest ${m.seconds_behind} s old`;
  return `  ${m.status.padEnd(6)}  ${m.url}  seq ${m.seq}, ${lag}${m.last_error ? `\n          last error: ${m.last_error}` : ''}`;
}

async function status(io: CliIO, json: boolean): Promise<number> {
  return withPrimary(io, async (store, urls, recoveryMs) => {
    const log = await openChangeLogReader(store, { recoveryMs });
    const head = await log.lastSeq();
    const statuses: MirrorStatus[] = [];
    for (const url of urls) statuses.push(await new Mirror(url, log).status());
    if (json) {
      io.out(JSON.stringify({ primary: { engine: store.engine, location: store.location, seq: head }, mirrors: statuses.map(({ active: _a, ...m }) => m) }, null, 2));
    } else {
      io.out(`primary ${store.engine} at ${store.location}: change log at seq ${head}`);
      if (statuses.length === 0) io.out('no mirrors configured (set OTTO_MIRRORS, e.g. OTTO_MIRRORS=jsonl:./backup)');
      for (const m of statuses) io.out(line(m));
    }
    return statuses.every((m) => m.status === 'ok') ? 0 : 3;
  });
}

async function prune(io: CliIO, args: { keepDays: number | undefined; dryRun: boolean }): Promise<number> {
  const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
  const keepDays = args.keepDays ?? config.changes.keepDays;
  return withPrimary(io, async (store, urls, recoveryMs) => {
    const log = await openChangeLogReader(store, { recoveryMs });
    const result = await pruneChangeLog({ log, keepMs: keepDays * 86_400_000, dryRun: args.dryRun, onProgress: (text) => io.err(text) });
    io.out(`change log of ${store.engine} at ${store.location}: ${result.first === 0 ? 'empty' : `seq ${result.first}–${result.head}`}`);
    if (result.through === 0) io.out(`  nothing to prune (records are kept ${keepDays} day(s), and until every cursor has passed them)`);
    else io.out(`  ${args.dryRun ? 'would prune' : 'pruned'} seq ${result.first}–${result.through}${args.dryRun ? '' : ` (${result.deleted} record(s))`}`);
    if (result.held_by) {
      const known = urls.some((url) => mirrorIdOf(url) === result.held_by!.id) || result.held_by.url === 'webhook outbox';
      io.out(`  held back by ${result.held_by.url} at seq ${result.held_by.seq}${known ? '' : ' — not in OTTO_MIRRORS here; if it is gone for good: otto mirror forget ' + result.held_by.id}`);
    }
    return 0;
  });
}

async function forget(io: CliIO, which: string): Promise<number> {
  return withPrimary(io, async (store) => {
    const cursors = await store.collection<MirrorCursor>(MIRRORS_SPEC);
    const wanted = new Set([which, mirrorIdOf(which)]);
    let found: MirrorCursor | undefined;
    for await (const batch of cursors.scan()) found ??= batch.find((c) => wanted.has(c.id) || c.url === which);
    if (!found) {
      io.err(`otto mirror forget: no mirror cursor ${JSON.stringify(which)} (see \`otto mirror prune --dry-run\` for the one holding the log back)`);
      return 1;
    }
    if (found.url === 'webhook outbox') {
      io.err('otto mirror forget: the webhook outbox is not a mirror; its cursor stays (delete webhooks instead)');
      return 1;
    }
    if (found.lease_until && Date.parse(found.lease_until) > Date.now()) {
      io.err(`otto mirror forget: ${found.url} is being fed by a running otto serve (until ${found.lease_until}); remove it from OTTO_MIRRORS there first`);
      return 1;
    }
    await cursors.delete({ id: found.id });
    io.out(`forgot ${found.url} (was at seq ${found.seq}); configured again, it starts with a full copy`);
    return 0;
  });
}

/** The cursor id of a mirror URL, or '' when it is not one. */
function mirrorIdOf(url: string): string {
  try {
    return mirrorId(parseTargetUrl(url).display);
  } catch {
    return '';
  }
}

async function sync(io: CliIO, timeoutMs: number): Promise<number> {
  return withPrimary(io, async (store, urls, recoveryMs) => {
    if (urls.length === 0) {
      io.out('no mirrors configured (set OTTO_MIRRORS)');
      return 0;
    }
    const log = await openChangeLogReader(store, { recoveryMs });
    let failed = 0;
    for (const url of urls) {
      const mirror = new Mirror(url, log, { onEvent: (text) => io.err(text) });
      try {
        io.out(line(await mirror.syncOnce({ timeoutMs })));
      } catch (error) {
        failed++;
        io.err(`otto mirror sync: ${mirror.url}: ${(error as Error).message}`);
      } finally {
        await mirror.stop();
      }
    }
    return failed === 0 ? 0 : 1;
  });
}

async function compact(io: CliIO, given: string[]): Promise<number> {
  const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
  const urls = given.length > 0 ? given : config.mirrors.urls.filter((u) => u.startsWith('jsonl:'));
  if (urls.length === 0) {
    io.out('no jsonl: mirrors to compact (OTTO_MIRRORS has none; or name one: otto mirror compact jsonl:<dir>)');
    return 0;
  }
  const { createJsonlStore } = await import('../../storage/jsonl/jsonl-store.ts');
  let failed = 0;
  for (const url of urls) {
    const target = parseTargetUrl(url, io.cwd);
    if (target.kind !== 'jsonl') throw new UsageError(`${target.display} is not a jsonl: mirror; only JSON-lines mirrors are compacted`);
    try {
      const store = await createJsonlStore({ dir: target.display.slice('jsonl:'.length), create: false });
      try {
        const results = await store.compact();
        const documents = results.reduce((n, r) => n + r.documents, 0);
        const freed = results.reduce((n, r) => n + r.tailBytes, 0);
        io.out(`compacted ${target.display}: ${results.length} collection(s), ${documents} document(s), ${freed} byte(s) of tail folded into snapshots`);
      } finally {
        await store.close();
      }
    } catch (error) {
      failed++;
      const busy = error instanceof StorageError && error.code === 'UNAVAILABLE' && /lock|open for writing|another/i.test(error.message);
      io.err(`otto mirror compact: ${target.display}: ${(error as Error).message}${busy ? ' — stop the Otto feeding it first' : ''}`);
    }
  }
  return failed === 0 ? 0 : 1;
}
