import { closeSync, existsSync, fdatasync, fdatasyncSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  MAX_AGGREGATE_GROUPS,
  StorageError,
  isStorageError,
  type AggregateOptions,
  type AggregateRow,
  type Capabilities,
  type Collection,
  type CollectionSpec,
  type Doc,
  type StoredMeta,
  type FindOptions,
  type NewDoc,
  type Page,
  type Scalar,
  type SortKey,
  type Store,
  type StoreHealth,
  type Where,
  type WriteEvent,
  type WriteHook,
} from '../contract.ts';
import { applyPatch, assertFieldName, assertId, assertNumbered, assertSpec, assertStep, indexName, laterThan, serializeDocument, stampNew } from '../validate.ts';
import { assertWhere, encodeCursor, normalizeFind } from '../where.ts';
import { storedDocEvent, WriteHooks } from '../write-hooks.ts';
import { finishRows, groupValue, normalizeAggregate, tooManyGroups } from '../aggregate.ts';
import { translateSqliteError } from './sqlite-errors.ts';

/** Options of the SQLite engine. */
export interface SqliteStoreOptions {
  /** Database file; created with its folder when missing. `:memory:` for a private in-memory database. */
  path: string;
  /**
   * `FULL` (default) makes every acknowledged write survive power loss; `NORMAL` survives
   * process crashes only and is faster.
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** How long a writer waits for another process's lock before UNAVAILABLE. Default 5000 ms. */
  busyTimeoutMs?: number;
}

/** The SQLite store's extra surface: running several writes in one transaction. */
export interface SqliteStore extends Store {
  /**
   * Runs `fn` inside one write transaction (BEGIN IMMEDIATE … COMMIT) and returns its result.
   * Every collection write made synchronously inside joins it, together with the write hooks.
   * Rolls back and rethrows (as StorageError) when `fn` throws. `fn` must be synchronous.
   */
  transaction<R>(fn: () => R): R;
  /** The underlying database, for engine-specific tests, benchmarks and tools. */
  readonly database: DatabaseSync;
  /**
   * What an acknowledged write to a file survives: `FULL`, power loss (its WAL fsynced first: by the
   * store, off the event loop, for a file in WAL mode, so SQLite's own `PRAGMA synchronous`
   * then reads NORMAL); `NORMAL`, a process crash.
   */
  readonly synchronous: 'FULL' | 'NORMAL';
}

/**
 * Opens (creating when missing) a SQLite database in WAL mode. Each collection is a table
 * `(id TEXT PRIMARY KEY, doc TEXT)` holding the JSON document; every indexed field is a
 * virtual generated column with a real SQLite index.
 * Throws UNAVAILABLE when the file cannot be opened.
 */
export async function createSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  const path = options.path === ':memory:' ? ':memory:' : resolve(options.path);
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    const wal = path !== ':memory:' && Object.values(db.prepare('PRAGMA journal_mode = WAL').get() ?? {})[0] === 'wal';
    // FULL durability is kept by the store rather than inside SQLite's COMMIT (whose fsync
    // would stall the event loop): commits run at NORMAL and the store fsyncs the WAL file on
    // the thread pool before it acknowledges them (see SqliteStoreImpl.flush). That is the same
    // guarantee: in WAL mode, FULL is NORMAL plus an fsync of the WAL at each commit.
    const synchronous = options.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL';
    const syncWal = wal && synchronous === 'FULL';
    // Checkpoint (copy the WAL into the database file) every ~32 MB of WAL rather than SQLite's
    // ~4 MB: a checkpoint runs inside the COMMIT that crosses the mark, on the event loop, and
    // pages written again and again (index leaves, counters) are copied once per checkpoint.
    if (wal) db.exec(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    db.exec(`PRAGMA synchronous = ${syncWal ? 'NORMAL' : synchronous}`);
    return new SqliteStoreImpl(db, path, syncWal ? `${path}-wal` : null, synchronous);
  } catch (error) {
    if (typeof (error as { code?: unknown }).code === 'string' && (error as { code: string }).code.startsWith('E')) {
      throw new StorageError('UNAVAILABLE', `cannot open SQLite database at ${path}: ${(error as Error).message}`, { cause: error });
    }
    throw translateSqliteError(error, `cannot open SQLite database at ${path}`);
  }
}

