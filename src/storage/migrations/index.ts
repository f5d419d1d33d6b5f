import type { Migration } from './migration.ts';
import { initialCollections } from './0001-initial-collections.ts';

export type { Migration } from './migration.ts';
export { assertNotNewer, migrationStatus, runMigrations, type MigrationRecord, type MigrationStatus } from './runner.ts';

/**
 * The ordered migration list of each engine. Lists share migrations that are written
 * against the contract; an engine-specific migration appears only in its own list.
 */
export const migrationsByEngine: Record<string, Migration[]> = {
  memory: [initialCollections],
  sqlite: [initialCollections],
  mongodb: [initialCollections],
  jsonl: [initialCollections],
};

/** The migration list for an engine; throws for an engine with no list. */
export function migrationsFor(engine: string): Migration[] {
  const list = migrationsByEngine[engine];
  if (!list) throw new Error(`no migration list for storage engine ${engine}`);
  return list;
}
