import { MongoClient, type Collection as DriverCollection, type Db, type Document, type MongoClientOptions } from 'mongodb';
import {
  MAX_AGGREGATE_GROUPS,
  StorageError,
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
  type SortKey,
  type Store,
  type StoreHealth,
  type Where,
  type WriteEvent,
  type WriteHook,
} from '../contract.ts';
import { assertFieldName, assertId, assertNumbered, assertSpec, assertStep, indexName, laterThan, now, patchFields, serializeDocument, stampNew } from '../validate.ts';
import { assertWhere, encodeCursor, normalizeFind } from '../where.ts';
import { WriteHooks } from '../write-hooks.ts';
import { finishRows, groupValue, normalizeAggregate, tooManyGroups } from '../aggregate.ts';
import { duplicateInfo, isDuplicateKeyError, translateMongoError } from './mongodb-errors.ts';

/** Options of the MongoDB engine. */
export interface MongoStoreOptions {
  /** Connection string (`mongodb://…` or `mongodb+srv://…`). Options in it win over Otto's defaults. */
  uri: string;
  /** Database to use; default: the database in the URI path, else `otto`. */
  database?: string;
  /** Name the server logs for these connections; default `otto` unless the URI sets `appName`. */
  appName?: string;
  /** How long an operation waits for a usable server before UNAVAILABLE; default 10000 unless the URI sets it. */
  serverSelectionTimeoutMs?: number;
  /** How long opening a connection may take before it fails; default the driver's (30000) unless the URI sets it. */
  connectTimeoutMs?: number;
  /**
   * How often the driver checks the server; default the driver's (10000) unless the URI sets it.
   * A server that stops answering without closing its connections is noticed after about this
   * long plus `connectTimeoutMs`, which is when operations waiting on it fail.
   */
  heartbeatFrequencyMs?: number;
  /** Emit the driver's command monitoring events on `client` (for tests and benchmarks counting round trips). */
  monitorCommands?: boolean;
}

/** The MongoDB store's extra surface, for engine-specific tests, benchmarks and tools. */
export interface MongoStore extends Store {
  /** The connected driver client (closed by `close()`). */
  readonly client: MongoClient;
  /** The database holding Otto's collections. */
  readonly db: Db;
}

/** Default connection pool bounds, used only when the URI does not set them. */
export const DEFAULT_MAX_POOL_SIZE = 50;
export const DEFAULT_MIN_POOL_SIZE = 10;
const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 10_000;
const DEFAULT_DATABASE = 'otto';
const META_FIELDS = new Set(['id', 'version', 'created_at', 'updated_at']);
/** How often a whole-document upsert re-reads and retries when another writer got in between. */
const UPSERT_ATTEMPTS = 8;

/**
 * Connects to a MongoDB-compatible server (MongoDB, or FerretDB and the like for the
 * operations listed below), probes its capabilities with `hello`/`buildInfo`, and returns
 * the store. Otto's `id` is MongoDB's `_id`; all other fields are stored as they are.
 *
 * Only operations that MongoDB-compatible engines share are used: CRUD, createIndex,
 * findOneAndUpdate with `$inc`/`$set`/`$setOnInsert`, and `countDocuments`. There are no
 * transactions: `insertMany` is one ordered write (the documents before a collision stay
 * written), and write hooks run after the write has happened (see `onWrite`).
 *
 * Capabilities: `transactions`/`changeStreams` only on a replica set or mongos (never on
 * FerretDB), `ttl` except on FerretDB, `durable` always, `multiProcess` except on FerretDB
 * (whose v1 updates are not atomic across connections: writes to one id are queued within
 * this process instead).
 *
 * Throws INVALID for a malformed connection string or database name, UNAVAILABLE when no
 * server answers within the server selection timeout.
 */
export async function createMongoStore(options: MongoStoreOptions): Promise<MongoStore> {
  const parts = parseMongoUri(options.uri);
  const database = assertDatabaseName(options.database ?? parts.database ?? DEFAULT_DATABASE);
  const location = formatLocation(parts, database);
  let client: MongoClient;
  try {
    client = new MongoClient(options.uri, clientOptions(parts, options));
  } catch (error) {
    // The driver's message may quote parts of the connection string: keep it (and the cause) only without secrets.
    const detail = String((error as { message?: unknown })?.message ?? error);
    const safe = !secretsOf(options.uri).some((secret) => detail.includes(secret));
    throw new StorageError('INVALID', `the MongoDB connection string for ${location} is malformed${safe ? ` (${detail})` : ''}`, safe ? { cause: error, field: 'uri' } : { field: 'uri' });
  }
  try {
    await client.connect();
    const admin = client.db('admin');
    const [hello, build] = await Promise.all([
      admin.command({ hello: 1 }).catch((error: unknown) => {
        if ((error as { code?: unknown }).code === 59) return admin.command({ isMaster: 1 });
        throw error;
      }),
      admin.command({ buildInfo: 1 }),
    ]);
    const ferret = ferretVersion(build);
    const replicated = typeof hello.setName === 'string' || hello.msg === 'isdbgrid';
    const capabilities: Capabilities = {
      transactions: replicated && ferret === undefined,
      changeStreams: replicated && ferret === undefined,
      ttl: ferret === undefined,
      durable: true,
      // FerretDB v1 runs findAndModify/update/delete as a read followed by a separate write, so
      // concurrent writers to one document interleave (lost $inc, two CAS winners). This engine
      // queues writes per id within its process (see `exclusive`), which no other process sees.
      multiProcess: ferret === undefined,
    };
    return new MongoStoreImpl(client, client.db(database), location, capabilities, describeVersion(build), ferret !== undefined);
  } catch (error) {
    await client.close().catch(() => {});
    throw translateMongoError(error, `cannot connect to MongoDB at ${location}`);
  }
}