const CAPABILITIES: Capabilities = { transactions: true, changeStreams: false, ttl: false, durable: true, multiProcess: true };

class SqliteStoreImpl implements SqliteStore {
  readonly engine = 'sqlite';
  readonly capabilities: Capabilities;
  readonly hooks = new WriteHooks();
  private readonly statements = new Map<string, StatementSync>();
  private readonly collections = new Map<string, SqliteCollection<Doc>>();
  private depth = 0;
  private closed = false;
  private readonly pending: PendingWrite[] = [];
  private flushScheduled = false;
  /** The WAL file the store fsyncs before acknowledging commits; null when SQLite syncs (or nothing does). */
  private readonly walPath: string | null;
  private walFd: number | null = null;
  /** Moving average of the writes per commit (plus those already waiting): about 1 when writes come one at a time; starts high, so about 15 lone commits in a row are needed to sync inline. */
  private averageBatch = 2 * SERIAL_BATCH_AVERAGE; // concurrent until shown otherwise
  /** The committed batch whose WAL fsync is running; no other batch commits meanwhile. */
  private syncing: { batch: PendingWrite[]; outcomes: Outcome[] } | null = null;

  readonly database: DatabaseSync;
  readonly location: string;
  readonly synchronous: 'FULL' | 'NORMAL';

  constructor(database: DatabaseSync, location: string, walPath: string | null, synchronous: 'FULL' | 'NORMAL') {
    this.database = database;
    this.location = location;
    this.walPath = walPath;
    this.synchronous = synchronous;
    this.capabilities = { ...CAPABILITIES, durable: location !== ':memory:', multiProcess: location !== ':memory:' };
  }

  /** A cached prepared statement. */
  statement(sql: string): StatementSync {
    this.assertOpen();
    let s = this.statements.get(sql);
    if (!s) {
      try {
        s = this.database.prepare(sql);
      } catch (error) {
        throw translateSqliteError(error, 'SQLite rejected a statement');
      }
      this.statements.set(sql, s);
    }
    return s;
  }

  transaction<R>(fn: () => R): R {
    this.assertOpen();
    if (this.depth > 0) {
      this.depth++;
      try {
        return fn();
      } finally {
        this.depth--;
      }
    }
    try {
      this.database.exec('BEGIN IMMEDIATE');
    } catch (error) {
      throw translateSqliteError(error, 'cannot start a write transaction');
    }
    this.depth = 1;
    try {
      const result = fn();
      this.database.exec('COMMIT');
      this.syncWalNow();
      return result;
    } catch (error) {
      this.rollback();
      throw translateSqliteError(error, 'SQLite write failed');
    } finally {
      this.depth = 0;
    }
  }

