import { collections } from '../../domain/collections.ts';
import { StorageError, isStorageError, type Doc, type Store } from '../contract.ts';
import type { Migration } from './migration.ts';

/** A row of `_migrations`. */
export interface MigrationRecord extends Doc {
  description: string;
  applied_at: string;
  otto_version: string;
  duration_ms: number;
}

/** Where a database stands against this Otto's migration list. */
export interface MigrationStatus {
  applied: MigrationRecord[];
  pending: Migration[];
  /** Ids recorded in the database that this Otto does not know: written by a newer Otto. */
  unknown: MigrationRecord[];
}

async function records(store: Store): Promise<MigrationRecord[]> {
  const table = await store.collection<MigrationRecord>(collections.migrations);
  const out: MigrationRecord[] = [];
  for await (const batch of table.scan()) out.push(...batch);
  return out;
}

/** Reads which migrations are applied, pending or unknown. Throws StorageError when the store fails. */
export async function migrationStatus(args: { store: Store; migrations: Migration[] }): Promise<MigrationStatus> {
  const applied = await records(args.store);
  const known = new Set(args.migrations.map((m) => m.id));
  const done = new Set(applied.map((r) => r.id));
  return {
    applied: applied.filter((r) => known.has(r.id)),
    pending: args.migrations.filter((m) => !done.has(m.id)),
    unknown: applied.filter((r) => !known.has(r.id)),
  };
}

/**
 * Applies pending migrations in order and records each in `_migrations`.
 * Returns the ids applied now and the total number applied.
 * Throws StorageError UNSUPPORTED, with what to do, when the database was written by a
 * newer Otto (it has migrations this Otto does not know); any failing migration stops
 * the run with its error, leaving the ones before it recorded. Never prompts or exits.
 */
export async function runMigrations(args: {
  store: Store;
  migrations: Migration[];
  ottoVersion: string;
  onProgress?: (line: string) => void;
}): Promise<{ appliedNow: string[]; total: number }> {
  const status = await migrationStatus(args);
  assertNotNewer(status, args.ottoVersion);
  const table = await args.store.collection<MigrationRecord>(collections.migrations);
  const appliedNow: string[] = [];
  for (const [i, migration] of status.pending.entries()) {
    args.onProgress?.(`migration ${i + 1}/${status.pending.length}: ${migration.id} — ${migration.description}`);
    const started = performance.now();
    await migration.up({ store: args.store });
    try {
      await table.insert({
        doc: {
          id: migration.id,
          description: migration.description,
          applied_at: new Date().toISOString(),
          otto_version: args.ottoVersion,
          duration_ms: Math.round(performance.now() - started),
        },
      });
      appliedNow.push(migration.id);
    } catch (error) {
      // Another process applied and recorded it meanwhile; migrations are idempotent.
      if (!isStorageError(error, 'DUPLICATE')) throw error;
    }
  }
  return { appliedNow, total: status.applied.length + status.pending.length };
}

/**
 * Throws StorageError UNSUPPORTED, saying what to do, when the database has migrations this
 * Otto does not know (it was written by a newer Otto). Returns normally otherwise.
 */
export function assertNotNewer(status: MigrationStatus, ottoVersion: string): void {
  if (status.unknown.length > 0) throw newerOttoError(status.unknown, ottoVersion);
}

function newerOttoError(unknown: MigrationRecord[], ottoVersion: string): StorageError {
  const newest = unknown.map((r) => `${r.id} (Otto ${r.otto_version})`).join(', ');
  return new StorageError(
    'UNSUPPORTED',
    `This database was written by a newer Otto: it has migration(s) ${newest} that Otto ${ottoVersion} does not know. ` +
      'Upgrade Otto to that version or later, or point OTTO_DATA_DIR / MONGODB_DATABASE at another database. Nothing was changed.',
  );
}
