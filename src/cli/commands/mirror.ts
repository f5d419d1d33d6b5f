import { loadConfig, withDotEnv } from '../../config.ts';
import { Mirror, openChangeLogReader, parseTargetUrl, type MirrorStatus } from '../../storage/changes/index.ts';
import { openStore, StorageError, type Store } from '../../storage/index.ts';
import { UsageError, type Command, type CliIO } from '../command.ts';

const HELP = `Usage: otto mirror <status|sync|compact> [options]

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

Environment: the primary as for \`otto serve\` (OTTO_STORAGE, OTTO_DATA_DIR, MONGODB_URI, …),
OTTO_MIRRORS, OTTO_CHANGES_RECOVERY_MS (how long a pending write-ahead record may wait
before a reader recovers it; default 5000).`;

export const mirrorCommand: Command = {
  name: 'mirror',
  summary: 'mirror status, catch-up and JSONL compaction (status | sync | compact)',
  positionals: true,
  options: { json: { type: 'boolean' }, timeout: { type: 'string' } },
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
    throw new UsageError(action === undefined ? 'say `status`, `sync` or `compact`' : `unknown subcommand ${JSON.stringify(action)}; say status, sync or compact`);
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
