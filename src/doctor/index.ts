/**
 * `otto doctor`'s checks as library code: each returns findings (`ok`, `warn` or `fail`, with a
 * one-line fix for problems). The CLI prints them; `GET /admin/doctor` returns them for a
 * running server. Nothing here prompts, prints or exits.
 */
import { constants, accessSync, existsSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, loadConfig, withDotEnv, type OttoConfig } from '../config.ts';
import { collections as specs, domainCollections } from '../domain/collections.ts';
import type { MirrorStatus } from '../storage/changes/index.ts';
import { isStorageError, type CollectionSpec, type Store } from '../storage/contract.ts';
import { CONFLICTS_SPEC, countOpenConflicts, readSpoolSummary, type ConflictRecord, type DegradedStatus } from '../storage/degraded/index.ts';
import { migrationStatus, migrationsFor, openStore } from '../storage/index.ts';
import { indexName } from '../storage/validate.ts';

/** One thing `otto doctor` checked. */
export interface Finding {
  /** What was checked, e.g. `connection`, `spool`. */
  check: string;
  status: 'ok' | 'warn' | 'fail';
  /** What was found, in one line. */
  message: string;
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
      findings.push({ status: 'warn', check: 'data dir', message: `${dir} does not exist yet (it is created in ${existing}, which is writable)`, fix: 'nothing to do: `otto serve` or `otto migrate up` creates it' });
    } catch {
      findings.push({ status: 'fail', check: 'data dir', message: `${dir} does not exist and ${existing} is not writable`, fix: `create ${dir} and make it writable for this user, or set OTTO_DATA_DIR to a writable folder` });
    }
  } else {
    const probe = join(dir, `.otto-doctor-${process.pid}`);
    try {
      writeFileSync(probe, 'probe');
      rmSync(probe, { force: true });
      findings.push({ status: 'ok', check: 'data dir', message: `${dir} is writable` });
    } catch (error) {
      findings.push({ status: 'fail', check: 'data dir', message: `${dir} is not writable (${message(error)})`, fix: `make ${dir} writable for this user (chown/chmod), or set OTTO_DATA_DIR to a writable folder` });
    }
  }
  try {
    const fs = statfsSync(existing);
    const free = Number(fs.bavail) * Number(fs.bsize);
    const text = free >= GiB ? `${(free / GiB).toFixed(1)} GiB` : `${Math.round(free / MiB)} MiB`;
    if (free < 100 * MiB) findings.push({ status: 'fail', check: 'disk space', message: `only ${text} free at ${existing}`, fix: 'free disk space, or move OTTO_DATA_DIR to a larger disk (writes fail when the disk is full)' });
    else if (free < GiB) findings.push({ status: 'warn', check: 'disk space', message: `${text} free at ${existing}`, fix: 'free disk space soon, or move OTTO_DATA_DIR to a larger disk' });
    else findings.push({ status: 'ok', check: 'disk space', message: `${text} free at ${existing}` });
  } catch (error) {
    findings.push({ status: 'warn', check: 'disk space', message: `cannot read free space at ${existing} (${message(error)})`, fix: 'check the free space by hand (df -h)' });
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
        findings.push({ status: 'fail', check: 'indexes', message: `${spec.name}: could not create its indexes: ${message(error)}`, fix: isStorageError(error, 'DUPLICATE') ? 'remove the duplicate documents the unique index refuses, then run `otto doctor --fix` again' : 'see the error above' });
      }
    }
    present = new Set(await store.listCollections());
  }
  let problems = 0;
  for (const spec of wanted) {
    if (!present.has(spec.name)) {
      if (pending) continue; // the migration creates it
      problems++;
      findings.push({ status: 'fail', check: 'indexes', message: `collection ${spec.name} is missing`, fix: '`otto doctor --fix` creates it with its indexes' });
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
      findings.push({ status: 'fail', check: 'indexes', message: `${spec.name}: missing index ${described.join(', ')}`, fix: '`otto doctor --fix` creates missing indexes (`otto serve` also does at startup)' });
    }
    for (const name of extra) {
      problems++;
      findings.push({ status: 'warn', check: 'indexes', message: `${spec.name}: index ${name} is not one of Otto's`, fix: dropHint(store, spec.name, name) });
    }
  }
  if (problems === 0) {
    const count = wanted.filter((s) => present.has(s.name)).length;
    if (count === 0 && pending) {
      findings.push({ status: 'ok', check: 'indexes', message: 'no collections yet: the pending migrations create them with their indexes' });
      return;
    }
    findings.push({ status: 'ok', check: 'indexes', message: `${count} collection(s) have exactly Otto's indexes${fixed.length ? ` (fixed: ${fixed.join('; ')})` : ''}` });
  } else if (fixed.length) {
    findings.push({ status: 'ok', check: 'indexes', message: `fixed: ${fixed.join('; ')}` });
  }
}

