/**
 * The storage contract: what every engine (memory, SQLite, MongoDB) implements and
 * what domain code is allowed to use. Engines are proven by one conformance suite
 * (`test/storage/conformance/`).
 *
 * Conventions every engine guarantees:
 * - Documents are plain JSON objects with a string `id`, a numeric `version` (1 on
 *   insert, +1 on every write), and ISO-8601 `created_at` / `updated_at`.
 * - Field names never start with `$`, never contain `.` or NUL, and are never
 *   `__proto__`; such documents are rejected with `INVALID` rather than stored.
 * - Request values are values: a `Where` is plain data built by code and its values
 *   are compared for equality/order only, never interpreted as query operators.
 * - Failures throw `StorageError`; no method signals failure by returning false.
 */

/** A JSON value as stored. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Fields every stored document carries. */
export interface StoredMeta {
  id: string;
  version: number;
  created_at: string;
  updated_at: string;
}

/** A stored document: Otto's own schema plus the stored metadata. */
export type Doc = StoredMeta & { [key: string]: unknown };

/** What callers hand to `insert`/`upsert`: an id and fields; metadata is filled in. */
export type NewDoc<T extends StoredMeta> = Omit<T, 'version' | 'created_at' | 'updated_at'> &
  Partial<Pick<T, 'version' | 'created_at' | 'updated_at'>>;

/** A scalar a `Where` may compare against. Objects and arrays are rejected with INVALID. */
export type Scalar = string | number | boolean | null;

/** One index over top-level fields, in order; `unique` rejects duplicates with DUPLICATE. */
export interface IndexSpec {
  /** Stable index name; derived from the fields when omitted. */
  name?: string;
  /** Fields and directions, e.g. `[['conversation_id', 1], ['offset', -1]]`. */
  fields: Array<[field: string, direction: 1 | -1]>;
  unique?: boolean;
}

/** Declares a collection: its name, indexes and the schema version of its documents. */
export interface CollectionSpec {
  /** Lowercase snake_case name; system collections start with `_`. */
  name: string;
  indexes: IndexSpec[];
  /** Version of the document shape, bumped by a migration that reshapes documents. */
  schemaVersion: number;
}

/**
 * A filter as plain data. Build it with the helpers in `where.ts` (`eq`, `isIn`,
 * `gt`, `gte`, `lt`, `lte`, `and`). `eq` with `null` matches a missing field too.
 */
export type Where =
  | { op: 'eq'; field: string; value: Scalar }
  | { op: 'in'; field: string; values: Scalar[] }
  | { op: 'gt' | 'gte' | 'lt' | 'lte'; field: string; value: Scalar }
  | { op: 'and'; clauses: Where[] };

/** One sort key. Sort fields must be present (non-null) on every document they order. */
export interface SortKey {
  field: string;
  direction: 'asc' | 'desc';
}

export interface FindOptions {
  where?: Where;
  /** Sort keys; `id` (ascending, or the direction of the last key) is always appended as the tie-breaker. Default `created_at asc`. */
  sort?: SortKey[];
  /** Page size, 1..1000; default 50. */
  limit?: number;
  /** The `next` cursor of the previous page, for the same `where` and `sort`. */
  after?: string | null;
}

/**
 * What `aggregate` computes: the documents matching `where`, grouped by the values of the
 * `groupBy` fields, with a count and the sums of the `sum` fields per group.
 */
export interface AggregateOptions {
  where?: Where;
  /**
   * Top-level fields whose values form a group (0..4). Empty: one group over every match.
   * Group fields should hold strings or numbers; a missing field and null form one group (null).
   */
  groupBy: string[];
  /**
   * Top-level fields to add up (0..8). Numbers are added; any other value (missing, null,
   * string, boolean, object) adds nothing. Integers are summed exactly on every engine (up to
   * 2^53); sums of fractions may differ in the last bits between engines.
   */
  sum: string[];
}

/** One group of an aggregation. */
export interface AggregateRow {
  /** The group's value of each `groupBy` field (null for missing). */
  group: Record<string, string | number | null>;
  /** How many documents the group has (always ≥ 1). */
  count: number;
  /** The sum of each `sum` field over the group (0 when none held a number). */
  sums: Record<string, number>;
}

/** Most groups one `aggregate` returns; more throws INVALID (narrow the where). */
export const MAX_AGGREGATE_GROUPS = 100_000;

