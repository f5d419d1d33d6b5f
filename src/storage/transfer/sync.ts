/**
 * Brings a backup's documents into a primary without ever taking a primary document back in
 * time (`POST /admin/sync`, the Normo seed's `/sync-conversations`: backup → primary).
 *
 * For every document of the backup, compared with the primary's document of the same id:
 * - missing in the primary: written as it is in the backup (same id, version, timestamps): `inserted`;
 * - same content (ignoring `version`, `created_at`, `updated_at`; a null field equals a missing
 *   one): nothing written: `unchanged`;
 * - the primary's version is higher: the primary is newer, nothing written: `skipped_newer`;
 * - the backup's version is higher: the primary document is updated to the backup's content
 *   with `expectVersion` set to the version just read, so a write that lands in between wins
 *   (the update fails with CONFLICT and is counted as `skipped_newer`): `updated`;
 * - same version, different content, or a unique index held by another primary document:
 *   nothing written: `conflicts` (the ids are listed, capped).
 * Running it again changes nothing (everything is `unchanged` or `skipped_newer`). Nothing is
 * ever deleted. Read-only on the backup.
 */
import { StorageError, isStorageError, type Doc, type Store } from '../contract.ts';
import { assertCollectionNames, defaultCollections, readSpec, targetSpec } from './collections.ts';
import { canonicalJson } from './verify.ts';

export interface SyncOptions {
  /** Where documents come from (only `listCollections`, `collection` and `scan` are called). */
  from: Store;
  /** The primary, written through the contract (use the logged store so mirrors follow). */
  to: Store;
  /** Collections to bring in; default: those a transfer copies that the backup has. */
  collections?: string[];
  /** Compare and count only; write nothing. */
  dryRun?: boolean;
  /** Documents per scan batch; default 500. */
  batchSize?: number;
  /** Ids kept per conflict list; default 20. */
  limit?: number;
  /** Called after each collection. */
  onCollection?: (result: CollectionSync) => void;
}

/** What happened to one collection's documents. */
export interface CollectionSync {
  collection: string;
  /** Documents read from the backup. */
  read: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** The primary's document was newer (higher version, or written while the sync ran). */
  skipped_newer: number;
  /** Left as they are in the primary: same version with different content, or a unique index collision. */
  conflicts: number;
  /** Ids of the conflicts (capped). */
  conflict_ids: string[];
}

/** The whole sync. */
export interface SyncReport {
  dry_run: boolean;
  collections: CollectionSync[];
  totals: Omit<CollectionSync, 'collection' | 'conflict_ids'>;
  /** Ids of bots whose definitions (bot, guidelines, journeys, tools, mappings) were written. */
  changed_bots: string[];
  duration_ms: number;
}

const META = new Set(['id', 'version', 'created_at', 'updated_at']);
const DEFINITIONS = new Set(['guidelines', 'journeys', 'tools', 'tool_mappings']);

/** The document without its stored metadata and without null fields, as canonical JSON. */
function content(doc: Doc): string {
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) if (!META.has(key) && value !== null && value !== undefined) rest[key] = value;
  return canonicalJson(rest);
}

/**
 * Brings the backup's documents into the primary (see the file comment). Returns the counts per
 * collection. Throws StorageError: INVALID for an unknown or malformed collection name or bad
 * options, and whatever the engines throw (the collection and id named).
 */
export async function syncFromBackup(options: SyncOptions): Promise<SyncReport> {
  const started = performance.now();
  const { from, to } = options;
  if (from === to) throw new StorageError('INVALID', 'the backup and the primary are the same store');
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new StorageError('INVALID', 'batchSize must be an integer from 1 to 10000', { field: 'batchSize' });
  const limit = options.limit ?? 20;
  const present = new Set(await from.listCollections());
  let names: string[];
  if (options.collections) {
    names = assertCollectionNames(options.collections);
    const system = names.find((n) => n.startsWith('_') && n !== '_counters');
    if (system) throw new StorageError('INVALID', `${system} belongs to one store and is never synced`, { field: 'collections' });
    const absent = names.filter((n) => !present.has(n));
    if (absent.length > 0) throw new StorageError('INVALID', `the backup has no collection ${absent.join(', ')}`, { field: 'collections' });
  } else {
    names = defaultCollections(present);
  }
  const dryRun = options.dryRun === true;
  const changedBots = new Set<string>();
  const results: CollectionSync[] = [];
  for (const name of names) {
    const result: CollectionSync = { collection: name, read: 0, inserted: 0, updated: 0, unchanged: 0, skipped_newer: 0, conflicts: 0, conflict_ids: [] };
    const conflict = (id: string): void => {
      result.conflicts++;
      if (result.conflict_ids.length < limit) result.conflict_ids.push(id);
    };
    const touched = (doc: Doc): void => {
      if (name === 'bots') changedBots.add(doc.id);
      else if (DEFINITIONS.has(name) && typeof doc.bot_id === 'string') changedBots.add(doc.bot_id);
    };
    const source = await from.collection<Doc>(readSpec(name));
    const target = await to.collection<Doc>(targetSpec(name));
    for await (const batch of source.scan({ batchSize })) {
      for (const doc of batch) {
        result.read++;
        try {
          const current = await target.get({ id: doc.id });
          if (!current) {
            if (!dryRun) await target.upsert({ doc, verbatim: true });
            result.inserted++;
            touched(doc);
          } else if (content(current) === content(doc)) {
            result.unchanged++;
          } else if (current.version > doc.version) {
            result.skipped_newer++;
          } else if (current.version === doc.version) {
            conflict(doc.id);
          } else {
            if (!dryRun) {
              const patch: Record<string, unknown> = {};
              for (const [key, value] of Object.entries(doc)) if (!META.has(key)) patch[key] = value;
              for (const key of Object.keys(current)) if (!META.has(key) && !(key in patch)) patch[key] = null;
              await target.update({ id: doc.id, patch, expectVersion: current.version });
            }
            result.updated++;
            touched(doc);
            touched(current);
          }
        } catch (error) {
          if (isStorageError(error, 'CONFLICT') || isStorageError(error, 'NOT_FOUND')) result.skipped_newer++;
          else if (isStorageError(error, 'DUPLICATE')) conflict(doc.id);
          else if (isStorageError(error)) throw new StorageError(error.code, `${name}/${doc.id}: ${error.message}`, { cause: error, field: error.field });
          else throw new StorageError('INTERNAL', `${name}/${doc.id}: ${(error as Error).message}`, { cause: error });
        }
      }
    }
    results.push(result);
    options.onCollection?.(result);
  }
  const totals = { read: 0, inserted: 0, updated: 0, unchanged: 0, skipped_newer: 0, conflicts: 0 };
  for (const r of results) for (const key of Object.keys(totals) as Array<keyof typeof totals>) totals[key] += r[key];
  return { dry_run: dryRun, collections: results, totals, changed_bots: [...changedBots].sort(), duration_ms: Math.round(performance.now() - started) };
}
