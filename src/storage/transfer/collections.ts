import { collections as specs, domainCollections } from '../../domain/collections.ts';
import { StorageError, type CollectionSpec, type Store } from '../contract.ts';
import { assertSpec } from '../validate.ts';

/** Where transfers keep their checkpoints, in the target store. */
export const TRANSFERS: CollectionSpec = { name: '_transfers', schemaVersion: 1, indexes: [] };

/**
 * Collections that belong to one store and are never copied or compared: its migration
 * records (each target runs its own engine's list) and transfer checkpoints.
 */
const NEVER: ReadonlySet<string> = new Set([specs.migrations.name, TRANSFERS.name]);

const KNOWN = new Map<string, CollectionSpec>([...domainCollections, specs.counters, specs.migrations].map((s) => [s.name, s]));

/**
 * The collections a transfer or verify covers by default: the domain collections and
 * `_counters` (counters must carry over with the documents they number), then any other
 * collection whose name does not start with `_`. Other system collections (`_migrations`,
 * `_transfers`, and the change log, mirror cursors and spool, which describe one store's own
 * history) are left out. Domain order first, then by name.
 */
export function defaultCollections(names: Iterable<string>): string[] {
  const present = new Set(names);
  const order = [...domainCollections.map((s) => s.name), specs.counters.name];
  const known = order.filter((n) => present.has(n));
  const others = [...present].filter((n) => !order.includes(n) && !n.startsWith('_')).sort();
  return [...known, ...others];
}

/** Checks a requested list of collections; throws INVALID for a malformed name or one that is never copied. */
export function assertCollectionNames(names: string[]): string[] {
  for (const name of names) {
    assertSpec({ name, schemaVersion: 1, indexes: [] });
    if (NEVER.has(name)) throw new StorageError('INVALID', `${name} is never copied or compared: it belongs to one store (each store applies its own migrations)`, { field: 'collections' });
  }
  return [...new Set(names)];
}

/** The spec to open a collection with on a target: Otto's own (with its indexes) when known, else a bare one. */
export function targetSpec(name: string): CollectionSpec {
  return KNOWN.get(name) ?? { name, schemaVersion: 1, indexes: [] };
}

/**
 * The spec to open a collection with on a store that must not change: no indexes, so that
 * opening it never creates one (on SQLite and MongoDB, opening a collection creates missing indexes).
 */
export function readSpec(name: string): CollectionSpec {
  return { name, schemaVersion: 1, indexes: [] };
}

/** The names `store` has, as a set. */
export async function namesOf(store: Store): Promise<Set<string>> {
  return new Set(await store.listCollections());
}