/** A page of results. `next` is null when this is the last page. */
export interface Page<T> {
  items: T[];
  next: string | null;
}

/** What an engine can do, probed at connect. Code and tests branch on these, never on the engine's name. */
export interface Capabilities {
  /** Multi-document ACID transactions. */
  transactions: boolean;
  /** Server-pushed change notifications (MongoDB change streams). */
  changeStreams: boolean;
  /** Server-side expiry of documents (TTL indexes). */
  ttl: boolean;
  /** Data survives a process restart. */
  durable: boolean;
  /** Several processes may share this store safely. */
  multiProcess: boolean;
}

/** The result of a health probe. `location` never contains credentials. */
export interface StoreHealth {
  ok: boolean;
  engine: string;
  location: string;
  latency_ms: number;
  server_version?: string;
  error?: string;
}

/** The kind of write a change record describes. */
export type ChangeOp = 'insert' | 'update' | 'delete';

/**
 * One committed write, as handed to write hooks. `doc` is the document after the
 * write, or null for a delete (a tombstone): a copy, which hooks may keep.
 */
export interface WriteEvent {
  collection: string;
  op: ChangeOp;
  id: string;
  doc: Doc | null;
  /**
   * `doc` as the JSON text the engine stored (exactly `JSON.stringify(doc)`), when it has
   * it; absent for deletes and on engines that do not store text. A hook that stores the
   * document as text uses it instead of serializing `doc` again.
   */
  json?: string;
}

/**
 * Called for every committed write. Engines with transactions call it inside the
 * transaction that performs the write, so a hook that writes (e.g. a change log
 * row) commits or rolls back with the entity; a hook that throws aborts the write.
 */
export type WriteHook = (event: WriteEvent) => void;

/** A collection of documents of one kind. */
export interface Collection<T extends StoredMeta = Doc> {
  readonly spec: CollectionSpec;

  /**
   * Inserts a new document. Sets `version` 1 and `created_at`/`updated_at` (keeping
   * given timestamps). Returns the stored document.
   * Throws DUPLICATE if the id or a unique index value exists; INVALID for a bad document.
   */
  insert(args: { doc: NewDoc<T> }): Promise<T>;

  /**
   * Inserts several new documents in one write (one transaction where the engine has them,
   * one round trip otherwise). Returns them as stored, in order.
   * Throws DUPLICATE if any collides; on engines without transactions the ones before the
   * collision may have been written. With `verbatim`, the given `version`/`created_at`/
   * `updated_at` are stored as they are (bulk replication and transfer of new documents).
   */
  insertMany(args: { docs: NewDoc<T>[]; verbatim?: boolean }): Promise<T[]>;

  /**
   * Inserts the document or replaces the stored one with the same id (a whole-document
   * write). The version becomes the stored version + 1 (or 1), `created_at` is kept.
   * With `verbatim`, the given `version`/`created_at`/`updated_at` are stored as they are
   * (replication and transfer). Returns the stored document. Throws DUPLICATE on a unique
   * index collision with another document; INVALID for a bad document.
   */
  upsert(args: { doc: NewDoc<T>; verbatim?: boolean }): Promise<T>;

  /** Returns the document with this id, or null when there is none. */
  get(args: { id: string }): Promise<T | null>;

  /**
   * Returns one page of documents matching `where`, in `sort` order, after `after`.
   * Cursors hold the sort values of the last item, so they stay valid when that
   * document is deleted. Throws INVALID for a malformed where, sort or cursor.
   */
  find(args?: FindOptions): Promise<Page<T>>;

  /** Returns how many documents match `where` (all when omitted). */
  count(args?: { where?: Where }): Promise<number>;

  /**
   * Sets the given top-level fields (shallow; `undefined` values are ignored; `id`,
   * `version` and `created_at` cannot be patched), bumps `version` and `updated_at`,
   * and returns the updated document. With `expectVersion`, writes only if the stored
   * version equals it. Throws NOT_FOUND if absent, CONFLICT on a version mismatch,
   * DUPLICATE on a unique index collision.
   */
  update(args: { id: string; patch: Partial<Omit<T, 'id' | 'version' | 'created_at'>>; expectVersion?: number }): Promise<T>;

