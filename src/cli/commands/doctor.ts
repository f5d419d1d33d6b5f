import { constants, accessSync, existsSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, loadConfig, withDotEnv, type OttoConfig } from '../../config.ts';
import { collections as specs, domainCollections } from '../../domain/collections.ts';
import { isStorageError, type CollectionSpec, type Store } from '../../storage/contract.ts';
import { migrationStatus, migrationsFor, openStore } from '../../storage/index.ts';
import { indexName } from '../../storage/validate.ts';
import type { CliIO, Command } from '../command.ts';

/** One thing `otto doctor` checked. */
export interface Finding {
  status: 'ok' | 'warn' | 'fail';
  check: string;
  detail: string;
  /** One line saying what to do (for warn and fail). */
  fix?: string;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Free space and writability of the SQLite data folder. */
function checkDataDir(config: OttoConfig, findings: Finding[]): void {
  const dir = dirname(config.sqlite.path);
  let existing = dir;
  for (let i = 0; i < 64 && !existsSync(existing); i++) existing = dirname(existing);
  if (existing !== dir) {
    try {
      accessSync(existing, constants.W_OK);
      findings.push({ status: 'warn', check: 'data dir', detail: `${dir} does not exist yet (it is created in ${existing}, which is writable)`, fix: 'nothing to do: `otto serve` or `otto migrate up` creates it' });
    } catch {
      findings.push({ status: 'fail', check: 'data dir', detail: `${dir} does not exist and ${existing} is not writable`, fix: `create ${dir} and make it writable for this user, or set OTTO_DATA_DIR to a writable folder` });
    }
  } else {
    const probe = join(dir, `.otto-doctor-${process.pid}`);
    try {
      writeFileSync(probe, 'probe');
      rmSync(probe, { force: true });
      findings.push({ status: 'ok', check: 'data dir', detail: `${dir} is writable` });
    } catch (error) {
      findings.push({ status: 'fail', check: 'data dir', detail: `${dir} is not writable (${message(error)})`, fix: `make ${dir} writable for this user (chown/chmod), or set OTTO_DATA_DIR to a writable folder` });
    }
  }
  try {
    const fs = statfsSync(existing);
    const free = Number(fs.bavail) * Number(fs.bsize);
    const text = free >= GiB ? `${(free / GiB).toFixed(1)} GiB` : `${Math.round(free / MiB)} MiB`;
    if (free < 100 * MiB) findings.push({ status: 'fail', check: 'disk space', detail: `only ${text} free at ${existing}`, fix: 'free disk space, or move OTTO_DATA_DIR to a larger disk (writes fail when the disk is full)' });
    else if (free < GiB) findings.push({ status: 'warn', check: 'disk space', detail: `${text} free at ${existing}`, fix: 'free disk space soon, or move OTTO_DATA_DIR to a larger disk' });
    else findings.push({ status: 'ok', check: 'disk space', detail: `${text} free at ${existing}` });
  } catch (error) {
    findings.push({ status: 'warn', check: 'disk space', detail: `cannot read free space at ${existing} (${message(error)})`, fix: 'check the free space by hand (df -h)' });
  }
}

/** The command that drops an index Otto does not declare, for the engine at hand. */
function dropHint(store: Store, collection: string, index: string): string {
  if (store.engine === 'sqlite') return `sqlite3 ${store.location} 'DROP INDEX "${collection}__${index}"' if nothing else uses it`;
  if (store.engine === 'mongodb') return `mongosh … --eval 'db.${collection}.dropIndex("${index}")' if nothing else uses it`;
  return 'drop it if nothing else uses it';
}

/** Compares each collection's indexes with Otto's specs; with `fix`, creates what is missing first. */
async function checkIndexes(store: Store, pending: boolean, fix: boolean, findings: Finding[]): Promise<void> {
  const wanted: CollectionSpec[] = [specs.counters, ...domainCollections];
  let present = new Set(await store.listCollections());
  const fixed: string[] = [];
  if (fix) {
    for (const spec of wanted) {
      const before = present.has(spec.name) ? new Set(await store.listIndexes({ collection: spec.name })) : null;
      const missing = spec.indexes.map(indexName).filter((n) => !before?.has(n));
      if (before && missing.length === 0) continue;
      try {
        await store.collection(spec);
        fixed.push(before ? `${spec.name}: created ${missing.join(', ')}` : `${spec.name}: created the collection`);
      } catch (error) {
        findings.push({ status: 'fail', check: 'indexes', detail: `${spec.name}: could not create its indexes: ${message(error)}`, fix: isStorageError(error, 'DUPLICATE') ? 'remove the duplicate documents the unique index refuses, then run `otto doctor --fix` again' : 'see the error above' });
      }
    }
    present = new Set(await store.listCollections());
  }
  let problems = 0;
  for (const spec of wanted) {
    if (!present.has(spec.name)) {
      if (pending) continue; // the migration creates it
      problems++;
      findings.push({ status: 'fail', check: 'indexes', detail: `collection ${spec.name} is missing`, fix: '`otto doctor --fix` creates it with its indexes' });
      continue;
    }
    const actual = new Set(await store.listIndexes({ collection: spec.name }));
    const expected = new Set(spec.indexes.map(indexName));
    const missing = [...expected].filter((n) => !actual.has(n));
    const extra = [...actual].filter((n) => n !== '_id_' && !expected.has(n));
    if (missing.length > 0) {
      problems++;
      const described = missing.map((name) => {
        const index = spec.indexes.find((i) => indexName(i) === name)!;
        return `${name} (${index.fields.map(([f, d]) => (d === 1 ? f : `${f} desc`)).join(', ')}${index.unique ? ', unique' : ''})`;
      });
      findings.push({ status: 'fail', check: 'indexes', detail: `${spec.name}: missing index ${described.join(', ')}`, fix: '`otto doctor --fix` creates missing indexes (`otto serve` also does at startup)' });
    }
    for (const name of extra) {
      problems++;
      findings.push({ status: 'warn', check: 'indexes', detail: `${spec.name}: index ${name} is not one of Otto's`, fix: dropHint(store, spec.name, name) });
    }
  }
  if (problems === 0) {
    const count = wanted.filter((s) => present.has(s.name)).length;
    if (count === 0 && pending) {
      findings.push({ status: 'ok', check: 'indexes', detail: 'no collections yet: the pending migrations create them with their indexes' });
      return;
    }
    findings.push({ status: 'ok', check: 'indexes', detail: `${count} collection(s) have exactly Otto's indexes${fixed.length ? ` (fixed: ${fixed.join('; ')})` : ''}` });
  } else if (fixed.length) {
    findings.push({ status: 'ok', check: 'indexes', detail: `fixed: ${fixed.join('; ')}` });
  }
}

/** Runs every check and returns the findings. Never throws for a problem it can describe. */
export async function diagnose(args: { env: NodeJS.ProcessEnv; cwd: string; fix?: boolean }): Promise<Finding[]> {
  const findings: Finding[] = [];
  let config: OttoConfig;
  try {
    config = loadConfig(withDotEnv(args.env, args.cwd), args.cwd);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) findings.push({ status: 'fail', check: 'configuration', detail: problem, fix: 'set the variable as described (see README, Configuration) and run `otto doctor` again' });
    return findings;
  }
  const where = config.storage === 'sqlite' ? config.sqlite.path : config.storage === 'mongodb' ? `database ${config.mongodb.database}` : 'memory';
  findings.push({ status: 'ok', check: 'configuration', detail: `valid; OTTO_STORAGE=${config.storage} (${where})` });
  if (config.storage === 'sqlite') {
    checkDataDir(config, findings);
    if (!existsSync(config.sqlite.path)) {
      findings.push({ status: 'warn', check: 'connection', detail: `there is no database at ${config.sqlite.path} yet`, fix: '`otto migrate up` creates it (so does `otto serve`); if you expected data here, check OTTO_DATA_DIR and OTTO_SQLITE_FILE' });
      return findings;
    }
  }
  let store: Store;
  try {
    store = await openStore(config);
  } catch (error) {
    const fix =
      config.storage === 'mongodb'
        ? 'check MONGODB_URI and that the server is running and reachable (`npm run mongodb:local` starts a local one)'
        : `check that ${config.sqlite.path} is a SQLite database this user can read and write`;
    findings.push({ status: 'fail', check: 'connection', detail: `cannot open the ${config.storage} store: ${message(error)}`, fix });
    return findings;
  }
  try {
    const health = await store.health();
    if (!health.ok) {
      findings.push({ status: 'fail', check: 'connection', detail: `${store.engine} at ${store.location}: ${health.error ?? 'not healthy'}`, fix: config.storage === 'mongodb' ? 'check that the MongoDB server is up and reachable' : 'check the database file' });
      return findings;
    }
    findings.push({ status: 'ok', check: 'connection', detail: `${store.engine} at ${store.location}${health.server_version ? ` (${health.server_version})` : ''}, ${health.latency_ms} ms` });
    const caps = store.capabilities;
    const on = Object.entries(caps).filter(([, v]) => v).map(([k]) => k);
    if (!caps.durable) findings.push({ status: 'warn', check: 'capabilities', detail: `${on.join(', ') || 'none'}; not durable: everything is lost when Otto stops`, fix: 'set OTTO_STORAGE=sqlite (the default) or mongodb to keep data' });
    else if (!caps.multiProcess) findings.push({ status: 'warn', check: 'capabilities', detail: `${on.join(', ')}; not safe for several Otto processes at once`, fix: 'run a single Otto process against this store (or use a MongoDB server with atomic updates)' });
    else findings.push({ status: 'ok', check: 'capabilities', detail: on.join(', ') });

    const migrations = migrationsFor(store.engine);
    let pending = migrations.length > 0;
    if (!(await store.listCollections()).includes(specs.migrations.name)) {
      findings.push({ status: 'warn', check: 'migrations', detail: `none applied, ${migrations.length} pending`, fix: '`otto migrate up` applies them (`otto serve` does at startup unless OTTO_AUTO_MIGRATE=false)' });
    } else {
      const status = await migrationStatus({ store, migrations });
      pending = status.pending.length > 0;
      const detail = `${status.applied.length}/${migrations.length} applied`;
      if (status.unknown.length > 0) {
        findings.push({ status: 'fail', check: 'migrations', detail: `${detail}; unknown: ${status.unknown.map((r) => `${r.id} (Otto ${r.otto_version})`).join(', ')}: written by a newer Otto`, fix: 'upgrade Otto to that version, or point the configuration at another database' });
      } else if (pending) {
        findings.push({ status: 'warn', check: 'migrations', detail: `${detail}; pending: ${status.pending.map((m) => m.id).join(', ')}`, fix: '`otto migrate up` applies them (`otto serve` does at startup unless OTTO_AUTO_MIGRATE=false)' });
      } else {
        findings.push({ status: 'ok', check: 'migrations', detail });
      }
    }
    await checkIndexes(store, pending, args.fix === true, findings);
  } catch (error) {
    findings.push({ status: 'fail', check: 'store', detail: `a check failed: ${message(error)}`, fix: 'see the error; `otto doctor` again once it is fixed' });
  } finally {
    await store.close();
  }
  return findings;
}

