import type { ChangeOp, CollectionSpec, Doc } from '../contract.ts';

/**
 * One committed write, as consumers (mirrors, backups, live updates) read it from the
 * change log: `doc` is the document after the write, or null for a delete (a tombstone).
 */
export interface ChangeRecord {
  /** Position in the log: unique, increasing, never reused. */
  seq: number;
  collection: string;
  op: ChangeOp;
  /** The id of the document written. */
  id: string;
  doc: Doc | null;
  /** When the write was logged (ISO-8601, the writer's clock). */
  at: string;
}

/**
 * A row of `_changes` as stored, on every engine. Its own `id` is the zero-padded seq (so the
 * primary key orders the log, and a unique id settles a seq atomically on every engine); the
 * written document's id is `doc_id`. Rows are inserted once and never updated.
 *
 * `state` is `committed` for a write that happened; `aborted` marks a seq whose write did not
 * happen (write-ahead logs only), which readers skip.
 */
export interface StoredChange extends Doc {
  seq: number;
  collection: string;
  op: ChangeOp;
  doc_id: string;
  doc: Doc | null;
  at: string;
  state: 'committed' | 'aborted';
  /** Set when a reader committed a stale pending write from the entity's current state. */
  recovered?: boolean;
}

/**
 * A row of `_change_intents` (write-ahead logs only): a seq taken before the entity write.
 * The seq is pending until `_changes` has a row with the same id. Intents are dense: a seq is
 * only inserted when the one before it exists, so a missing intent means the log ends there.
 */
export interface ChangeIntent extends Doc {
  seq: number;
  collection: string;
  /** The write intended (`update` for upsert and increment, whose outcome is not known yet). */
  op: ChangeOp;
  doc_id: string;
  at: string;
  /** A nonce of the allocating batch, to tell its own rows after a partly failed insertMany. */
  writer: string;
}

/** A mirror's durable cursor and status, kept in the primary's `_mirrors`. */
export interface MirrorCursor extends Doc {
  /** The mirror's URL without credentials. */
  url: string;
  /** Every change up to this seq has been applied to the mirror. */
  seq: number;
  /** False until the first full copy of the primary has been made. */
  snapshot_done: boolean;
  /** When a batch was last applied (or the cursor last confirmed). */
  applied_at: string | null;
  /** The last failure (connection refused, …), or null once the mirror works again. */
  last_error: string | null;
  last_error_at: string | null;
  /** The process currently feeding this mirror, and until when its lease holds. */
  lease_owner: string | null;
  lease_until: string | null;
}

/** The change log's collection. */
export const CHANGES_SPEC: CollectionSpec = { name: '_changes', schemaVersion: 1, indexes: [] };
/** Write-ahead intents (seqs taken before their entity write). */
export const INTENTS_SPEC: CollectionSpec = { name: '_change_intents', schemaVersion: 1, indexes: [] };
/** Mirror cursors. */
export const MIRRORS_SPEC: CollectionSpec = { name: '_mirrors', schemaVersion: 1, indexes: [] };

/** Collections whose writes are never logged (the log itself and its consumers' cursors). */
export const UNLOGGED_COLLECTIONS: ReadonlySet<string> = new Set([CHANGES_SPEC.name, INTENTS_SPEC.name, MIRRORS_SPEC.name]);

const SEQ_DIGITS = 16;

/** The stored id of a seq: zero-padded so that id order is seq order. */
export function seqId(seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`seq must be a non-negative safe integer, got ${seq}`);
  return String(seq).padStart(SEQ_DIGITS, '0');
}

/** The seq of a stored id (NaN when it is not one). */
export function seqOf(id: string): number {
  return /^\d{16}$/.test(id) ? Number(id) : Number.NaN;
}

/** The consumer's view of a stored committed record. */
export function toChangeRecord(stored: StoredChange): ChangeRecord {
  return { seq: stored.seq, collection: stored.collection, op: stored.op, id: stored.doc_id, doc: stored.doc ?? null, at: stored.at };
}
