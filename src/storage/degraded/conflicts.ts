/**
 * Conflicts: spooled writes that were not applied when replayed, because the document had
 * changed in the primary meanwhile (its version differed from the one the write was based on)
 * or the write collided with a unique value written meanwhile. They are kept in the primary's
 * `_conflicts` collection for a person to look at, never applied silently.
 */
import { collections } from '../../domain/collections.ts';
import type { Collection, Doc } from '../contract.ts';
import { eq } from '../where.ts';

/** One recorded conflict. */
export interface ConflictRecord extends Doc {
  /** `open` until someone resolves it (`resolved`). */
  status: 'open' | 'resolved';
  /** The collection and document the spooled write was for. */
  collection: string;
  doc_id: string;
  /** The spooled write's operation (`update`, `upsert`, `delete`, `insert`, …). */
  op: string;
  /** Why it was not applied, in one sentence. */
  reason: string;
  /** The version the spooled write was based on (null: the document did not exist). */
  base_version: number | null;
  /** The document's version in the primary when the write was replayed (null: absent). */
  primary_version: number | null;
  /** The spooled write itself (what was acknowledged and not applied), as JSON text, without its collection spec. */
  spooled: string;
  /** When the write was acknowledged from the spool. */
  spooled_at: string;
  /** The spool entry, as `<spool id>:<seq>`. */
  spool_entry: string;
}

/** The spec of `_conflicts` (declared in src/domain/collections.ts). */
export const CONFLICTS_SPEC = collections.conflicts;

/** How many conflicts are still open. Throws StorageError. */
export async function countOpenConflicts(args: { conflicts: Collection<ConflictRecord> }): Promise<number> {
  return args.conflicts.count({ where: eq('status', 'open') });
}