  /**
   * Queues a write to commit together with the other writes queued meanwhile (group commit):
   * one BEGIN IMMEDIATE … COMMIT, one fsync, each write in its own savepoint so a failing
   * write (DUPLICATE, CONFLICT …) rolls back alone. Resolves only once the commit is durable
   * (with FULL, after the WAL fsync), so nothing is acknowledged before it is. Reads may see a
   * committed write during that fsync, as with any database whose readers see commits.
   * Inside `transaction(fn)` it runs inline.
   */
  enqueueWrite<R>(fn: () => R): Promise<R> {
    this.assertOpen();
    if (this.depth > 0) {
      try {
        return Promise.resolve(fn());
      } catch (error) {
        return Promise.reject(translateSqliteError(error, 'SQLite write failed'));
      }
    }
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.syncing || this.pending.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Commits up to MAX_GROUP queued writes in one transaction, then (FULL) fsyncs the WAL on
   * the thread pool while the event loop goes on, settling the writes when the fsync is done;
   * writes queued meanwhile wait and commit together once it is. When writes have been coming
   * one at a time for a while (the recent average batch is about one write), the WAL is synced
   * inline instead, as SQLite's own FULL would: there, the hand-off to the thread pool and back
   * only adds latency. (An average, not each lone write: syncing every lone write inline made
   * a loaded server's throughput erratic.)
   */
  private flush(): void {
    this.flushScheduled = false;
    if (this.syncing) return;
    const committed = this.commitBatch();
    if (!committed) return this.scheduleFlush();
    if (this.walPath === null) {
      settle(committed.batch, committed.outcomes);
      return this.scheduleFlush();
    }
    this.averageBatch += (committed.batch.length + this.pending.length - this.averageBatch) * BATCH_AVERAGE_WEIGHT;
    this.syncing = committed;
    let fd: number;
    try {
      if (this.averageBatch < SERIAL_BATCH_AVERAGE) {
        this.syncWalNow();
        return this.synced(committed, null);
      }
      fd = this.openWal();
    } catch (error) {
      return this.synced(committed, error);
    }
    fdatasync(fd, (error) => this.synced(committed, error && walSyncFailed(error)));
  }

  /** Settles a batch once its fsync is done (or failed with `failure`), then lets the next batch commit. */
  private synced(committed: { batch: PendingWrite[]; outcomes: Outcome[] }, failure: unknown): void {
    if (this.syncing !== committed) {
      // close() made it durable and settled it already; the descriptor waited for this fsync.
      if (this.closed) this.closeWal();
      return;
    }
    this.syncing = null;
    if (failure) {
      for (const w of committed.batch) w.reject(failure);
    } else {
      settle(committed.batch, committed.outcomes);
    }
    if (this.closed) this.closeWal();
    else this.scheduleFlush();
  }

  /** The WAL file's descriptor, opened on first use (the WAL exists once a commit wrote to it). Throws UNAVAILABLE. */
  private openWal(): number {
    try {
      this.walFd ??= openSync(this.walPath!, 'r');
    } catch (error) {
      throw walSyncFailed(error);
    }
    return this.walFd;
  }

  /**
   * fsyncs the WAL now, blocking (`transaction()` and `close()`, which are synchronous). A WAL
   * file that does not exist holds nothing to sync (a transaction that wrote nothing). Throws UNAVAILABLE.
   */
  private syncWalNow(): void {
    if (this.walPath === null) return;
    if (this.walFd === null && !existsSync(this.walPath)) return;
    try {
      fdatasyncSync(this.openWal());
    } catch (error) {
      throw isStorageError(error) ? error : walSyncFailed(error);
    }
  }

  private closeWal(): void {
    if (this.walFd === null) return;
    try {
      closeSync(this.walFd);
    } catch {
      // Already closed.
    }
    this.walFd = null;
  }

  /**
   * Runs up to MAX_GROUP queued writes in one transaction and commits it. Returns the batch and
   * each write's outcome, or null when there was nothing to commit or the transaction failed
   * (its writes are then rejected).
   *
   * A batch first runs without savepoints (two statements fewer per write). When one of its
   * writes fails, the whole transaction is rolled back and the batch runs again with each write
   * in its own savepoint, so that a failing write rolls back alone; the write that failed first
   * is not run again (the writes before it are, so it would meet the same state). The outcomes
   * are those of running every write one after the other, whichever way the batch committed.
   */
  private commitBatch(): { batch: PendingWrite[]; outcomes: Outcome[] } | null {
    const batch = this.pending.splice(0, MAX_GROUP);
    if (batch.length === 0) return null;
    if (this.closed) {
      for (const w of batch) w.reject(new StorageError('UNAVAILABLE', 'SQLite store is closed'));
      return null;
    }
    try {
      const first = this.runBatch(batch, null);
      const outcomes = Array.isArray(first) ? first : (this.runBatch(batch, first) as Outcome[]);
      this.database.exec('COMMIT');
      return { batch, outcomes };
    } catch (error) {
      this.rollback();
      const failure = translateSqliteError(error, 'SQLite commit failed');
      for (const w of batch) w.reject(failure);
      return null;
    } finally {
      this.depth = 0;
    }
  }

  /**
   * Begins a write transaction and runs `batch` in it, leaving it open for the caller to commit.
   * With `failed` null, writes run without savepoints: the first one that throws rolls the whole
   * transaction back, and its index and error are returned. Otherwise each write runs in its own
   * savepoint and a failing one is rolled back alone (its outcome holds the error); the write at
   * `failed.index` is not run, its outcome is `failed.error`. Returns the outcomes. Throws (a
   * StorageError or SQLite's error) when the transaction cannot begin or a savepoint fails.
   */
  private runBatch(batch: PendingWrite[], failed: { index: number; error: unknown } | null): Outcome[] | { index: number; error: unknown } {
    try {
      this.database.exec('BEGIN IMMEDIATE');
    } catch (error) {
      throw translateSqliteError(error, 'cannot start a write transaction');
    }
    this.depth = 1;
    const outcomes: Outcome[] = [];
    for (const [index, w] of batch.entries()) {
      if (failed === null) {
        try {
          outcomes.push({ ok: true, value: w.fn() });
        } catch (error) {
          this.rollback();
          return { index, error: translateSqliteError(error, 'SQLite write failed') };
        }
      } else if (index === failed.index) {
        outcomes.push({ ok: false, error: failed.error });
      } else {
        this.statement('SAVEPOINT otto_write').run();
        try {
          const value = w.fn();
          this.statement('RELEASE otto_write').run();
          outcomes.push({ ok: true, value });
        } catch (error) {
          this.database.exec('ROLLBACK TO otto_write');
          this.statement('RELEASE otto_write').run();
          outcomes.push({ ok: false, error: translateSqliteError(error, 'SQLite write failed') });
        }
      }
    }
    return outcomes;
  }

  /** Rolls back the open write transaction, if any (SQLite may have rolled it back itself). Never throws: the failure that led here is what callers hear about. */
  private rollback(): void {
    try {
      if (this.database.isTransaction) this.database.exec('ROLLBACK');
    } catch {
      // A failed rollback leaves SQLite to roll back on close.
    }
  }

  async collection<T extends StoredMeta = Doc>(spec: CollectionSpec): Promise<Collection<T>> {
    this.assertOpen();
    assertSpec(spec);
    const existing = this.collections.get(spec.name);
    if (existing && existing.spec === spec) return existing as unknown as Collection<T>;
    const indexed = new Set<string>();
    for (const index of spec.indexes) for (const [field] of index.fields) if (field !== 'id') indexed.add(field);
    this.transaction(() => {
      this.database.exec(`CREATE TABLE IF NOT EXISTS ${q(spec.name)} (id TEXT PRIMARY KEY NOT NULL, doc TEXT NOT NULL)`);
      const columns = new Set(
        (this.database.prepare(`PRAGMA table_xinfo(${q(spec.name)})`).all() as Array<{ name: string }>).map((c) => c.name),
      );
      for (const field of indexed) {
        if (!columns.has(columnName(field))) {
          this.database.exec(`ALTER TABLE ${q(spec.name)} ADD COLUMN ${q(columnName(field))} GENERATED ALWAYS AS (json_extract(doc, '$.${field}')) VIRTUAL`);
        }
      }
      for (const index of spec.indexes) {
        const cols = index.fields.map(([f, d]) => `${f === 'id' ? 'id' : q(columnName(f))} ${d === 1 ? 'ASC' : 'DESC'}`);
        // Non-unique indexes end with id so that cursor pages (sort keys + id) are served by the index alone.
        if (!index.unique && !index.fields.some(([f]) => f === 'id')) cols.push('id ASC');
        this.database.exec(`CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${q(`${spec.name}__${indexName(index)}`)} ON ${q(spec.name)} (${cols.join(', ')})`);
      }
    });
    const known = existing?.indexed ?? new Set<string>();
    for (const f of indexed) known.add(f);
    const collection = new SqliteCollection<Doc>(spec, this, known);
    this.collections.set(spec.name, collection);
    return collection as unknown as Collection<T>;
  }

  /** The open collection named `name`, for a write that spans collections. Throws INVALID when it is not open. */
  opened(name: string): SqliteCollection<Doc> {
    const collection = this.collections.get(name);
    if (!collection) throw new StorageError('INVALID', `collection ${JSON.stringify(name)} is not open on this store`, { field: 'counter' });
    return collection;
  }

  async listCollections(): Promise<string[]> {
    const rows = this.statement(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as Array<{ name: string }>;
    return rows.map((r) => r.name);
  }

  async listIndexes(args: { collection: string }): Promise<string[]> {
    const rows = this.statement(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name NOT LIKE 'sqlite_%' ORDER BY name`).all(args.collection) as Array<{ name: string }>;
    const prefix = `${args.collection}__`;
    return ['_id_', ...rows.map((r) => (r.name.startsWith(prefix) ? r.name.slice(prefix.length) : r.name))];
  }

  onWrite(hook: WriteHook): () => void {
    return this.hooks.add(hook);
  }

  async health(): Promise<StoreHealth> {
    const started = performance.now();
    try {
      const row = this.statement('SELECT sqlite_version() AS v').get() as { v: string };
      return { ok: true, engine: this.engine, location: this.location, latency_ms: round(performance.now() - started), server_version: `SQLite ${row.v}` };
    } catch (error) {
      return { ok: false, engine: this.engine, location: this.location, latency_ms: round(performance.now() - started), error: (error as Error).message };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Whatever is queued commits now, and everything committed is made durable before closing.
    const committed: Array<{ batch: PendingWrite[]; outcomes: Outcome[] }> = this.syncing ? [this.syncing] : [];
    while (this.pending.length > 0) {
      const c = this.commitBatch();
      if (c) committed.push(c);
    }
    this.closed = true;
    let failure: unknown;
    try {
      if (committed.length > 0) this.syncWalNow();
    } catch (error) {
      failure = error;
    }
    for (const c of committed) {
      if (failure) for (const w of c.batch) w.reject(failure);
      else settle(c.batch, c.outcomes);
    }
    if (this.syncing) this.syncing = null; // its fsync callback closes the descriptor
    else this.closeWal();
    this.statements.clear();
    try {
      this.database.close();
    } catch {
      // Already closed.
    }
  }

  assertOpen(): void {
    if (this.closed) throw new StorageError('UNAVAILABLE', 'SQLite store is closed');
  }
}

class SqliteCollection<T extends StoredMeta> implements Collection<T> {
  private readonly table: string;
  readonly spec: CollectionSpec;
  private readonly store: SqliteStoreImpl;
  /** Fields that have a generated column (and so an index). */
  readonly indexed: Set<string>;

  constructor(spec: CollectionSpec, store: SqliteStoreImpl, indexed: Set<string>) {
    this.spec = spec;
    this.store = store;
    this.indexed = indexed;
    this.table = q(spec.name);
  }

  /** The SQL expression reading a top-level field: the generated column when indexed. */
  private expr(field: string): string {
    if (field === 'id') return 'id';
    if (this.indexed.has(field)) return q(columnName(field));
    return `json_extract(doc, '$.${assertFieldName(field)}')`;
  }

  private compile(where: Where, params: SqlValue[]): string {
    switch (where.op) {
      case 'and':
        return where.clauses.length === 0 ? '1' : `(${where.clauses.map((c) => this.compile(c, params)).join(' AND ')})`;
      case 'eq':
        params.push(bind(where.value));
        return `${this.expr(where.field)} IS ?`;
      case 'in': {
        if (where.values.length === 0) return '0';
        const present = where.values.filter((v) => v !== null);
        const parts: string[] = [];
        if (present.length > 0) {
          parts.push(`${this.expr(where.field)} IN (${present.map(() => '?').join(', ')})`);
          params.push(...present.map(bind));
        }
        if (present.length < where.values.length) parts.push(`${this.expr(where.field)} IS NULL`);
        return `(${parts.join(' OR ')})`;
      }
      default: {
        const op = { gt: '>', gte: '>=', lt: '<', lte: '<=' }[where.op];
        params.push(bind(where.value));
        return `${this.expr(where.field)} ${op} ?`;
      }
    }
  }

  private cursorCondition(sort: SortKey[], after: Array<string | number | boolean>, params: SqlValue[]): string {
    const exprs = sort.map((k) => this.expr(k.field));
    if (sort.every((k) => k.direction === sort[0]!.direction)) {
      params.push(...after.map(bind));
      return `(${exprs.join(', ')}) ${sort[0]!.direction === 'asc' ? '>' : '<'} (${after.map(() => '?').join(', ')})`;
    }
    const ors: string[] = [];
    for (let i = 0; i < sort.length; i++) {
      const ands: string[] = [];
      for (let j = 0; j < i; j++) {
        ands.push(`${exprs[j]} = ?`);
        params.push(bind(after[j]!));
      }
      ands.push(`${exprs[i]} ${sort[i]!.direction === 'asc' ? '>' : '<'} ?`);
      params.push(bind(after[i]!));
      ors.push(`(${ands.join(' AND ')})`);
    }
    return `(${ors.join(' OR ')})`;
  }

  /** Writes a document row (insert or replace) and runs the hooks, inside the caller's transaction. */
  private put(doc: T, op: WriteEvent['op'], mode: 'insert' | 'replace'): T {
    const json = serializeDocument(doc);
    if (mode === 'insert') this.store.statement(`INSERT INTO ${this.table} (id, doc) VALUES (?, ?)`).run(doc.id, json);
    else this.store.statement(`INSERT INTO ${this.table} (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc`).run(doc.id, json);
    if (this.store.hooks.active) this.store.hooks.run(storedDocEvent({ collection: this.spec.name, op, id: doc.id, json }));
    return doc;
  }

  private read(id: string): T | null {
    const row = this.store.statement(`SELECT doc FROM ${this.table} WHERE id = ?`).get(id) as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as T) : null;
  }

  private conflictMessage(id: string, current: T, expected: number): StorageError {
    return new StorageError('CONFLICT', `${this.spec.name}: ${id} is at version ${current.version}, not ${expected}`, { field: 'version' });
  }

  async insert(args: { doc: NewDoc<T> }): Promise<T> {
    const doc = stampNew<T>(args.doc);
    return this.store.enqueueWrite(() => this.put(doc, 'insert', 'insert'));
  }

  async insertMany(args: { docs: NewDoc<T>[]; verbatim?: boolean }): Promise<T[]> {
    if (!Array.isArray(args?.docs)) throw new StorageError('INVALID', 'docs must be a list', { field: 'docs' });
    const docs = args.docs.map((d) => stampNew<T>(d, { verbatim: args.verbatim === true }));
    return this.store.enqueueWrite(() => docs.map((doc) => this.put(doc, 'insert', 'insert')));
  }

  async upsert(args: { doc: NewDoc<T>; verbatim?: boolean }): Promise<T> {
    const id = assertId((args.doc as { id?: unknown })?.id);
    return this.store.enqueueWrite(() => {
      const current = this.read(id);
      const doc = stampNew<T>(args.doc, { verbatim: args.verbatim, version: current ? current.version + 1 : 1 });
      if (current && !args.verbatim) {
        doc.created_at = current.created_at;
        doc.updated_at = laterThan(current.updated_at);
      }
      return this.put(doc, current ? 'update' : 'insert', 'replace');
    });
  }

  async get(args: { id: string }): Promise<T | null> {
    return this.read(assertId(args.id));
  }

  async find(args: FindOptions = {}): Promise<Page<T>> {
    const { sql, params, limit, sort } = this.findQuery(args);
    const rows = this.store.statement(sql).all(...params) as Array<{ doc: string }>;
    const items = rows.slice(0, limit).map((r) => JSON.parse(r.doc) as T);
    return { items, next: rows.length > limit ? encodeCursor(items.at(-1)!, sort) : null };
  }

  /** The SQL `find` runs (one row more than the page, to know whether another follows); tests read its query plan. */
  findQuery(args: FindOptions = {}): { sql: string; params: SqlValue[]; limit: number; sort: SortKey[] } {
    const query = normalizeFind(args);
    const ordering = this.orderingKeys(query.where, query.sort);
    const params: SqlValue[] = [];
    const conditions: string[] = [];
    if (query.where) conditions.push(this.compile(query.where, params));
    if (query.after) conditions.push(this.cursorCondition(ordering, query.after.slice(0, ordering.length), params));
    const order = ordering.map((k) => `${this.expr(k.field)} ${k.direction === 'asc' ? 'ASC' : 'DESC'}`).join(', ');
    params.push(query.limit + 1);
    const sql = `SELECT doc FROM ${this.table}${conditions.length ? ` WHERE ${conditions.join(' AND ')}` : ''} ORDER BY ${order} LIMIT ?`;
    return { sql, params, limit: query.limit, sort: query.sort };
  }

  /**
   * The sort keys SQL needs. The trailing `id` tie-breaker is dropped when the other keys plus
   * the equality filters already cover a unique index (e.g. messages by conversation and
   * offset): the order is then total without it, and the unique index serves it without a sort.
   */
  private orderingKeys(where: Where | undefined, sort: SortKey[]): SortKey[] {
    if (sort.at(-1)?.field !== 'id' || sort.length < 2) return sort;
    const fixed = new Set<string>(sort.slice(0, -1).map((k) => k.field));
    const collect = (w: Where | undefined): void => {
      if (!w) return;
      if (w.op === 'eq' && w.value !== null) fixed.add(w.field);
      if (w.op === 'and') w.clauses.forEach(collect);
    };
    collect(where);
    const covered = this.spec.indexes.some((index) => index.unique && index.fields.every(([f]) => fixed.has(f)));
    return covered ? sort.slice(0, -1) : sort;
  }

  async count(args: { where?: Where } = {}): Promise<number> {
    const params: SqlValue[] = [];
    const where = args.where ? ` WHERE ${this.compile(assertWhere(args.where), params)}` : '';
    const row = this.store.statement(`SELECT COUNT(*) AS n FROM ${this.table}${where}`).get(...params) as { n: number };
    return Number(row.n);
  }

  /**
   * One SQL statement: `SELECT <group columns>, COUNT(*), SUM(…) … WHERE … GROUP BY …`. Group
   * fields read their generated column when indexed (so an index can serve the grouping);
   * sums add only JSON numbers (`json_type` tells a number from `true`, which SQLite reads as 1).
   */
  async aggregate(args: AggregateOptions): Promise<AggregateRow[]> {
    const query = normalizeAggregate(args);
    const params: SqlValue[] = [];
    const where = query.where ? ` WHERE ${this.compile(query.where, params)}` : '';
    const columns = [
      ...query.groupBy.map((f, i) => `${this.expr(f)} AS g${i}`),
      'COUNT(*) AS n',
      ...query.sum.map((f, i) => `SUM(${this.numberExpr(f)}) AS s${i}`),
    ];
    const groupBy = query.groupBy.length > 0 ? ` GROUP BY ${query.groupBy.map((_, i) => `g${i}`).join(', ')}` : '';
    const sql = `SELECT ${columns.join(', ')} FROM ${this.table}${where}${groupBy} LIMIT ${MAX_AGGREGATE_GROUPS + 1}`;
    const rows = this.store.statement(sql).all(...params) as Array<Record<string, unknown>>;
    if (rows.length > MAX_AGGREGATE_GROUPS) throw tooManyGroups();
    return finishRows(
      rows.map((row) => ({
        group: Object.fromEntries(query.groupBy.map((f, i) => [f, groupValue(row[`g${i}`])])),
        count: Number(row.n),
        sums: Object.fromEntries(query.sum.map((f, i) => [f, row[`s${i}`] === null || row[`s${i}`] === undefined ? 0 : Number(row[`s${i}`])])),
      })),
      query.groupBy,
    );
  }

  /** The SQL expression of a field's value when it is a JSON number, NULL otherwise. */
  private numberExpr(field: string): string {
    if (field === 'id') return 'NULL';
    const path = `'$.${assertFieldName(field)}'`;
    return `CASE WHEN json_type(doc, ${path}) IN ('integer', 'real') THEN json_extract(doc, ${path}) END`;
  }

  async update(args: { id: string; patch: Record<string, unknown>; expectVersion?: number }): Promise<T> {
    const id = assertId(args.id);
    return this.store.enqueueWrite(() => {
      const current = this.read(id);
      if (!current) throw new StorageError('NOT_FOUND', `${this.spec.name}: ${id} not found`, { field: 'id' });
      if (args.expectVersion !== undefined && current.version !== args.expectVersion) throw this.conflictMessage(id, current, args.expectVersion);
      return this.put(applyPatch(current, args.patch), 'update', 'replace');
    });
  }

  async delete(args: { id: string; expectVersion?: number }): Promise<boolean> {
    const id = assertId(args.id);
    return this.store.enqueueWrite(() => {
      if (args.expectVersion !== undefined) {
        const current = this.read(id);
        if (!current) return false;
        if (current.version !== args.expectVersion) throw this.conflictMessage(id, current, args.expectVersion);
      }
      const result = this.store.statement(`DELETE FROM ${this.table} WHERE id = ?`).run(id);
      if (Number(result.changes) === 0) return false;
      if (this.store.hooks.active) this.store.hooks.run({ collection: this.spec.name, op: 'delete', id, doc: null });
      return true;
    });
  }

  async deleteMany(args: { where: Where }): Promise<number> {
    if (!args?.where) throw new StorageError('INVALID', 'deleteMany needs a where', { field: 'where' });
    const params: SqlValue[] = [];
    const condition = this.compile(assertWhere(args.where), params);
    return this.store.enqueueWrite(() => {
      if (!this.store.hooks.active) {
        return Number(this.store.statement(`DELETE FROM ${this.table} WHERE ${condition}`).run(...params).changes);
      }
      const ids = (this.store.statement(`DELETE FROM ${this.table} WHERE ${condition} RETURNING id`).all(...params) as Array<{ id: string }>).map((r) => r.id);
      for (const id of ids) this.store.hooks.run({ collection: this.spec.name, op: 'delete', id, doc: null });
      return ids.length;
    });
  }

  async increment(args: { id: string; field: string; by?: number }): Promise<number> {
    const id = assertId(args.id);
    const field = assertFieldName(args.field);
    const by = assertStep(args.by);
    return this.store.enqueueWrite(() => this.incrementNow(id, field, by));
  }

  /** `increment` with validated arguments, inside the caller's transaction. */
  incrementNow(id: string, field: string, by: number): number {
    const current = this.read(id);
    if (!current) {
      this.put(stampNew<T>({ id, [field]: by } as unknown as NewDoc<T>), 'insert', 'insert');
      return by;
    }
    const value = (current as unknown as Record<string, unknown>)[field] ?? 0;
    if (typeof value !== 'number') throw new StorageError('INVALID', `${this.spec.name}: ${field} of ${id} is not a number`, { field });
    this.put(applyPatch(current, { [field]: value + by }), 'update', 'replace');
    return value + by;
  }

  async insertNumbered(args: { docs: NewDoc<T>[]; field: string; counter: { collection: string; id: string; field: string } }): Promise<T[]> {
    const { field, counter } = assertNumbered(args);
    const counters = this.store.opened(counter.collection);
    const docs = args.docs.map((d) => stampNew<T>(d));
    if (docs.length === 0) return [];
    // One transaction, so one commit: the reserved numbers and the documents are durable together.
    return this.store.enqueueWrite(() => {
      const last = counters.incrementNow(counter.id, counter.field, docs.length);
      docs.forEach((doc, i) => ((doc as Record<string, unknown>)[field] = last - docs.length + 1 + i));
      return docs.map((doc) => this.put(doc, 'insert', 'insert'));
    });
  }

  async *scan(args: { after?: string; batchSize?: number } = {}): AsyncIterable<T[]> {
    const size = args.batchSize ?? 500;
    if (!Number.isInteger(size) || size < 1 || size > 10_000) throw new StorageError('INVALID', 'batchSize must be an integer from 1 to 10000', { field: 'batchSize' });
    let after = args.after ?? '';
    for (;;) {
      const rows = this.store.statement(`SELECT id, doc FROM ${this.table} WHERE id > ? ORDER BY id LIMIT ?`).all(after, size) as Array<{ id: string; doc: string }>;
      if (rows.length === 0) return;
      after = rows.at(-1)!.id;
      yield rows.map((r) => JSON.parse(r.doc) as T);
      if (rows.length < size) return;
    }
  }
}

/** Most writes committed together in one group commit. */
const MAX_GROUP = 256;
/** Weight of the newest commit in `averageBatch` (about the last 10 commits count). */
const BATCH_AVERAGE_WEIGHT = 0.1;
/** Below this average batch, writes count as coming one at a time and are synced inline. */
const SERIAL_BATCH_AVERAGE = 1.5;
/** WAL pages (4 KiB each) after which a commit checkpoints the WAL into the database file. */
const WAL_CHECKPOINT_PAGES = 8000;

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** The error of writes whose commit could not be made durable (opening or fsyncing the WAL failed). */
function walSyncFailed(error: unknown): StorageError {
  return new StorageError('UNAVAILABLE', `SQLite committed writes but could not make them durable (fsync of the WAL failed: ${(error as Error).message}); they may be lost on power failure`, { cause: error });
}

/** Resolves or rejects each write of a committed batch with its outcome. */
function settle(batch: PendingWrite[], outcomes: Outcome[]): void {
  batch.forEach((w, i) => {
    const outcome = outcomes[i]!;
    if (outcome.ok) w.resolve(outcome.value);
    else w.reject(outcome.error);
  });
}

interface PendingWrite {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** A value bound to a SQLite statement parameter. */
export type SqlValue = string | number | null;

function bind(value: Scalar): SqlValue {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value;
}

function q(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

function columnName(field: string): string {
  return `f_${field}`;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
