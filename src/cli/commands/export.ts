import { existsSync } from 'node:fs';
import { loadConfig, withDotEnv, type OttoConfig } from '../../config.ts';
import { StorageError, type Store } from '../../storage/contract.ts';
import { attachChangeLog } from '../../storage/changes/index.ts';
import { migrationsFor, openStore, runMigrations } from '../../storage/index.ts';
import { describeStoreUrl, openStoreUrlMigrated } from '../../storage/store-url.ts';
import { ottoVersion } from '../../version.ts';
import { UsageError, type CliIO, type Command } from '../command.ts';
import { TARGET_OPTIONS, copyOptions, copyOptionsHelp, parseCopyOptions, printWarnings, requireOption, runCopy } from './transfer.ts';

/** How the configured store is shown: `sqlite:<file>` or `mongodb://host:port/database`, never credentials. */
export function configuredLabel(store: Store): string {
  return store.engine === 'mongodb' ? `mongodb://${store.location}` : `${store.engine}:${store.location}`;
}

/**
 * Opens the store the configuration names. As a source it must exist: a SQLite file that is
 * not there is reported (UNAVAILABLE) rather than created empty.
 */
export async function openConfigured(config: OttoConfig, role: 'source' | 'target'): Promise<Store> {
  if (role === 'source' && config.storage === 'sqlite' && !existsSync(config.sqlite.path)) {
    throw new StorageError('UNAVAILABLE', `there is no SQLite database at ${config.sqlite.path} (OTTO_DATA_DIR / OTTO_SQLITE_FILE)`);
  }
  // As a target, NORMAL is enough: see TARGET_OPTIONS.
  return openStore(role === 'target' ? { ...config, sqlite: { ...config.sqlite, synchronous: TARGET_OPTIONS.sqliteSynchronous ?? 'NORMAL' } } : config);
}

/**
 * The configured store as an import's target: opened as a target (see `openConfigured`),
 * migrated, and with its change log attached, so every imported document reaches its mirrors,
 * the webhook outbox and other Otto processes like any other write. `check` sees the opened
 * store before anything is written to it (throw to refuse). Closing the returned store closes
 * it all. Throws StorageError, or what `check` throws (the store is closed first).
 */
export async function openImportTarget(args: { config: OttoConfig; io: CliIO; check?: (store: Store) => void }): Promise<Store> {
  const plain = await openConfigured(args.config, 'target');
  try {
    args.check?.(plain);
    await runMigrations({ store: plain, migrations: migrationsFor(plain.engine), ottoVersion, onProgress: (line) => args.io.err(line) });
    return (await attachChangeLog(plain, { recoveryMs: args.config.changes.recoveryMs })).store;
  } catch (error) {
    await plain.close();
    throw error;
  }
}

export const exportCommand: Command = {
  name: 'export',
  summary: 'copy the configured store into another store, e.g. a JSONL backup folder',
  options: { to: { type: 'string' }, ...copyOptions },
  help: `Usage: otto export --to <store> [--collections a,b] [--batch-size n] [--restart]

Copies everything from the store Otto is configured with (OTTO_STORAGE, OTTO_DATA_DIR,
MONGODB_URI, …) into another store. With jsonl:<folder> that is a backup: one JSON-lines file
per collection, compacted into <collection>.snapshot.jsonl at the end. Reads the configured
store only. Resumable like \`otto transfer\`: if it stops, run it again.

Options:
  --to <store>        jsonl:<folder>, sqlite:<file> or mongodb://host[:port]/<database>
${copyOptionsHelp}

Use a new folder for each backup: an export adds and replaces documents but never deletes, so
documents deleted since an earlier export into the same folder would still be there.

Examples:
  otto export --to jsonl:./backups/otto-$(date +%F)
  OTTO_STORAGE=mongodb MONGODB_URI=mongodb://127.0.0.1:27017/ otto export --to jsonl:./backup
  otto export --to sqlite:./copy.db --collections bots,guidelines,journeys

Exit code: 0 when exported, 1 on failure, 130 when interrupted (run it again to resume).`,
  async run({ values, io }) {
    const toText = requireOption(values, 'to', 'jsonl:./backup');
    const options = parseCopyOptions(values);
    const config = loadConfig(withDotEnv(io.env, io.cwd), io.cwd);
    const toLabel = describeStoreUrl(toText, io.cwd);
    const from = await openConfigured(config, 'source');
    try {
      const fromLabel = configuredLabel(from);
      if (fromLabel === toLabel && from.engine !== 'memory') throw new UsageError('--to names the configured store itself');
      const to = await openStoreUrlMigrated(toText, { cwd: io.cwd, ...TARGET_OPTIONS, onProgress: (line) => io.err(line) });
      try {
        printWarnings(io, to);
        return await runCopy({ io, from, to, labels: { from: fromLabel, to: toLabel }, options, verifyHint: `otto verify --a ${fromLabel} --b ${toLabel}` });
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  },
};
