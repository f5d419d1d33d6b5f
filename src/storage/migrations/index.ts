import type { Migration } from './migration.ts';
import { initialCollections } from './0001-initial-collections.ts';
import { accounts } from './0002-accounts.ts';
import { secretsChannels } from './0003-secrets-channels.ts';
import { usage } from './0004-usage.ts';
import { degraded } from './0005-degraded.ts';

export type { Migration } from './migration.ts';
export { assertNotNewer, migrationStatus, runMigrations, type MigrationRecord, type MigrationStatus } from './runner.ts';

/**
 * The ordered migration list of each engine. Lists share migrations that are written
 * against the contract; an engine-specific migration appears only in its own list.
 */
export const migrationsByEngine: Record<string, Migration[]> = {
  memory: [initialCollections, accounts, secretsChannels, usage, degraded],
  sqlite: [initialCollections, accounts, secretsChannels, usage, degraded],
  mongodb: [initialCollections, accounts, secretsChannels, usage, degraded],
  jsonl: [initialCollections, accounts, secretsChannels, usage, degraded],
};

/** The migration list for an engine; throws for an engine with no list. */
export function migrationsFor(engine: string): Migration[] {
  const list = migrationsByEngine[engine];
  if (!list) throw new Error(`no migration list for storage engine ${engine}`);
  return list;
}
