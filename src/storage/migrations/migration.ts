import type { Store } from '../contract.ts';

/**
 * One schema migration. Migrations are ordered by `id` within their engine's list,
 * applied once each, and recorded in `_migrations`. `up` must be idempotent: if two
 * processes race, both may run it and one records it.
 */
export interface Migration {
  /** Sortable, unique id, e.g. `0001_initial_collections`. */
  id: string;
  /** One line saying what it does, shown by `otto migrate status`. */
  description: string;
  /** Applies the migration. Throws StorageError on failure; never prompts or exits. */
  up(args: { store: Store }): Promise<void>;
}