/** The parts of a MongoDB connection string that Otto reads; credentials are never kept. */
export interface MongoUriParts {
  scheme: 'mongodb' | 'mongodb+srv';
  /** Hosts as written (`host:port`, `[::1]:27017`, a decoded socket path), without credentials. */
  hosts: string[];
  /** The database in the URI path, if any. */
  database: string | undefined;
  /** Names of the options in the query string, lowercased (option names are case-insensitive). */
  options: Set<string>;
  /** Values of the options in the query string, by lowercased name (last one wins). */
  values: Map<string, string>;
}

/**
 * Splits a connection string into scheme, hosts, database and option names, dropping the
 * user info. Throws INVALID (without quoting the string) when it is not a MongoDB URI, or
 * when an "@" follows the host list (a password with an unescaped "/" would otherwise show).
 */
export function parseMongoUri(uri: string): MongoUriParts {
  const match = typeof uri === 'string' ? /^(mongodb(?:\+srv)?):\/\/([^]*)$/i.exec(uri.trim()) : null;
  if (!match) throw new StorageError('INVALID', 'the MongoDB connection string must start with mongodb:// or mongodb+srv://', { field: 'uri' });
  const scheme = match[1]!.toLowerCase() as MongoUriParts['scheme'];
  let rest = match[2]!;
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const question = rest.indexOf('?');
  const query = question >= 0 ? rest.slice(question + 1) : '';
  if (question >= 0) rest = rest.slice(0, question);
  const slash = rest.indexOf('/');
  let authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash + 1) : '';
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  if (path.includes('@')) {
    // Most likely a password with an unescaped "/": refuse rather than show part of it as a host or database.
    throw new StorageError('INVALID', 'the MongoDB connection string has an "@" after the host list: escape "/" and "@" in the user name and password as %2F and %40', { field: 'uri' });
  }
  const hosts = authority.split(',').filter((h) => h.length > 0).map(decode);
  if (hosts.length === 0) throw new StorageError('INVALID', 'the MongoDB connection string names no host', { field: 'uri' });
  const options = new Set<string>();
  const values = new Map<string, string>();
  for (const pair of query.split(/[&;]/)) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decode(eq >= 0 ? pair.slice(0, eq) : pair).toLowerCase();
    options.add(key);
    values.set(key, decode(eq >= 0 ? pair.slice(eq + 1) : ''));
  }
  return { scheme, hosts, database: path === '' ? undefined : decode(path), options, values };
}

/**
 * Where a store lives, for display: `host:port/database` (several hosts comma-separated;
 * port 27017 added when absent, except for `mongodb+srv` and socket paths). Never contains
 * credentials or connection options. Throws INVALID for a string that is not a MongoDB URI.
 */
export function mongoLocation(uri: string, database?: string): string {
  const parts = parseMongoUri(uri);
  return formatLocation(parts, database ?? parts.database ?? DEFAULT_DATABASE);
}

function formatLocation(parts: MongoUriParts, database: string): string {
  const hosts = parts.hosts.map((h) => {
    if (parts.scheme === 'mongodb+srv' || h.startsWith('/') || h.endsWith('.sock')) return h;
    const hasPort = h.startsWith('[') ? h.includes(']:') : h.includes(':');
    return hasPort ? h : `${h}:27017`;
  });
  return `${hosts.join(',')}/${database}`;
}

