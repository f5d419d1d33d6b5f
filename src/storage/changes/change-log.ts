/**
 * The change log: every committed write of a store as a record in its `_changes` collection,
 * `{id: seq (zero-padded), seq, collection, op, doc_id, doc | null, at, state}`, read in seq
 * order as a cursor. Two ways to write it, one record shape:
 *
 * - **transactional** (SQLite): a write hook inserts the record inside the entity's own
 *   `BEGIN IMMEDIATE` transaction, with seq = last seq + 1. Writers (in every process) are
 *   serialised by that lock, so records commit in seq order, a failed write leaves no record,
 *   and a committed one always has one.
 *
 * - **write-ahead** (MongoDB and any other store; no transactions needed). Before the entity
 *   write, the writer takes a seq by inserting an intent `{_id: seq}` into `_change_intents`
 *   (a unique id is atomic on every MongoDB-compatible server: two writers never get one seq,
 *   the loser tries the next). A seq is only tried when the one before it exists, so intents
 *   are dense and a missing one means the log ends there. After the entity write, the writer
 *   commits by inserting the record (the document as written, or `aborted` when the write did
 *   not happen) into `_changes` under the same id. Both rows are insert-only: on FerretDB,
 *   where updates scan the collection and are not atomic across connections, each step stays
 *   one indexed, atomic insert.
 *
 *   Writers commit out of seq order, so a reader stops at the first seq that has an intent but
 *   no record (pending). One still pending after the recovery window (measured on the reader's
 *   own clock) is recovered: the reader inserts the record from the entity's current state (doc
 *   or tombstone). Writer and recovery race on one unique id, so exactly one record wins; a
 *   writer that loses (it stalled past the window) and whose write the recovered state does not
 *   show logs its write again under a new seq, so nothing acknowledged is missing from the log.
 *   Because of that, the documents of a write-ahead log are not in commit order per document
 *   (`ordered` is false): consumers that need final states read them from the primary.
 */
import { randomBytes } from 'node:crypto';
import { collections as domainCollections } from '../../domain/collections.ts';
import { StorageError, isStorageError, type ChangeOp, type Collection, type CollectionSpec, type Doc, type Store, type WriteEvent } from '../contract.ts';
import type { SqliteStore } from '../sqlite/sqlite-store.ts';
import { gt } from '../where.ts';
import { CHANGES_SPEC, INTENTS_SPEC, UNLOGGED_COLLECTIONS, seqId, seqOf, toChangeRecord, type ChangeIntent, type ChangeRecord, type StoredChange } from './records.ts';

/** What `readChanges` returns. */
export interface ReadChangesResult {
  /** Committed changes, in seq order, none left out. */
  changes: ChangeRecord[];
  /** The seq to pass as `after` next time: the last one read or skipped (aborted). */
  next: number;
  /** Set when reading stopped at a seq whose write is still in flight (write-ahead logs). */
  waiting?: { seq: number; for_ms: number };
}

/** A store's change log, as its readers and writers see it. */
export interface ChangeLog {
  /** `transactional`: written in the entity's transaction; `write-ahead`: intent first. */
  readonly mode: 'transactional' | 'write-ahead';
  /**
   * True when seq order is commit order for every document (transactional logs), so a
   * consumer may apply the records' documents in order. Otherwise consumers that need the
   * final state of a document read it from the primary (as mirrors do).
   */
  readonly ordered: boolean;
  /** The store the log lives in; writes made directly on it are not logged. */
  readonly primary: Store;
  /** How long a reader waits for a pending write before recovering it. */
  readonly recoveryMs: number;
  /**
   * Up to `limit` (default 500, max 1000) committed changes after seq `after`, in seq order.
   * Stops at the first seq whose write is still in flight, recovering it once this process has
   * seen it pending for `recoveryMs`. Throws StorageError.
   */
  readChanges(args: { after: number; limit?: number }): Promise<ReadChangesResult>;
  /** The highest seq taken so far (0 for an empty log). Throws StorageError. */
  lastSeq(): Promise<number>;
  /** The lowest seq still stored (0 for an empty log); higher than 1 once the log was pruned. Throws StorageError. */
  firstSeq(): Promise<number>;
  /** When the write with this seq was logged (ISO-8601), or null when there is no such seq. Throws StorageError. */
  timeOf(seq: number): Promise<string | null>;
  /** The collection spec this process knows for a name (the one its code opened, else a bare one). */
  specFor(name: string): CollectionSpec;
  /** Calls `listener` (soon after) whenever this process commits a change. Returns a remover. */
  onCommit(listener: () => void): () => void;
  /** Detaches from the store (stops logging its writes). Idempotent; does not close the store. */
  close(): void;
}