  /**
   * Deletes the document. With `expectVersion`, only if the stored version equals it
   * (CONFLICT otherwise). Returns true if a document was deleted, false if there was none
   * (deleting is idempotent).
   */
  delete(args: { id: string; expectVersion?: number }): Promise<boolean>;

  /** Deletes every document matching `where` (required; use `count` first if unsure). Returns how many were deleted. */
  deleteMany(args: { where: Where }): Promise<number>;

  /**
   * Atomically adds `by` (default 1) to the numeric top-level `field` and returns the new
   * value; concurrent calls, from any number of processes, never return the same value.
   * Creates the document (`{id, [field]: by}`) when it does not exist. Bumps `version`.
   * Throws INVALID if the stored field is not a number.
   */
  increment(args: { id: string; field: string; by?: number }): Promise<number>;

  /**
   * Inserts documents numbered by a counter, e.g. the messages of a turn by their conversation's
   * `last_offset`: atomically adds `docs.length` to the numeric `counter.field` of the document
   * `counter.id` in the collection `counter.collection` (exactly as `increment`, which creates it
   * when missing), sets `field` of the documents to the reserved numbers in order (new value − n + 1
   * … new value), and inserts them. Returns them as stored.
   * One transaction where the engine has them (the counter and the documents commit together);
   * otherwise `increment` then one ordered `insertMany` (a failed insert leaves a gap in the
   * numbers, never a duplicate). The counter's collection must be open on this store.
   * Throws INVALID for a meta `field` or an unknown counter collection; otherwise as `increment`
   * and `insertMany`.
   */
  insertNumbered(args: { docs: NewDoc<T>[]; field: string; counter: { collection: string; id: string; field: string } }): Promise<T[]>;

  /**
   * Groups the documents matching `where` by the `groupBy` fields and returns, per group, its
   * values, its count and the sums of the `sum` fields, computed by the engine itself (SQL
   * GROUP BY on SQLite, `$match` + `$group` + `$sum` on MongoDB, a pass in memory elsewhere).
   * Rows come in ascending group order (null first, then numbers, then strings by code point),
   * only for groups with at least one document. Throws INVALID for a malformed where, a field
   * that is not a plain identifier, too many fields, or more than MAX_AGGREGATE_GROUPS groups.
   */
  aggregate(args: AggregateOptions): Promise<AggregateRow[]>;

  /** Yields every document in batches of `batchSize` (default 500), ordered by id, starting after the id `after`. */
  scan(args?: { after?: string; batchSize?: number }): AsyncIterable<T[]>;
}

/** A connected storage engine. */
export interface Store {
  /** Engine name, for display only (`memory`, `sqlite`, `mongodb`). */
  readonly engine: string;
  /** Where the data lives, for display: a file path or a host/database. Never credentials. */
  readonly location: string;
  /** Capabilities probed at connect. */
  readonly capabilities: Capabilities;

  /**
   * Opens the collection declared by `spec`, creating its table/indexes when missing
   * (idempotent). Returns the same instance for the same name.
   * Throws INVALID for a malformed spec.
   */
  collection<T extends StoredMeta = Doc>(spec: CollectionSpec): Promise<Collection<T>>;

  /** Names of the collections that exist in the store (including system ones). */
  listCollections(): Promise<string[]>;

  /** Index names that exist for a collection (for `otto doctor`). */
  listIndexes(args: { collection: string }): Promise<string[]>;

  /** Registers a hook called for every committed write of this store; returns a function that removes it. */
  onWrite(hook: WriteHook): () => void;

  /** Probes the engine; never throws (a failure is reported as `ok: false`). */
  health(): Promise<StoreHealth>;

  /** Releases connections and file handles. Idempotent. */
  close(): Promise<void>;
}

/** Codes of `StorageError`, each mapped to an HTTP status by the API's error registry. */
export type StorageErrorCode =
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'DUPLICATE'
  | 'INVALID'
  | 'UNAVAILABLE'
  | 'UNSUPPORTED'
  | 'INTERNAL';

/** The one error type engines throw. The driver's original error is in `cause`. */
export class StorageError extends Error {
  readonly code: StorageErrorCode;
  /** The offending field, when one can be named. */
  readonly field: string | undefined;

  constructor(code: StorageErrorCode, message: string, options: { cause?: unknown; field?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StorageError';
    this.code = code;
    this.field = options.field;
  }
}

/** True when `error` is a StorageError, optionally with the given code. */
export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}