/** The configuration finding. */
function checkConfig(config: OttoConfig, findings: Finding[]): void {
  const where = config.storage === 'sqlite' ? config.sqlite.path : config.storage === 'mongodb' ? `database ${config.mongodb.database}` : 'memory';
  findings.push({ status: 'ok', check: 'configuration', message: `valid; OTTO_STORAGE=${config.storage} (${where})` });
}

/**
 * Connection, capabilities, migrations and indexes of an open store. Returns false when the
 * store does not answer (the other checks are skipped). Never throws.
 */
async function checkStore(args: { config: OttoConfig; store: Store; fix: boolean; findings: Finding[] }): Promise<boolean> {
  const { config, store, findings } = args;
  try {
    const health = await store.health();
    if (!health.ok) {
      findings.push({ status: 'fail', check: 'connection', message: `${store.engine} at ${store.location}: ${health.error ?? 'not healthy'}`, fix: config.storage === 'mongodb' ? 'check that the MongoDB server is up and reachable (MONGODB_URI)' : 'check the database file' });
      return false;
    }
    findings.push({ status: 'ok', check: 'connection', message: `${store.engine} at ${store.location}${health.server_version ? ` (${health.server_version})` : ''}, ${health.latency_ms} ms` });
    const caps = store.capabilities;
    const on = Object.entries(caps).filter(([, v]) => v).map(([k]) => k);
    if (!caps.durable) findings.push({ status: 'warn', check: 'capabilities', message: `${on.join(', ') || 'none'}; not durable: everything is lost when Otto stops`, fix: 'set OTTO_STORAGE=sqlite (the default) or mongodb to keep data' });
    else if (!caps.multiProcess) findings.push({ status: 'warn', check: 'capabilities', message: `${on.join(', ')}; not safe for several Otto processes at once`, fix: 'run a single Otto process against this store (or use a MongoDB server with atomic updates)' });
    else findings.push({ status: 'ok', check: 'capabilities', message: on.join(', ') });

    const migrations = migrationsFor(store.engine);
    let pending = migrations.length > 0;
    if (!(await store.listCollections()).includes(specs.migrations.name)) {
      findings.push({ status: 'warn', check: 'migrations', message: `none applied, ${migrations.length} pending`, fix: '`otto migrate up` applies them (`otto serve` does at startup unless OTTO_AUTO_MIGRATE=false)' });
    } else {
      const status = await migrationStatus({ store, migrations });
      pending = status.pending.length > 0;
      const applied = `${status.applied.length}/${migrations.length} applied`;
      if (status.unknown.length > 0) {
        findings.push({ status: 'fail', check: 'migrations', message: `${applied}; unknown: ${status.unknown.map((r) => `${r.id} (Otto ${r.otto_version})`).join(', ')}: written by a newer Otto`, fix: 'upgrade Otto to that version, or point the configuration at another database' });
      } else if (pending) {
        findings.push({ status: 'warn', check: 'migrations', message: `${applied}; pending: ${status.pending.map((m) => m.id).join(', ')}`, fix: '`otto migrate up` applies them (`otto serve` does at startup unless OTTO_AUTO_MIGRATE=false)' });
      } else {
        findings.push({ status: 'ok', check: 'migrations', message: applied });
      }
    }
    await checkIndexes(store, pending, args.fix, findings);
    if (config.storage === 'mongodb') await checkConflicts(store, findings);
  } catch (error) {
    findings.push({ status: 'fail', check: 'store', message: `a check failed: ${message(error)}`, fix: 'see the error; `otto doctor` again once it is fixed' });
  }
  return true;
}