/** Options of a change log. */
export interface ChangeLogOptions {
  /** Recovery window for pending writes; default 5000 ms. */
  recoveryMs?: number;
  /** Called with problems that do not fail a write (e.g. committing a record after the write). */
  onError?: (error: unknown) => void;
}

export const DEFAULT_RECOVERY_MS = 5_000;
const DEFAULT_READ_LIMIT = 500;
const MAX_READ_LIMIT = 1000;
/** Seqs a write-ahead reader fetches at once (one indexed get each, in parallel). */
const READ_WINDOW = 32;
/** Attempts to take seqs before giving up (each loses only to another writer taking them). */
const ALLOCATE_ATTEMPTS = 64;
/** Seqs taken in one insert at most (writes waiting while an allocation is in flight share the next one). */
const ALLOCATE_BATCH = 100;
const ID_DESC = [{ field: 'id', direction: 'desc' as const }];
const ID_ASC = [{ field: 'id', direction: 'asc' as const }];

/** True for the SQLite engine's store (it offers synchronous transactions that run write hooks). */
export function isTransactionalStore(store: Store): store is SqliteStore {
  const s = store as Partial<SqliteStore>;
  return store.capabilities.transactions && typeof s.transaction === 'function' && typeof s.database === 'object' && s.database !== null;
}

function checkRead(args: { after: number; limit?: number }): number {
  const after = args?.after;
  if (!Number.isSafeInteger(after) || after < 0) throw new StorageError('INVALID', 'after must be a seq (a whole number >= 0)', { field: 'after' });
  const limit = args.limit ?? DEFAULT_READ_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_READ_LIMIT) throw new StorageError('INVALID', `limit must be an integer from 1 to ${MAX_READ_LIMIT}`, { field: 'limit' });
  return limit;
}

/** The parts shared by both kinds of log: specs and notifications. */
abstract class BaseChangeLog implements ChangeLog {
  abstract readonly mode: 'transactional' | 'write-ahead';
  abstract readonly ordered: boolean;
  readonly primary: Store;
  readonly recoveryMs: number;
  protected readonly changes: Collection<StoredChange>;
  protected readonly onError: (error: unknown) => void;
  private readonly specs = new Map<string, CollectionSpec>();
  private readonly listeners = new Set<() => void>();
  private notifyQueued = false;

  constructor(primary: Store, changes: Collection<StoredChange>, options: ChangeLogOptions) {
    this.primary = primary;
    this.changes = changes;
    this.recoveryMs = options.recoveryMs ?? DEFAULT_RECOVERY_MS;
    this.onError = options.onError ?? (() => {});
    for (const spec of Object.values(domainCollections)) this.specs.set(spec.name, spec);
  }

  abstract readChanges(args: { after: number; limit?: number }): Promise<ReadChangesResult>;
  abstract lastSeq(): Promise<number>;
  abstract firstSeq(): Promise<number>;