/** Prints the findings, one line each, with the fix under each warning or failure. */
export function printFindings(io: CliIO, findings: Finding[]): void {
  const width = Math.max(...findings.map((f) => f.check.length));
  for (const f of findings) {
    io.out(`${(f.status === 'fail' ? 'FAIL' : f.status).padEnd(5)} ${f.check.padEnd(width)}  ${f.detail}`);
    if (f.fix && f.status !== 'ok') io.out(`${' '.repeat(width + 8)}fix: ${f.fix}`);
  }
  const failed = findings.filter((f) => f.status === 'fail').length;
  const warned = findings.filter((f) => f.status === 'warn').length;
  io.out(failed ? `${failed} problem(s) to fix${warned ? `, ${warned} warning(s)` : ''}` : warned ? `healthy, with ${warned} warning(s)` : 'healthy');
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check configuration, connection, migrations, indexes and disk; say how to fix',
  options: { fix: { type: 'boolean' } },
  help: `Usage: otto doctor [--fix]

Checks the configured store and prints one line per finding (ok, warn or FAIL), each problem
with a one-line fix:
  configuration   the environment (and ./.env) is valid
  data dir        (SQLite) the data folder is writable; disk space left
  connection      the store opens and answers; engine, location, server version, latency
  capabilities    what the engine can do (durable, safe for several processes, …)
  migrations      applied, pending, and unknown ones (written by a newer Otto)
  indexes         every collection has exactly the indexes Otto declares (missing or extra)
Reads only, except with --fix.

Options:
  --fix   create missing collections and indexes (what \`otto serve\` does at startup)

Examples:
  otto doctor
  OTTO_STORAGE=mongodb MONGODB_URI=mongodb://127.0.0.1:27017/ otto doctor
  otto doctor --fix

Exit code: 0 when nothing failed (warnings allowed), 1 when a check failed.`,
  async run({ values, io }) {
    const findings = await diagnose({ env: io.env, cwd: io.cwd, fix: values.fix === true });
    printFindings(io, findings);
    return findings.some((f) => f.status === 'fail') ? 1 : 0;
  },
};