/** Open conflicts left by replaying the degraded-mode spool (`_conflicts`). Throws StorageError. */
async function checkConflicts(store: Store, findings: Finding[]): Promise<void> {
  if (!(await store.listCollections()).includes(CONFLICTS_SPEC.name)) {
    findings.push({ status: 'ok', check: 'conflicts', message: 'no conflicts recorded' });
    return;
  }
  const open = await countOpenConflicts({ conflicts: await store.collection<ConflictRecord>(CONFLICTS_SPEC) });
  if (open === 0) findings.push({ status: 'ok', check: 'conflicts', message: 'no open conflicts from degraded mode' });
  else {
    findings.push({
      status: 'warn',
      check: 'conflicts',
      message: `${open} spooled write(s) were not applied because the primary had changed meanwhile (kept in _conflicts)`,
      fix: "look at them with `mongosh … --eval 'db._conflicts.find({status: \"open\"})'`, redo the changes that should win, then set their status to \"resolved\"",
    });
  }
}

/** The degraded-mode spool: writes acknowledged while the primary was down and not yet replayed. Never throws. */
function checkSpool(config: OttoConfig, findings: Finding[], live?: DegradedStatus): void {
  if (config.storage !== 'mongodb') return;
  const dir = config.degraded.spoolDir;
  try {
    const summary = readSpoolSummary({ dir });
    const backlog = live?.spool_backlog ?? summary.backlog;
    if (backlog === 0) {
      findings.push({ status: 'ok', check: 'spool', message: `empty (${dir})` });
    } else if (live?.active || (live === undefined && summary.locked_by !== null)) {
      findings.push({ status: 'warn', check: 'spool', message: `${backlog} write(s) spooled in ${dir}${summary.oldest_at ? ` since ${summary.oldest_at}` : ''}, waiting for the primary`, fix: 'bring the MongoDB primary back (check MONGODB_URI and the server): the running Otto replays them by itself' });
    } else {
      findings.push({ status: 'warn', check: 'spool', message: `${backlog} write(s) in ${dir} not yet replayed into the primary${summary.oldest_at ? ` (oldest ${summary.oldest_at})` : ''}`, fix: 'start `otto serve` with this OTTO_SPOOL_DIR while the primary is reachable: it replays them at startup' });
    }
  } catch (error) {
    findings.push({ status: 'fail', check: 'spool', message: `cannot read the spool in ${dir}: ${message(error)}`, fix: 'check OTTO_SPOOL_DIR; move a corrupt spool.jsonl aside and report it' });
  }
}

/** Degraded mode of a running server. */
function checkDegraded(status: DegradedStatus, findings: Finding[]): void {
  if (!status.active) {
    findings.push({ status: 'ok', check: 'degraded mode', message: 'off: the primary serves reads and writes' });
    return;
  }
  const how = status.reads_from ? `reads from ${status.reads_from}, writes ${status.writes === 'spool' ? 'spooled' : 'refused (503)'}` : 'no mirror: reads and writes answer 503';
  findings.push({ status: status.reads_from ? 'warn' : 'fail', check: 'degraded mode', message: `since ${status.since}: ${status.reason}; ${how}${status.last_error ? ` (${status.last_error})` : ''}`, fix: status.reads_from ? 'bring the MongoDB primary back; Otto notices it and replays the spool by itself' : 'bring the MongoDB primary back, and set OTTO_MIRRORS (e.g. jsonl:./backup) so Otto can keep serving next time' });
}