  /** The lowest seq among the stored ids of `collections` (0 when all are empty). */
  protected async lowestSeq(collections: Array<Collection<Doc>>): Promise<number> {
    let first = 0;
    for (const collection of collections) {
      const doc = (await collection.find({ sort: ID_ASC, limit: 1 })).items[0];
      const seq = doc ? seqOf(doc.id) || 0 : 0;
      if (seq > 0 && (first === 0 || seq < first)) first = seq;
    }
    return first;
  }
  abstract timeOf(seq: number): Promise<string | null>;

  specFor(name: string): CollectionSpec {
    let spec = this.specs.get(name);
    if (!spec) {
      // The same object every time, so engines that cache collections by spec reuse theirs.
      spec = { name, schemaVersion: 1, indexes: [] };
      this.specs.set(name, spec);
    }
    return spec;
  }

  /** Remembers the spec code opened a collection with (so consumers create the same indexes). */
  rememberSpec(spec: CollectionSpec): void {
    this.specs.set(spec.name, spec);
  }

  onCommit(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Wakes listeners once, after the current synchronous work (e.g. after a SQLite COMMIT). */
  protected notify(): void {
    if (this.notifyQueued || this.listeners.size === 0) return;
    this.notifyQueued = true;
    setImmediate(() => {
      this.notifyQueued = false;
      for (const listener of this.listeners) {
        try {
          listener();
        } catch (error) {
          this.onError(error);
        }
      }
    });
  }

  close(): void {
    this.listeners.clear();
  }
}

/**
 * The SQLite log: a write hook that inserts the record in the entity's transaction.
 * seq = the highest seq + 1, read inside BEGIN IMMEDIATE (so no other writer, in any process,
 * is between the read and the commit). Reads are range scans of the primary key.
 */
export class TransactionalChangeLog extends BaseChangeLog {
  readonly mode = 'transactional' as const;
  readonly ordered = true;
  private detach: (() => void) | undefined;

  static async open(store: SqliteStore, options: ChangeLogOptions & { write?: boolean } = {}): Promise<TransactionalChangeLog> {
    const changes = await store.collection<StoredChange>(CHANGES_SPEC);
    const log = new TransactionalChangeLog(store, changes, options);
    if (options.write !== false) log.attach(store);
    return log;
  }

  private attach(store: SqliteStore): void {
    const db = store.database;
    const table = `"${CHANGES_SPEC.name}"`;
    const last = db.prepare(`SELECT id FROM ${table} ORDER BY id DESC LIMIT 1`);
    const insert = db.prepare(`INSERT INTO ${table} (id, doc) VALUES (?, ?)`);
    this.detach = store.onWrite((event: WriteEvent) => {
      if (UNLOGGED_COLLECTIONS.has(event.collection)) return;
      if (!db.isTransaction) throw new StorageError('INTERNAL', 'a SQLite write ran outside a transaction; its change cannot be logged with it');
      const row = last.get() as { id: string } | undefined;
      const seq = row ? seqOf(row.id) + 1 : 1;
      if (!Number.isSafeInteger(seq)) throw new StorageError('INTERNAL', `the change log holds a malformed id ${JSON.stringify(row?.id)}`);
      const at = new Date().toISOString();
      const id = seqId(seq);
      insert.run(id, changeRowJson({ id, seq, at, event }));
      this.notify();
    });
  }

  async readChanges(args: { after: number; limit?: number }): Promise<ReadChangesResult> {
    const limit = checkRead(args);
    const page = await this.changes.find({ where: gt('id', seqId(args.after)), sort: ID_ASC, limit });
    const changes: ChangeRecord[] = [];
    let next = args.after;
    for (const stored of page.items) {
      if (stored.state === 'committed') changes.push(toChangeRecord(stored));
      next = stored.seq;
    }
    return { changes, next };
  }

  async lastSeq(): Promise<number> {
    const last = (await this.changes.find({ sort: ID_DESC, limit: 1 })).items[0];
    return last ? seqOf(last.id) || 0 : 0;
  }

  async firstSeq(): Promise<number> {
    return this.lowestSeq([this.changes as Collection<Doc>]);
  }

