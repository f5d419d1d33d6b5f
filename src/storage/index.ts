import type { OttoConfig } from '../config.ts';
import { ottoVersion } from '../version.ts';
import type { Store } from './contract.ts';
import { createMemoryStore } from './memory/memory-store.ts';
import { assertNotNewer, migrationStatus, migrationsFor, runMigrations } from './migrations/index.ts';
import { createSqliteStore } from './sqlite/sqlite-store.ts';

export * from './contract.ts';
export { and, eq, gt, gte, isIn, lt, lte } from './where.ts';
export { migrationStatus, migrationsFor, runMigrations } from './migrations/index.ts';

/** Connects to the engine the configuration names. Throws StorageError (UNAVAILABLE when it cannot connect). */
export async function openStore(config: Pick<OttoConfig, 'storage' | 'sqlite' | 'mongodb'> & { degraded?: Pick<OttoConfig['degraded'], 'timeoutMs'> }): Promise<Store> {
  switch (config.storage) {
    case 'memory':
      return createMemoryStore();
    case 'sqlite':
      return createSqliteStore({ path: config.sqlite.path, synchronous: config.sqlite.synchronous });
    case 'mongodb': {
      const { createMongoStore, parseMongoUri } = await import('./mongodb/mongodb-store.ts');
      // A short wait for an unreachable server (OTTO_PRIMARY_TIMEOUT_MS) lets requests fail over
      // to degraded mode quickly instead of hanging; a URI setting serverSelectionTimeoutMS wins.
      const timeoutMs = parseMongoUri(config.mongodb.uri!).options.has('serverselectiontimeoutms') ? undefined : config.degraded?.timeoutMs;
      return createMongoStore({ uri: config.mongodb.uri!, database: config.mongodb.database, ...(timeoutMs === undefined ? {} : { serverSelectionTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs, heartbeatFrequencyMs: Math.max(500, timeoutMs) }) });
    }
  }
}

/** What `openStorage` found and did about migrations. */
export interface StorageStartup {
  store: Store;
  migrations: { appliedNow: string[]; applied: number; pending: number; total: number };
}

/**
 * Connects and, unless `migrate` is false, applies pending migrations. Returns the store and
 * the migration state. Throws StorageError; closes the store before rethrowing a migration failure.
 */
export async function openStorage(args: {
  config: Pick<OttoConfig, 'storage' | 'sqlite' | 'mongodb'> & { degraded?: Pick<OttoConfig['degraded'], 'timeoutMs'> };
  migrate: boolean;
  onProgress?: (line: string) => void;
}): Promise<StorageStartup> {
  const store = await openStore(args.config);
  try {
    const migrations = migrationsFor(store.engine);
    if (args.migrate) {
      const result = await runMigrations({ store, migrations, ottoVersion, onProgress: args.onProgress });
      return { store, migrations: { appliedNow: result.appliedNow, applied: result.total, pending: 0, total: migrations.length } };
    }
    const status = await migrationStatus({ store, migrations });
    assertNotNewer(status, ottoVersion);
    return { store, migrations: { appliedNow: [], applied: status.applied.length, pending: status.pending.length, total: migrations.length } };
  } catch (error) {
    await store.close();
    throw error;
  }
}