/** Each mirror's lag and status. */
function checkMirrors(mirrors: MirrorStatus[], findings: Finding[]): void {
  for (const m of mirrors) {
    if (m.status === 'ok') findings.push({ status: 'ok', check: 'mirror', message: `${m.url}: at seq ${m.seq}${m.lag ? `, ${m.lag} change(s) behind` : ', caught up'}` });
    else findings.push({ status: 'warn', check: 'mirror', message: `${m.url}: ${m.status}, ${m.lag} change(s) and ${m.seconds_behind} s behind${m.last_error ? ` (${m.last_error})` : ''}`, fix: m.status === 'down' ? 'make the mirror reachable again (folder writable, server up); it catches up by itself' : 'nothing to do unless it keeps growing: check the mirror\'s disk or server load' });
  }
}

/**
 * Runs every check from the environment, opening the store itself (`otto doctor`), and returns
 * the findings. With `fix`, creates missing collections and indexes. Never throws for a problem
 * it can describe.
 */
export async function diagnose(args: { env: NodeJS.ProcessEnv; cwd: string; fix?: boolean }): Promise<Finding[]> {
  const findings: Finding[] = [];
  let config: OttoConfig;
  try {
    config = loadConfig(withDotEnv(args.env, args.cwd), args.cwd);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) findings.push({ status: 'fail', check: 'configuration', message: problem, fix: 'set the variable as described (see README, Configuration) and run `otto doctor` again' });
    return findings;
  }
  checkConfig(config, findings);
  if (config.storage === 'sqlite') {
    checkDataDir(config, findings);
    if (!existsSync(config.sqlite.path)) {
      findings.push({ status: 'warn', check: 'connection', message: `there is no database at ${config.sqlite.path} yet`, fix: '`otto migrate up` creates it (so does `otto serve`); if you expected data here, check OTTO_DATA_DIR and OTTO_SQLITE_FILE' });
      return findings;
    }
  }
  checkSpool(config, findings);
  let store: Store;
  try {
    store = await openStore(config);
  } catch (error) {
    const fix =
      config.storage === 'mongodb'
        ? 'check MONGODB_URI and that the server is running and reachable (`npm run mongodb:local` starts a local one)'
        : `check that ${config.sqlite.path} is a SQLite database this user can read and write`;
    findings.push({ status: 'fail', check: 'connection', message: `cannot open the ${config.storage} store: ${message(error)}`, fix });
    return findings;
  }
  try {
    await checkStore({ config, store, fix: args.fix === true, findings });
  } finally {
    await store.close();
  }
  return findings;
}

/**
 * Runs the checks of a running server on its own store (`GET /admin/doctor`): configuration,
 * data folder, connection, capabilities, migrations, indexes, mirrors, degraded mode, spool
 * and conflicts. Reads only. Never throws for a problem it can describe.
 */
export async function diagnoseRunning(args: { config: OttoConfig; store: Store; mirrors?: MirrorStatus[]; degraded?: DegradedStatus }): Promise<Finding[]> {
  const findings: Finding[] = [];
  checkConfig(args.config, findings);
  if (args.config.storage === 'sqlite') checkDataDir(args.config, findings);
  if (args.degraded) checkDegraded(args.degraded, findings);
  checkSpool(args.config, findings, args.degraded);
  if (args.degraded?.active) {
    findings.push({ status: 'fail', check: 'connection', message: `the ${args.store.engine} primary at ${args.store.location} is unreachable${args.degraded.last_error ? ` (${args.degraded.last_error})` : ''}`, fix: 'check MONGODB_URI and that the server is running and reachable' });
  } else {
    await checkStore({ config: args.config, store: args.store, fix: false, findings });
  }
  checkMirrors(args.mirrors ?? [], findings);
  return findings;
}