  async timeOf(seq: number): Promise<string | null> {
    return (await this.changes.get({ id: seqId(seq) }))?.at ?? null;
  }

  override close(): void {
    this.detach?.();
    this.detach = undefined;
    super.close();
  }
}

/**
 * The stored text of a committed change record: exactly `JSON.stringify` of its `StoredChange`,
 * with the document spliced in as the engine's own JSON text when the event carries it (so a
 * write's document is not parsed and serialized again for its change record).
 */
export function changeRowJson(args: { id: string; seq: number; at: string; event: WriteEvent }): string {
  const { id, seq, at, event } = args;
  const head: Omit<StoredChange, 'doc' | 'at' | 'state'> = { id, version: 1, created_at: at, updated_at: at, seq, collection: event.collection, op: event.op, doc_id: event.id };
  const doc = event.json ?? JSON.stringify(event.doc);
  const tail: Pick<StoredChange, 'at' | 'state'> = { at, state: 'committed' };
  return `${JSON.stringify(head).slice(0, -1)},"doc":${doc},${JSON.stringify(tail).slice(1)}`;
}

/** What a writer is about to do. */
interface WriteIntent {
  collection: string;
  op: ChangeOp;
  doc_id: string;
}

interface Waiting {
  intent: WriteIntent;
  resolve(seq: number): void;
  reject(error: unknown): void;
}

/**
 * The write-ahead log, for stores without transactions (and any other store). Writers call
 * `allocate` before the entity write and `commit`/`abort` after it; see the module comment.
 */
export class WriteAheadChangeLog extends BaseChangeLog {
  readonly mode = 'write-ahead' as const;
  readonly ordered = false;
  private readonly intents: Collection<ChangeIntent>;
  /** The highest seq this process knows to exist; the next allocation tries the one after. */
  private local = 0;
  private headKnown = false;
  private readonly queue: Waiting[] = [];
  private draining = false;
  /** When this process first saw a pending seq, by seq (recovery is timed on the reader's clock). */
  private readonly firstSeen = new Map<number, number>();

  private constructor(primary: Store, changes: Collection<StoredChange>, intents: Collection<ChangeIntent>, options: ChangeLogOptions) {
    super(primary, changes, options);
    this.intents = intents;
  }

  static async open(store: Store, options: ChangeLogOptions = {}): Promise<WriteAheadChangeLog> {
    const changes = await store.collection<StoredChange>(CHANGES_SPEC);
    const intents = await store.collection<ChangeIntent>(INTENTS_SPEC);
    return new WriteAheadChangeLog(store, changes, intents, options);
  }

  // --- writing ----------------------------------------------------------------------------