/** User name, password and secret-bearing option values of a connection string (raw and decoded), for redaction. */
function secretsOf(uri: string): string[] {
  const out: string[] = [];
  const rest = uri.replace(/^[^:]*:\/\//, '');
  const authority = rest.split(/[/?]/, 1)[0] ?? '';
  const at = authority.lastIndexOf('@');
  if (at >= 0) for (const part of authority.slice(0, at).split(':')) out.push(part, decode(part));
  const query = rest.includes('?') ? rest.slice(rest.indexOf('?') + 1) : '';
  for (const pair of query.split(/[&;]/)) {
    const [key = '', value = ''] = pair.split('=');
    if (/password|secret|token|properties|key/i.test(key)) out.push(value, decode(value));
  }
  return out.filter((s) => s.length >= 3);
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function assertDatabaseName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 63 || /[/\\. "$*<>:|?\u0000]/.test(name)) {
    throw new StorageError('INVALID', `MongoDB database name ${JSON.stringify(name)} is not usable`, { field: 'database' });
  }
  return name;
}

/** Driver options: Otto's defaults, each passed only when the URI does not set that option itself. */
function clientOptions(parts: MongoUriParts, options: MongoStoreOptions): MongoClientOptions {
  const out: MongoClientOptions = {};
  const uriMax = Number(parts.values.get('maxpoolsize'));
  const uriMin = Number(parts.values.get('minpoolsize'));
  if (!parts.options.has('maxpoolsize')) {
    out.maxPoolSize = Number.isFinite(uriMin) && uriMin > DEFAULT_MAX_POOL_SIZE ? uriMin : DEFAULT_MAX_POOL_SIZE;
  }
  if (!parts.options.has('minpoolsize')) {
    out.minPoolSize = Number.isFinite(uriMax) && uriMax > 0 && uriMax < DEFAULT_MIN_POOL_SIZE ? uriMax : DEFAULT_MIN_POOL_SIZE;
  }
  if (options.appName !== undefined) out.appName = options.appName;
  else if (!parts.options.has('appname')) out.appName = 'otto';
  if (options.serverSelectionTimeoutMs !== undefined) out.serverSelectionTimeoutMS = options.serverSelectionTimeoutMs;
  else if (!parts.options.has('serverselectiontimeoutms')) out.serverSelectionTimeoutMS = DEFAULT_SERVER_SELECTION_TIMEOUT_MS;
  if (options.connectTimeoutMs !== undefined && !parts.options.has('connecttimeoutms')) out.connectTimeoutMS = options.connectTimeoutMs;
  if (options.heartbeatFrequencyMs !== undefined && !parts.options.has('heartbeatfrequencyms')) out.heartbeatFrequencyMS = options.heartbeatFrequencyMs;
  if (options.monitorCommands) out.monitorCommands = true;
  return out;
}

/** FerretDB's version when `buildInfo` comes from FerretDB (`ferretdb` or `ferretdbVersion` field), else undefined. */
function ferretVersion(build: Document): string | undefined {
  if (build.ferretdb !== undefined) {
    const v = (build.ferretdb as { version?: unknown })?.version ?? build.ferretdb;
    return String(typeof v === 'string' ? v : (build.ferretdbVersion ?? 'unknown')).replace(/^v/, '');
  }
  if (build.ferretdbVersion !== undefined || build.ferretdbFeatures !== undefined) return String(build.ferretdbVersion ?? 'unknown').replace(/^v/, '');
  return undefined;
}

/** `MongoDB 7.0.77 (FerretDB 1.24.2)` or `MongoDB 8.0.4`. */
function describeVersion(build: Document): string {
  const ferret = ferretVersion(build);
  return `MongoDB ${String(build.version ?? 'unknown')}${ferret === undefined ? '' : ` (FerretDB ${ferret})`}`;
}

class MongoStoreImpl implements MongoStore {
  readonly engine = 'mongodb';
  readonly location: string;
  readonly capabilities: Capabilities;
  readonly client: MongoClient;
  readonly db: Db;
  readonly hooks = new WriteHooks();
  /**
   * True when the server applies findAndModify/update/delete as a read followed by a
   * separate write (FerretDB v1), so concurrent writes to one document can interleave;
   * writes to one id are then queued in this process (see `exclusive`).
   */
  readonly serializeWrites: boolean;
  /**
   * True when `$group` computes only its first accumulator correctly (FerretDB v1, detected
   * with `serializeWrites`): `aggregate` then runs one pipeline per accumulator.
   */
  readonly splitAccumulators: boolean;
  private serverVersion: string;
  private readonly collections = new Map<string, MongoCollection<Doc>>();
  private readonly queues = new Map<string, Promise<void>>();
  private closed = false;
  /** By server address: when the driver's monitor began the check it still waits on (see `restartIfMonitorStuck`). */
  private readonly pendingHeartbeats = new Map<string, number>();
  private restarting: Promise<void> | null = null;

  constructor(client: MongoClient, db: Db, location: string, capabilities: Capabilities, serverVersion: string, serializeWrites: boolean) {
    this.client = client;
    this.db = db;
    this.location = location;
    this.capabilities = capabilities;
    this.serverVersion = serverVersion;
    this.serializeWrites = serializeWrites;
    this.splitAccumulators = serializeWrites;
    client.on('serverHeartbeatStarted', (event) => {
      if (!this.pendingHeartbeats.has(event.connectionId)) this.pendingHeartbeats.set(event.connectionId, performance.now());
    });
    client.on('serverHeartbeatSucceeded', (event) => this.pendingHeartbeats.delete(event.connectionId));
    client.on('serverHeartbeatFailed', (event) => this.pendingHeartbeats.delete(event.connectionId));
  }

  /**
   * Starts the driver's connections afresh when its server monitor has been waiting on one
   * check far longer than any check may take (twice its connect timeout plus heartbeat
   * interval). The driver can leave a check unanswered for good when it begins at the moment
   * the monitor's socket is closed under it (the server going away); operations then wait for
   * a server that is never checked again, even once it is back. Returns true when it restarted.
   */
  private async restartIfMonitorStuck(): Promise<boolean> {
    const { connectTimeoutMS, heartbeatFrequencyMS } = this.client.options;
    const limit = 2 * (connectTimeoutMS + heartbeatFrequencyMS);
    const now = performance.now();
    if (![...this.pendingHeartbeats.values()].some((since) => now - since > limit)) return false;
    this.restarting ??= (async () => {
      this.pendingHeartbeats.clear();
      await this.client.close().catch(() => {});
      // The server may still be away: operations connect again by themselves.
      if (!this.closed) await this.client.connect().catch(() => {});
    })().finally(() => (this.restarting = null));
    await this.restarting;
    return true;
  }

  async collection<T extends StoredMeta = Doc>(spec: CollectionSpec): Promise<Collection<T>> {
    this.assertOpen();
    assertSpec(spec);
    const existing = this.collections.get(spec.name);
    if (existing && existing.spec === spec) return existing as unknown as Collection<T>;
    const indexes = spec.indexes.map((index) => ({
      name: indexName(index),
      key: Object.fromEntries(index.fields.map(([field, direction]) => [mongoField(field), direction])) as Record<string, 1 | -1>,
      unique: index.unique === true,
    }));
    const context = `cannot open collection ${spec.name}`;
    try {
      await this.db.createCollection(spec.name).catch((error: unknown) => {
        if ((error as { code?: unknown }).code !== 48) throw error; // NamespaceExists
      });
      // The `_id` index always exists and is unique; an index on `id` alone is that index.
      const wanted = indexes.filter((i) => !(Object.keys(i.key).length === 1 && '_id' in i.key));
      // One createIndex per index, never a batch: FerretDB 1.24 drops the connection on a
      // createIndexes naming two or more indexes that already exist (so a restart failed), and
      // one index whose name exists with other options would fail a whole batch anyway.
      const driver = this.db.collection(spec.name);
      for (const i of wanted) {
        await driver.createIndex(i.key, { name: i.name, ...(i.unique ? { unique: true } : {}) }).catch((e: unknown) => {
          if (!isIndexConflict(e)) throw e;
        });
      }
    } catch (error) {
      throw translateMongoError(error, context);
    }
    const opened = this.collections.get(spec.name);
    if (opened) {
      opened.setSpec(spec);
      return opened as unknown as Collection<T>;
    }
    const collection = new MongoCollection<Doc>(spec, this, this.db.collection(spec.name));
    this.collections.set(spec.name, collection);
    return collection as unknown as Collection<T>;
  }

  async listCollections(): Promise<string[]> {
    this.assertOpen();
    try {
      const rows = await this.db.listCollections({}, { nameOnly: true }).toArray();
      return rows.map((r) => r.name).filter((n) => !n.startsWith('system.')).sort();
    } catch (error) {
      throw translateMongoError(error, 'cannot list collections');
    }
  }

  async listIndexes(args: { collection: string }): Promise<string[]> {
    this.assertOpen();
    try {
      const rows = await this.db.collection(String(args.collection)).listIndexes().toArray();
      return rows.map((r) => String(r.name));
    } catch (error) {
      if ((error as { code?: unknown }).code === 26) return []; // NamespaceNotFound
      throw translateMongoError(error, `cannot list the indexes of ${String(args.collection)}`);
    }
  }

  /**
   * Registers a hook for every write. On MongoDB there is no transaction around a write and
   * its hooks: a hook runs after the write has been acknowledged, and a hook that throws does
   * not undo the write; its error is rethrown to the caller of the write. (A later change-log
   * design will use a write-ahead record instead.)
   */
  onWrite(hook: WriteHook): () => void {
    return this.hooks.add(hook);
  }

  async health(): Promise<StoreHealth> {
    const started = performance.now();
    const base = { engine: this.engine, location: this.location };
    if (this.closed) return { ok: false, ...base, latency_ms: 0, error: 'the MongoDB store is closed' };
    try {
      const admin = this.client.db('admin');
      const [, build] = await Promise.all([admin.command({ ping: 1 }), admin.command({ buildInfo: 1 })]);
      this.serverVersion = describeVersion(build);
      return { ok: true, ...base, latency_ms: round(performance.now() - started), server_version: this.serverVersion };
    } catch (error) {
      const translated = translateMongoError(error, 'health check failed');
      const restarted = !this.closed && (await this.restartIfMonitorStuck());
      const message = restarted ? `${translated.message}; the driver had stopped checking the server, so its connections were started again` : translated.message;
      return { ok: false, ...base, latency_ms: round(performance.now() - started), server_version: this.serverVersion, error: message };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.close().catch(() => {});
  }

  assertOpen(): void {
    if (this.closed) throw new StorageError('UNAVAILABLE', 'the MongoDB store is closed');
  }

  /** The open collection named `name`, for a write that spans collections. Throws INVALID when it is not open. */
  opened(name: string): MongoCollection<Doc> {
    const collection = this.collections.get(name);
    if (!collection) throw new StorageError('INVALID', `collection ${JSON.stringify(name)} is not open on this store`, { field: 'counter' });
    return collection;
  }

  /**
   * Runs `fn` after every earlier `exclusive` call with the same key has finished, when the
   * server needs it (`serializeWrites`); otherwise runs it at once.
   */
  async exclusive<R>(key: string, fn: () => Promise<R>): Promise<R> {
    if (!this.serializeWrites) return fn();
    const previous = this.queues.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous ? previous.then(() => mine) : mine;
    this.queues.set(key, tail);
    try {
      if (previous) await previous;
      return await fn();
    } finally {
      release();
      if (this.queues.get(key) === tail) this.queues.delete(key);
    }
  }
}

/** A stored MongoDB document: Otto's document with `id` as `_id`. */
type Raw = Document & { _id: string };

class MongoCollection<T extends StoredMeta> implements Collection<T> {
  spec: CollectionSpec;
  private readonly store: MongoStoreImpl;
  private readonly driver: DriverCollection<Raw>;
  /** Index name → Otto fields, to name the field of a duplicate-key error. */
  private indexFields = new Map<string, string>();

  constructor(spec: CollectionSpec, store: MongoStoreImpl, driver: DriverCollection<Document>) {
    this.spec = spec;
    this.store = store;
    this.driver = driver as unknown as DriverCollection<Raw>;
    this.setSpec(spec);
  }

  setSpec(spec: CollectionSpec): void {
    this.spec = spec;
    for (const index of spec.indexes) this.indexFields.set(indexName(index), index.fields.map(([f]) => f).join(','));
  }

  private fail(error: unknown, action: string): StorageError {
    return translateMongoError(error, `${this.spec.name}: ${action}`, this.indexFields);
  }

  /** Runs the hooks for a write that has happened; a hook's error is rethrown (the write stays). */
  private emit(op: WriteEvent['op'], id: string, doc: T | null): void {
    if (!this.store.hooks.active) return;
    this.store.hooks.run({ collection: this.spec.name, op, id, doc: doc === null ? null : (structuredClone(doc) as unknown as Doc) });
  }

  private key(id: string): string {
    return `${this.spec.name}\u0000${id}`;
  }

  /**
   * The filter selecting one document by id. The id is a validated string (assertId), so it
   * is a value and can never be read as an operator; the bare `{_id: id}` form (rather than
   * `{_id: {$eq: id}}`) is what FerretDB's SQLite backend serves from its primary key.
   */
  private byId(id: string): { _id: string } {
    return { _id: id };
  }

  private async read(id: string): Promise<T | null> {
    try {
      const raw = await this.driver.findOne(this.byId(id));
      return raw ? fromMongo<T>(raw) : null;
    } catch (error) {
      throw this.fail(error, `cannot read ${id}`);
    }
  }

  async insert(args: { doc: NewDoc<T> }): Promise<T> {
    this.store.assertOpen();
    const doc = stampNew<T>(args?.doc);
    const raw = toMongo(doc);
    try {
      await this.driver.insertOne(raw);
    } catch (error) {
      throw this.fail(error, `cannot insert ${doc.id}`);
    }
    this.emit('insert', doc.id, doc);
    return doc;
  }

  async insertMany(args: { docs: NewDoc<T>[]; verbatim?: boolean }): Promise<T[]> {
    this.store.assertOpen();
    if (!Array.isArray(args?.docs)) throw new StorageError('INVALID', 'docs must be a list', { field: 'docs' });
    const docs = args.docs.map((d) => stampNew<T>(d, { verbatim: args.verbatim === true }));
    const raws = docs.map(toMongo);
    if (docs.length === 0) return [];
    try {
      await this.driver.insertMany(raws, { ordered: true });
    } catch (error) {
      // Ordered: the documents before the first failure were written; report them to the hooks.
      const written = Math.min(docs.length, insertedBefore(error));
      for (const doc of docs.slice(0, written)) this.emit('insert', doc.id, doc);
      throw this.fail(error, 'cannot insert the batch');
    }
    for (const doc of docs) this.emit('insert', doc.id, doc);
    return docs;
  }

  async insertNumbered(args: { docs: NewDoc<T>[]; field: string; counter: { collection: string; id: string; field: string } }): Promise<T[]> {
    this.store.assertOpen();
    const { field, counter } = assertNumbered(args);
    const counters = this.store.opened(counter.collection);
    const n = args.docs.length;
    if (n === 0) return [];
    // No transaction: reserve (one round trip), then one ordered insert (one round trip). Invalid
    // documents are refused before the reservation, so they waste no numbers.
    for (const doc of args.docs) toMongo(stampNew<T>({ ...doc, [field]: 0 }));
    const last = await counters.increment({ id: counter.id, field: counter.field, by: n });
    return this.insertMany({ docs: args.docs.map((doc, i) => ({ ...doc, [field]: last - n + 1 + i })) });
  }

  async upsert(args: { doc: NewDoc<T>; verbatim?: boolean }): Promise<T> {
    this.store.assertOpen();
    const input = args?.doc;
    const id = assertId((input as { id?: unknown } | undefined)?.id);
    return this.store.exclusive(this.key(id), async () => {
      if (args.verbatim && typeof input.version === 'number') {
        // Replication: the version comes with the document, so no read is needed.
        const doc = stampNew<T>(input, { verbatim: true });
        const raw = toMongo(doc);
        for (let attempt = 0; ; attempt++) {
          try {
            const result = await this.driver.replaceOne(this.byId(id), raw, { upsert: true });
            this.emit(result.upsertedCount > 0 ? 'insert' : 'update', id, doc);
            return doc;
          } catch (error) {
            // Two upserts of a new id raced to insert it: the other one won, so replace it now.
            if (attempt === 0 && isDuplicateKeyError(error) && duplicateInfo(error, this.indexFields).onId !== false) continue;
            throw this.fail(error, `cannot upsert ${id}`);
          }
        }
      }
      for (let attempt = 0; attempt < UPSERT_ATTEMPTS; attempt++) {
        const current = await this.read(id);
        const doc = stampNew<T>(input, { verbatim: args.verbatim, version: current ? current.version + 1 : 1 });
        if (current && !args.verbatim) {
          doc.created_at = current.created_at;
          doc.updated_at = laterThan(current.updated_at);
        }
        const raw = toMongo(doc);
        if (!current) {
          try {
            await this.driver.insertOne(raw);
          } catch (error) {
            if (isDuplicateKeyError(error) && duplicateInfo(error, this.indexFields).onId !== false && (await this.read(id)) !== null) continue;
            throw this.fail(error, `cannot upsert ${id}`);
          }
          this.emit('insert', id, doc);
          return doc;
        }
        let matched: number;
        try {
          matched = (await this.driver.replaceOne({ _id: id, version: { $eq: current.version } }, raw)).matchedCount;
        } catch (error) {
          throw this.fail(error, `cannot upsert ${id}`);
        }
        if (matched === 1) {
          this.emit('update', id, doc);
          return doc;
        }
      }
      throw new StorageError('CONFLICT', `${this.spec.name}: ${id} kept changing while it was being replaced; try again`, { field: 'version' });
    });
  }

  async get(args: { id: string }): Promise<T | null> {
    this.store.assertOpen();
    return this.read(assertId(args?.id));
  }

  async find(args: FindOptions = {}): Promise<Page<T>> {
    this.store.assertOpen();
    const { filter, sort, limit, keys } = this.findQuery(args);
    let rows: Raw[];
    try {
      // limit + 1 tells whether another page follows; batchSize = limit + 1 lets the first
      // reply carry the whole page and close the cursor (one round trip).
      rows = await this.driver.find(filter, { sort, limit: limit + 1, batchSize: limit + 1 }).toArray();
    } catch (error) {
      throw this.fail(error, 'find failed');
    }
    const items = rows.slice(0, limit).map((r) => fromMongo<T>(r));
    return { items, next: rows.length > limit ? encodeCursor(items.at(-1)!, keys) : null };
  }

  /** The filter, sort and limit `find` sends (one document more than the page); tests read it. */
  findQuery(args: FindOptions = {}): { filter: Document; sort: Record<string, 1 | -1>; limit: number; keys: SortKey[] } {
    const query = normalizeFind(args);
    // A repeated sort key cannot change the order; drop it (with its cursor value) so the sort document stays valid.
    const seen = new Set<string>();
    const keys: SortKey[] = [];
    const after: Array<string | number | boolean> = [];
    query.sort.forEach((k, i) => {
      if (seen.has(k.field)) return;
      seen.add(k.field);
      keys.push(k);
      if (query.after) after.push(query.after[i]!);
    });
    const conditions: Document[] = [];
    if (query.where) conditions.push(compileWhere(query.where));
    if (query.after) conditions.push(cursorCondition(keys, after));
    const sort: Record<string, 1 | -1> = {};
    for (const k of keys) sort[mongoField(k.field)] = k.direction === 'asc' ? 1 : -1;
    return { filter: combine(conditions), sort, limit: query.limit, keys: query.sort };
  }

  /**
   * One pipeline the MongoDB-wire servers share (FerretDB included): `$match` with the compiled
   * where, `$group` by the fields (`_id: {g0: '$field', …}`) with `$sum: 1` and `$sum: '$field'`
   * (which adds numbers only), `$limit`. A missing field and null are merged into one group after.
   */
  async aggregate(args: AggregateOptions): Promise<AggregateRow[]> {
    this.store.assertOpen();
    const query = normalizeAggregate(args);
    const pipelines = this.aggregatePipelines(query);
    let results: Document[][];
    try {
      results = await Promise.all(pipelines.map((pipeline) => this.driver.aggregate(pipeline).toArray()));
    } catch (error) {
      throw this.fail(error, 'aggregate failed');
    }
    const rows: AggregateRow[] = [];
    for (const raw of results) {
      if (raw.length > MAX_AGGREGATE_GROUPS) throw tooManyGroups();
      for (const row of raw) {
        const id = (row._id ?? {}) as Record<string, unknown>;
        rows.push({
          group: Object.fromEntries(query.groupBy.map((f, i) => [f, groupValue(id[`g${i}`])])),
          count: Number(row.n ?? 0),
          sums: Object.fromEntries(query.sum.map((f, i) => [f, Number(row[`s${i}`] ?? 0)])),
        });
      }
    }
    return finishRows(rows, query.groupBy);
  }

  /**
   * The aggregation pipelines `aggregate` sends (tests and benchmarks read them): one with every
   * accumulator, or, on FerretDB v1 (whose `$group` computes only its first accumulator; the
   * others read an exhausted group and give 0), one pipeline per accumulator, run in parallel.
   */
  aggregatePipelines(query: { where?: Where; groupBy: string[]; sum: string[] }): Document[][] {
    const id = query.groupBy.length === 0 ? null : Object.fromEntries(query.groupBy.map((f, i) => [`g${i}`, `$${mongoField(assertFieldName(f))}`]));
    const accumulators: Array<[string, Document]> = [['n', { $sum: 1 }], ...query.sum.map((f, i): [string, Document] => [`s${i}`, { $sum: `$${mongoField(assertFieldName(f))}` }])];
    const groups: Document[] = this.store.splitAccumulators
      ? accumulators.map(([name, accumulator]) => ({ _id: id, [name]: accumulator }))
      : [{ _id: id, ...Object.fromEntries(accumulators) }];
    const match = query.where ? [{ $match: compileWhere(assertWhere(query.where)) }] : [];
    return groups.map((group) => [...match, { $group: group }, { $limit: MAX_AGGREGATE_GROUPS + 1 }]);
  }

  async count(args: { where?: Where } = {}): Promise<number> {
    this.store.assertOpen();
    const filter = args?.where === undefined ? {} : compileWhere(assertWhere(args.where));
    try {
      return await this.driver.countDocuments(filter);
    } catch (error) {
      throw this.fail(error, 'count failed');
    }
  }

  async update(args: { id: string; patch: Record<string, unknown>; expectVersion?: number }): Promise<T> {
    this.store.assertOpen();
    const id = assertId(args?.id);
    const fields = patchFields(args.patch);
    if (Object.hasOwn(fields, '_id')) throw new StorageError('INVALID', '_id cannot be patched (it is the id on MongoDB)', { field: '_id' });
    const expected = args.expectVersion;
    if (expected !== undefined && (typeof expected !== 'number' || !Number.isFinite(expected))) {
      throw new StorageError('INVALID', 'expectVersion must be a number', { field: 'expectVersion' });
    }
    return this.store.exclusive(this.key(id), async () => {
      const at = now();
      const filter: Document = expected === undefined ? this.byId(id) : { _id: id, version: { $eq: expected } };
      let before: Raw | null;
      try {
        // 'before' gives the previous updated_at, to keep updated_at moving forward (below).
        before = await this.driver.findOneAndUpdate(filter, { $set: { ...fields, updated_at: at }, $inc: { version: 1 } }, { returnDocument: 'before' });
      } catch (error) {
        throw this.fail(error, `cannot update ${id}`);
      }
      if (!before) {
        const current = expected === undefined ? null : await this.read(id);
        if (!current) throw new StorageError('NOT_FOUND', `${this.spec.name}: ${id} not found`, { field: 'id' });
        throw new StorageError('CONFLICT', `${this.spec.name}: ${id} is at version ${current.version}, not ${expected}`, { field: 'version' });
      }
      const previous = fromMongo<T>(before);
      const doc = { ...previous, ...fields, version: previous.version + 1, updated_at: at } as T;
      await this.keepMovingForward(doc, previous.updated_at);
      this.emit('update', id, doc);
      return doc;
    });
  }

  /**
   * A write stamps `updated_at` with this process's clock. When that is not later than the
   * previous value (same millisecond, or another host's clock ahead), it is moved to 1 ms
   * after it — with one more round trip, only in that case, and only if no later write has
   * happened meanwhile. Updates `doc` in place.
   */
  private async keepMovingForward(doc: T, previous: unknown): Promise<void> {
    if (typeof previous !== 'string' || doc.updated_at > previous) return;
    const later = laterThan(previous);
    try {
      await this.driver.updateOne({ _id: doc.id, version: { $eq: doc.version } }, { $set: { updated_at: later } });
    } catch (error) {
      throw this.fail(error, `cannot update ${doc.id}`);
    }
    doc.updated_at = later;
  }

  async delete(args: { id: string; expectVersion?: number }): Promise<boolean> {
    this.store.assertOpen();
    const id = assertId(args?.id);
    const expected = args.expectVersion;
    return this.store.exclusive(this.key(id), async () => {
      let deleted: number;
      try {
        const filter: Document = expected === undefined ? this.byId(id) : { _id: id, version: { $eq: expected } };
        deleted = (await this.driver.deleteOne(filter)).deletedCount;
      } catch (error) {
        throw this.fail(error, `cannot delete ${id}`);
      }
      if (deleted === 0) {
        if (expected === undefined) return false;
        const current = await this.read(id);
        if (!current) return false;
        throw new StorageError('CONFLICT', `${this.spec.name}: ${id} is at version ${current.version}, not ${expected}`, { field: 'version' });
      }
      this.emit('delete', id, null);
      return true;
    });
  }

  async deleteMany(args: { where: Where }): Promise<number> {
    this.store.assertOpen();
    if (!args?.where) throw new StorageError('INVALID', 'deleteMany needs a where', { field: 'where' });
    const filter = compileWhere(assertWhere(args.where));
    try {
      if (!this.store.hooks.active) return (await this.driver.deleteMany(filter)).deletedCount;
      // Hooks need the ids: delete in batches of known ids (still matching the where).
      let total = 0;
      for (;;) {
        const ids = (await this.driver.find(filter, { projection: { _id: 1 }, sort: { _id: 1 }, limit: 1000, batchSize: 1000 }).toArray()).map((r) => r._id);
        if (ids.length === 0) return total;
        const deleted = (await this.driver.deleteMany(combine([filter, { _id: { $in: ids } }]))).deletedCount;
        let gone = ids;
        if (deleted < ids.length) {
          // Some changed or went away meanwhile: report only those that no longer exist.
          const left = new Set((await this.driver.find({ _id: { $in: ids } }, { projection: { _id: 1 } }).toArray()).map((r) => r._id));
          gone = ids.filter((i) => !left.has(i));
        }
        total += deleted;
        for (const id of gone) this.emit('delete', id, null);
        if (ids.length < 1000) return total;
      }
    } catch (error) {
      throw this.fail(error, 'deleteMany failed');
    }
  }

  async increment(args: { id: string; field: string; by?: number }): Promise<number> {
    this.store.assertOpen();
    const id = assertId(args?.id);
    const field = assertFieldName(args.field);
    if (META_FIELDS.has(field) || field === '_id') throw new StorageError('INVALID', `${field} cannot be incremented`, { field });
    const by = assertStep(args.by);
    return this.store.exclusive(this.key(id), async () => {
      for (let attempt = 0; ; attempt++) {
        const at = now();
        let before: Raw | null;
        try {
          // One round trip: creates the counter document or adds to it. 'before' (null when it
          // was created) gives the previous value and updated_at.
          before = await this.driver.findOneAndUpdate(
            this.byId(id),
            { $inc: { [field]: by, version: 1 }, $set: { updated_at: at }, $setOnInsert: { created_at: at } },
            { upsert: true, returnDocument: 'before' },
          );
        } catch (error) {
          // Two upserts of a new counter raced to insert it: add to the winner's document.
          if (attempt === 0 && isDuplicateKeyError(error) && duplicateInfo(error, this.indexFields).onId !== false) continue;
          if (isTypeMismatch(error)) {
            const value = await this.incrementNonNumber(id, field, by);
            if (value === null) continue; // the document is gone: create it
            return value;
          }
          throw this.fail(error, `cannot increment ${field} of ${id}`);
        }
        if (!before) {
          const doc = { id, [field]: by, version: 1, created_at: at, updated_at: at } as unknown as T;
          this.emit('insert', id, doc);
          return by;
        }
        const previous = fromMongo<T>(before);
        const value = (((previous as unknown as Record<string, unknown>)[field] as number | undefined) ?? 0) + by;
        const doc = { ...previous, [field]: value, version: previous.version + 1, updated_at: at } as T;
        await this.keepMovingForward(doc, previous.updated_at);
        this.emit('update', id, doc);
        return value;
      }
    });
  }

  /**
   * `$inc` refused the stored value: a null counts as 0 (as on the other engines), anything
   * else is INVALID. Returns the new value, or null when the document has disappeared.
   */
  private async incrementNonNumber(id: string, field: string, by: number): Promise<number | null> {
    for (let attempt = 0; attempt < UPSERT_ATTEMPTS; attempt++) {
      const current = await this.read(id);
      if (!current) return null;
      const value = (current as unknown as Record<string, unknown>)[field] ?? 0;
      if (typeof value !== 'number') throw new StorageError('INVALID', `${this.spec.name}: ${field} of ${id} is not a number`, { field });
      const at = laterThan(current.updated_at);
      let matched: number;
      try {
        const result = await this.driver.updateOne(
          { _id: id, version: { $eq: current.version } },
          { $set: { [field]: value + by, updated_at: at }, $inc: { version: 1 } },
        );
        matched = result.matchedCount;
      } catch (error) {
        throw this.fail(error, `cannot increment ${field} of ${id}`);
      }
      if (matched === 1) {
        this.emit('update', id, { ...current, [field]: value + by, version: current.version + 1, updated_at: at });
        return value + by;
      }
    }
    throw new StorageError('CONFLICT', `${this.spec.name}: ${id} kept changing while ${field} was being incremented; try again`, { field });
  }

  async *scan(args: { after?: string; batchSize?: number } = {}): AsyncIterable<T[]> {
    this.store.assertOpen();
    const size = args.batchSize ?? 500;
    if (!Number.isInteger(size) || size < 1 || size > 10_000) throw new StorageError('INVALID', 'batchSize must be an integer from 1 to 10000', { field: 'batchSize' });
    if (args.after !== undefined && typeof args.after !== 'string') throw new StorageError('INVALID', 'after must be an id', { field: 'after' });
    let after = args.after ?? '';
    for (;;) {
      let rows: Raw[];
      try {
        rows = await this.driver.find({ _id: { $gt: after } }, { sort: { _id: 1 }, limit: size, batchSize: size }).toArray();
      } catch (error) {
        throw this.fail(error, 'scan failed');
      }
      if (rows.length === 0) return;
      after = rows.at(-1)!._id;
      yield rows.map((r) => fromMongo<T>(r));
      if (rows.length < size) return;
    }
  }
}

/** Otto's document as stored: validated (INVALID otherwise), `id` moved to `_id`. */
function toMongo(document: StoredMeta): Raw {
  const doc = document as unknown as Doc;
  serializeDocument(doc);
  if (Object.hasOwn(doc, '_id')) throw new StorageError('INVALID', 'the field name _id is reserved on MongoDB (it holds the id)', { field: '_id' });
  const { id, ...rest } = doc;
  return { _id: id, ...rest };
}

/** A stored document as Otto's: `_id` back to `id`. */
function fromMongo<T extends StoredMeta>(raw: Document): T {
  const { _id, ...rest } = raw;
  return { id: _id, ...rest } as unknown as T;
}

/** The MongoDB path of an Otto field: `id` is `_id`. `_id` itself is refused (it is not an Otto field there). */
function mongoField(field: string): string {
  if (field === '_id') throw new StorageError('INVALID', 'the field name _id is reserved on MongoDB (use id)', { field });
  return field === 'id' ? '_id' : field;
}

/**
 * A `Where` as a MongoDB filter, always with explicit operators (`$eq`, `$in`, `$gt`, …) so
 * that values are only ever compared. As in `matches()`, a scalar condition never matches
 * an array field by its elements (`$not: {$type: 'array'}`), and `eq null` / `in [null]`
 * also match a missing field (MongoDB's own `$eq: null` semantics).
 */
export function compileWhere(where: Where): Document {
  switch (where.op) {
    case 'and': {
      const parts = where.clauses.map(compileWhere);
      return combine(parts);
    }
    case 'eq':
      return { [mongoField(where.field)]: scalarCondition(where.field, { $eq: where.value }) };
    case 'in':
      return { [mongoField(where.field)]: scalarCondition(where.field, { $in: [...where.values] }) };
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return { [mongoField(where.field)]: scalarCondition(where.field, { [`$${where.op}`]: where.value }) };
    default:
      throw new StorageError('INVALID', `unknown where operator ${JSON.stringify((where as { op?: unknown }).op)}`);
  }
}

function scalarCondition(field: string, condition: Document): Document {
  // `_id` is never an array; leaving it bare keeps the id index usable everywhere.
  return field === 'id' ? condition : { ...condition, $not: { $type: 'array' } };
}

/**
 * The documents strictly after the cursor values in sort order (keys include the id
 * tie-breaker): key 0 beyond its value, or key 0 equal and key 1 beyond, … — the SQLite
 * engine's cursorCondition as `$or` of conjunctions.
 */
export function cursorCondition(keys: SortKey[], after: Array<string | number | boolean>): Document {
  const branches: Document[] = [];
  for (let i = 0; i < keys.length; i++) {
    const branch: Document = {};
    for (let j = 0; j < i; j++) branch[mongoField(keys[j]!.field)] = { $eq: after[j] };
    branch[mongoField(keys[i]!.field)] = { [keys[i]!.direction === 'asc' ? '$gt' : '$lt']: after[i] };
    branches.push(branch);
  }
  return branches.length === 1 ? branches[0]! : { $or: branches };
}

function combine(conditions: Document[]): Document {
  const parts = conditions.filter((c) => Object.keys(c).length > 0);
  if (parts.length === 0) return {};
  return parts.length === 1 ? parts[0]! : { $and: parts };
}

/** How many documents an ordered insertMany wrote before it failed. */
function insertedBefore(error: unknown): number {
  const e = error as { insertedCount?: unknown; result?: { insertedCount?: unknown }; writeErrors?: unknown };
  if (typeof e?.insertedCount === 'number') return e.insertedCount;
  if (typeof e?.result?.insertedCount === 'number') return e.result.insertedCount;
  return 0;
}

function isTypeMismatch(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown };
  return e?.code === 14 || (typeof e?.message === 'string' && /non-numeric type|Cannot apply \$inc/i.test(e.message));
}

function isIndexConflict(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === 85 || code === 86; // IndexOptionsConflict, IndexKeySpecsConflict
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