  /**
   * Takes the next free seq for a write about to happen and returns it. Allocations requested
   * while one is in flight go together in the next insert. Throws StorageError (UNAVAILABLE
   * after too many lost races; the store's error when it fails).
   */
  allocate(intent: WriteIntent): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ intent, resolve, reject });
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) await this.allocateBatch(this.queue.splice(0, ALLOCATE_BATCH));
    } finally {
      this.draining = false;
    }
  }

  /** Inserts intents at the seqs after the known head; on a collision keeps what it got and looks up the head again. Never throws (rejects the waiters). */
  private async allocateBatch(batch: Waiting[]): Promise<void> {
    let rest = batch;
    try {
      for (let attempt = 0; rest.length > 0; attempt++) {
        if (attempt >= ALLOCATE_ATTEMPTS) throw new StorageError('UNAVAILABLE', `could not take a change-log seq after ${ALLOCATE_ATTEMPTS} attempts (too many concurrent writers?)`);
        if (!this.headKnown) {
          this.local = await this.headFrom(this.local);
          this.headKnown = true;
        }
        const start = this.local + 1;
        const writer = randomBytes(6).toString('hex');
        const at = new Date().toISOString();
        const docs = rest.map((w, i) => ({ id: seqId(start + i), seq: start + i, collection: w.intent.collection, op: w.intent.op, doc_id: w.intent.doc_id, at, writer }));
        try {
          if (docs.length === 1) await this.intents.insert({ doc: docs[0]! });
          else await this.intents.insertMany({ docs });
          this.local = start + docs.length - 1;
          rest.forEach((w, i) => w.resolve(start + i));
          return;
        } catch (error) {
          this.headKnown = false;
          if (!isStorageError(error, 'DUPLICATE')) throw error;
        }
        // Another writer took one of them. The ones before it may be ours (an ordered insert
        // without transactions keeps them): find out, keep them, and go on after the head.
        let ours = 0;
        if (docs.length > 1) {
          for (const doc of docs) {
            if ((await this.intents.get({ id: doc.id }))?.writer !== writer) break;
            ours++;
          }
        }
        rest.slice(0, ours).forEach((w, i) => w.resolve(start + i));
        this.local = start + ours - 1;
        rest = rest.slice(ours);
      }
    } catch (error) {
      for (const w of rest) w.reject(error);
    }
  }

  /**
   * Commits a write: inserts its record (the document as written, or a tombstone). When a
   * reader recovered the seq meanwhile and the recovered state does not show this write, logs
   * it again under a new seq. Never throws: a failure is reported and left to recovery.
   */
  async commit(seq: number, intent: WriteIntent, event: { op: ChangeOp; doc: Doc | null }): Promise<void> {
    try {
      if (await this.settle(seq, intent, { state: 'committed', op: event.op, doc: event.doc })) {
        this.notify();
        return;
      }
      const stored = await this.changes.get({ id: seqId(seq) });
      if (stored?.state === 'committed' && sameState(stored.doc, event.doc)) return;
      const again = await this.allocate({ ...intent, op: event.op });
      await this.settle(again, intent, { state: 'committed', op: event.op, doc: event.doc });
      this.notify();
    } catch (error) {
      this.onError(error);
    }
  }

  /** Marks a seq whose write did not happen, so readers skip it. Never throws (recovery settles it otherwise). */
  async abort(seq: number, intent: WriteIntent): Promise<void> {
    try {
      await this.settle(seq, intent, { state: 'aborted', op: intent.op, doc: null });
    } catch (error) {
      this.onError(error);
    }
  }

  /** Inserts the record of a seq; false when it already has one (someone settled it first). */
  private async settle(seq: number, intent: WriteIntent, outcome: { state: StoredChange['state']; op: ChangeOp; doc: Doc | null; recovered?: true }): Promise<boolean> {
    try {
      await this.changes.insert({ doc: { id: seqId(seq), seq, collection: intent.collection, doc_id: intent.doc_id, at: new Date().toISOString(), ...outcome } });
      return true;
    } catch (error) {
      if (isStorageError(error, 'DUPLICATE')) return false;
      throw error;
    }
  }

  // --- reading ----------------------------------------------------------------------------

  async readChanges(args: { after: number; limit?: number }): Promise<ReadChangesResult> {
    const limit = checkRead(args);
    const changes: ChangeRecord[] = [];
    let next = args.after;
    let waiting: ReadChangesResult['waiting'];
    // Each window is READ_WINDOW parallel gets by id; the loop ends at the log's end, at a
    // pending write, or when `limit` changes are read (each window moves `next` or stops).
    window: for (let round = 0; changes.length < limit && round < MAX_READ_LIMIT; round++) {
      const size = Math.min(READ_WINDOW, limit - changes.length);
      const first = next + 1;
      const stored = await Promise.all(Array.from({ length: size }, (_, i) => this.changes.get({ id: seqId(first + i) })));
      for (const [i, found] of stored.entries()) {
        const seq = first + i;
        let record: StoredChange | null = found;
        if (!record) {
          const settled = await this.pending(seq);
          if (settled === 'end') break window;
          if (settled === 'wait') {
            waiting = { seq, for_ms: this.seenFor(seq) };
            break window;
          }
          record = settled;
        }
        if (record.state === 'committed') changes.push(toChangeRecord(record));
        next = seq;
      }
    }
    for (const seq of this.firstSeen.keys()) if (seq <= next) this.firstSeen.delete(seq);
    return waiting ? { changes, next, waiting } : { changes, next };
  }

  /**
   * A seq without a record: `end` when no write has taken it (the log ends before it), `wait`
   * while its write is in flight, or its record once committed meanwhile or recovered.
   */
  private async pending(seq: number): Promise<StoredChange | 'end' | 'wait'> {
    const intent = await this.intents.get({ id: seqId(seq) });
    if (!intent) return 'end';
    const committed = await this.changes.get({ id: seqId(seq) });
    if (committed) return committed;
    if (this.seenFor(seq) < this.recoveryMs) return 'wait';
    return this.recover(intent);
  }

  /** How long this process has seen `seq` pending; starts the clock on first sight. */
  private seenFor(seq: number): number {
    const now = Date.now();
    const first = this.firstSeen.get(seq);
    if (first === undefined) {
      this.firstSeen.set(seq, now);
      return 0;
    }
    return now - first;
  }

  /**
   * Commits a stale pending write from the entity's current state (a tombstone when it is
   * gone), unless its writer (or another reader) committed it first. Returns the record.
   */
  async recover(intent: ChangeIntent): Promise<StoredChange> {
    const entities = await this.primary.collection(this.specFor(intent.collection));
    const current = await entities.get({ id: intent.doc_id });
    const op: ChangeOp = !current ? 'delete' : intent.op === 'insert' ? 'insert' : 'update';
    await this.settle(intent.seq, intent, { state: 'committed', op, doc: current, recovered: true });
    const stored = await this.changes.get({ id: intent.id });
    if (!stored) throw new StorageError('INTERNAL', `change ${intent.seq} has no record after it was recovered`);
    return stored;
  }

  /** The highest seq taken (intents are dense: found by galloping and bisecting with gets by id). */
  async lastSeq(): Promise<number> {
    const head = await this.headFrom(this.local);
    this.local = Math.max(this.local, head);
    return head;
  }

  /** The highest existing intent at or after `known` (which exists, or is 0). */
  private async headFrom(known: number): Promise<number> {
    const exists = async (seq: number) => (await this.intents.get({ id: seqId(seq) })) !== null;
    let low = known;
    if (low === 0 || !(await exists(low))) {
      if (!(await exists(1))) {
        // Empty, its start pruned, or records copied from another store without their intents:
        // ordered queries find the head (new seqs must follow every record already there).
        const heads = await Promise.all([this.intents, this.changes].map(async (c) => (c.find({ sort: ID_DESC, limit: 1 }) as Promise<{ items: Doc[] }>)));
        return Math.max(0, ...heads.map((page) => (page.items[0] ? seqOf(page.items[0].id) || 0 : 0)));
      }
      low = 1;
    }
    let step = 1;
    let high = low + 1;
    for (let i = 0; i < 64 && (await exists(high)); i++) {
      low = high;
      step *= 2;
      high = low + step;
    }
    while (high - low > 1) {
      const mid = Math.floor((low + high) / 2);
      if (await exists(mid)) low = mid;
      else high = mid;
    }
    return low;
  }

  async firstSeq(): Promise<number> {
    // A prune interrupted between the two deletes leaves intents below the first record.
    return this.lowestSeq([this.changes as Collection<Doc>, this.intents as Collection<Doc>]);
  }

  async timeOf(seq: number): Promise<string | null> {
    return (await this.intents.get({ id: seqId(seq) }))?.at ?? null;
  }
}

function sameState(a: Doc | null, b: Doc | null): boolean {
  if (a === null || b === null) return a === b;
  return a.version === b.version && a.updated_at === b.updated_at;
}
