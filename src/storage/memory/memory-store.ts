import {
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
  type Store,
  type StoreHealth,
  type Where,
  type WriteEvent,
  type WriteHook,
} from '../contract.ts';
import { assertWhere, compareBySort, encodeCursor, isAfterCursor, matches, normalizeFind } from '../where.ts';
import { applyPatch, assertFieldName, assertId, assertNumbered, assertSpec, assertStep, indexName, laterThan, serializeDocument, stampNew } from '../validate.ts';
import { storedDocEvent, WriteHooks } from '../write-hooks.ts';
import { aggregateDocuments, normalizeAggregate } from '../aggregate.ts';

const CAPABILITIES: Capabilities = { transactions: true, changeStreams: false, ttl: false, durable: false, multiProcess: false };

/** Creates an in-process store that keeps everything in memory: for tests and throwaway runs. */
export function createMemoryStore(): Store {
  return new MemoryStore();
}

/**
 * One write as handed to a persistence hook: the stored JSON of the document after a put,
 * or null for a delete.
 */
export interface PersistedWrite {
  collection: string;
  op: 'put' | 'delete';
  id: string;
  json: string | null;
}

/**
 * What an in-memory collection needs from the store that owns it. Engines that keep their
 * state in memory and persist it elsewhere (the JSONL engine) reuse {@link MemoryCollection}
 * with a `persist` hook.
 */
export interface MemoryCollectionHost {
  readonly hooks: WriteHooks;
  /** Throws UNAVAILABLE when the store is closed. */
  assertOpen(): void;
  /** The collection with this name if it has been opened on the store (for `insertNumbered`'s counter). */
  opened(name: string): MemoryCollection<Doc> | undefined;
  /**
   * Makes a validated write durable before it becomes visible; throwing refuses the write
   * and leaves the collection unchanged. Without it (the memory engine) a throwing write
   * hook undoes the write; with it, write hooks run after the write is durable and a hook
   * that throws does not undo it (its error is rethrown), as on engines without transactions.
   */
  persist?(write: PersistedWrite): void;
}

class MemoryStore implements Store, MemoryCollectionHost {
  readonly engine = 'memory';
  readonly location = 'in-process memory (lost on exit)';
  readonly capabilities = CAPABILITIES;
  readonly hooks = new WriteHooks();
  private readonly collections = new Map<string, MemoryCollection<Doc>>();
  private closed = false;

  async collection<T extends StoredMeta = Doc>(spec: CollectionSpec): Promise<Collection<T>> {
    this.assertOpen();
    assertSpec(spec);
    let existing = this.collections.get(spec.name);
    if (!existing) {
      existing = new MemoryCollection<Doc>(spec, this);
      this.collections.set(spec.name, existing);
    } else {
      existing.addIndexes(spec);
    }
    return existing as unknown as Collection<T>;
  }

  async listCollections(): Promise<string[]> {
    return [...this.collections.keys()].sort();
  }

  async listIndexes(args: { collection: string }): Promise<string[]> {
    const c = this.collections.get(args.collection);
    return c ? ['_id_', ...c.indexNames()] : [];
  }

  onWrite(hook: WriteHook): () => void {
    return this.hooks.add(hook);
  }

  opened(name: string): MemoryCollection<Doc> | undefined {
    return this.collections.get(name);
  }

  async health(): Promise<StoreHealth> {
    return { ok: !this.closed, engine: this.engine, location: this.location, latency_ms: 0, ...(this.closed ? { error: 'closed' } : {}) };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  assertOpen(): void {
    if (this.closed) throw new StorageError('UNAVAILABLE', 'memory store is closed');
  }
}

/** A unique index of an in-memory collection: its fields and a map from key to the id holding it. */
interface UniqueIndex {
  name: string;
  fields: string[];
  owners: Map<string, string>;
}

/**
 * The key of a document in a unique index, or null when the document does not take part:
 * a field is missing or null (never collides), or holds an object or array (compared by
 * identity, so it never equals another document's value either).
 */
function uniqueKey(doc: Record<string, unknown>, fields: string[]): string | null {
  const values: unknown[] = [];
  for (const field of fields) {
    const value = Object.hasOwn(doc, field) ? doc[field] : undefined;
    if (value === undefined || value === null || typeof value === 'object') return null;
    values.push(value);
  }
  return JSON.stringify(values);
}

/**
 * A collection held in memory: documents as JSON text by id, unique indexes as maps from
 * key to id (so a write costs the same at 1k and 100k documents), and the query logic of
 * the memory engine. Used by the memory engine and, with a `persist` hook, by the JSONL engine.
 */
export class MemoryCollection<T extends StoredMeta> implements Collection<T> {
  private readonly docs = new Map<string, string>();
  private readonly uniques: UniqueIndex[] = [];
  private readonly indexes = new Set<string>();
  /** Ids in ascending order, rebuilt lazily after an id is added or removed (for scan). */
  private sorted: string[] | null = null;

  readonly spec: CollectionSpec;
  private readonly host: MemoryCollectionHost;

  constructor(spec: CollectionSpec, host: MemoryCollectionHost) {
    this.spec = spec;
    this.host = host;
    this.addIndexes(spec);
  }

  /** Adds the indexes of `spec` that are not there yet; returns true when one was added. */
  addIndexes(spec: CollectionSpec): boolean {
    let added = false;
    for (const index of spec.indexes) {
      const name = indexName(index);
      if (this.indexes.has(name)) continue;
      this.indexes.add(name);
      added = true;
      if (index.unique) {
        const unique: UniqueIndex = { name, fields: index.fields.map(([f]) => f), owners: new Map() };
        for (const [id, json] of this.docs) {
          const key = uniqueKey(JSON.parse(json) as Record<string, unknown>, unique.fields);
          if (key !== null && !unique.owners.has(key)) unique.owners.set(key, id);
        }
        this.uniques.push(unique);
      }
    }
    return added;
  }

  indexNames(): string[] {
    return [...this.indexes];
  }

  /** How many documents the collection holds. */
  get size(): number {
    return this.docs.size;
  }

  /** Every document's stored JSON in ascending id order (a consistent copy of the ids, read lazily). */
  *entries(): Iterable<[id: string, json: string]> {
    for (const id of this.sortedIds()) {
      const json = this.docs.get(id);
      if (json !== undefined) yield [id, json];
    }
  }

  /**
   * Replays a stored write without validation, hooks or persistence (loading persisted
   * state). `json` is the document's JSON, or null to remove it.
   */
  load(id: string, json: string | null): void {
    this.setRaw(id, json ?? undefined);
  }

  private sortedIds(): string[] {
    this.sorted ??= [...this.docs.keys()].sort(compareIds);
    return this.sorted;
  }

  /** Sets or removes a document, keeping the unique-index maps and the id order in step. */
  private setRaw(id: string, json: string | undefined, parsed?: Record<string, unknown>): void {
    const previous = this.docs.get(id);
    if (previous !== undefined && this.uniques.length > 0) {
      const old = JSON.parse(previous) as Record<string, unknown>;
      for (const unique of this.uniques) {
        const key = uniqueKey(old, unique.fields);
        if (key !== null && unique.owners.get(key) === id) unique.owners.delete(key);
      }
    }
    if (json === undefined) {
      if (previous !== undefined) {
        this.docs.delete(id);
        this.sorted = null;
      }
      return;
    }
    this.docs.set(id, json);
    if (previous === undefined) this.sorted = null;
    if (this.uniques.length > 0) {
      const doc = parsed ?? (JSON.parse(json) as Record<string, unknown>);
      for (const unique of this.uniques) {
        const key = uniqueKey(doc, unique.fields);
        if (key !== null && !unique.owners.has(key)) unique.owners.set(key, id);
      }
    }
  }

  /** Throws DUPLICATE when another document holds one of this document's unique-index values. */
  private checkUnique(doc: Record<string, unknown>, id: string): void {
    for (const unique of this.uniques) {
      const key = uniqueKey(doc, unique.fields);
      if (key === null) continue;
      const owner = unique.owners.get(key);
      if (owner !== undefined && owner !== id) {
        const values = unique.fields.map((f) => doc[f]);
        throw new StorageError('DUPLICATE', `${this.spec.name}: unique index ${unique.name} already has ${JSON.stringify(values)}`, { field: unique.fields.join(',') });
      }
    }
  }

  /**
   * Throws what inserting these new documents would throw (INVALID, DUPLICATE on an id or a
   * unique value, against the collection and within the batch), before anything is written.
   */
  private assertInsertable(docs: T[]): void {
    const ids = new Set<string>();
    const keys = this.uniques.map(() => new Set<string>());
    for (const doc of docs) {
      serializeDocument(doc);
      if (this.docs.has(doc.id) || ids.has(doc.id)) throw new StorageError('DUPLICATE', `${this.spec.name}: id ${doc.id} already exists`, { field: 'id' });
      ids.add(doc.id);
      const fields = doc as unknown as Record<string, unknown>;
      this.checkUnique(fields, doc.id);
      this.uniques.forEach((unique, i) => {
        const key = uniqueKey(fields, unique.fields);
        if (key === null) return;
        if (keys[i]!.has(key)) throw new StorageError('DUPLICATE', `${this.spec.name}: unique index ${unique.name} has ${key} twice in the batch`, { field: unique.fields.join(',') });
        keys[i]!.add(key);
      });
    }
  }

  private read(id: string): T | null {
    const json = this.docs.get(id);
    return json === undefined ? null : (JSON.parse(json) as T);
  }

  /** Validates, checks unique indexes against other documents, stores, and runs hooks as one step. */
  private write(doc: T, op: WriteEvent['op']): T {
    const json = serializeDocument(doc);
    const fields = doc as unknown as Record<string, unknown>;
    this.checkUnique(fields, doc.id);
    if (this.host.persist) {
      this.host.persist({ collection: this.spec.name, op: 'put', id: doc.id, json });
      this.setRaw(doc.id, json, fields);
      if (this.host.hooks.active) this.host.hooks.run(storedDocEvent({ collection: this.spec.name, op, id: doc.id, json }));
      return JSON.parse(json) as T;
    }
    const previous = this.docs.get(doc.id);
    this.setRaw(doc.id, json, fields);
    try {
      this.host.hooks.run(storedDocEvent({ collection: this.spec.name, op, id: doc.id, json }));
    } catch (error) {
      this.setRaw(doc.id, previous);
      throw error;
    }
    return JSON.parse(json) as T;
  }

  async insert(args: { doc: NewDoc<T>; verbatim?: boolean }): Promise<T> {
    this.host.assertOpen();
    const doc = stampNew<T>(args.doc, { verbatim: args.verbatim === true });
    if (this.docs.has(doc.id)) throw new StorageError('DUPLICATE', `${this.spec.name}: id ${doc.id} already exists`, { field: 'id' });
    return this.write(doc, 'insert');
  }

  async insertMany(args: { docs: NewDoc<T>[]; verbatim?: boolean }): Promise<T[]> {
    this.host.assertOpen();
    if (this.host.persist) {
      // Persisted writes cannot be taken back: check the whole batch first, so that only an
      // I/O failure can leave part of it written.
      if (!Array.isArray(args?.docs)) throw new StorageError('INVALID', 'docs must be a list', { field: 'docs' });
      const docs = args.docs.map((d) => stampNew<T>(d, { verbatim: args.verbatim === true }));
      this.assertInsertable(docs);
      return docs.map((doc) => this.write(doc, 'insert'));
    }
    const written: T[] = [];
    try {
      for (const doc of args.docs) written.push(await this.insert({ doc, verbatim: args.verbatim }));
    } catch (error) {
      for (const doc of written) this.setRaw(doc.id, undefined);
      throw error;
    }
    return written;
  }

  async upsert(args: { doc: NewDoc<T>; verbatim?: boolean }): Promise<T> {
    this.host.assertOpen();
    const id = assertId((args.doc as { id?: unknown })?.id);
    const current = this.read(id);
    const stamped = stampNew<T>(args.doc, { verbatim: args.verbatim, version: current ? current.version + 1 : 1 });
    if (current && !args.verbatim) {
      stamped.created_at = current.created_at;
      stamped.updated_at = laterThan(current.updated_at);
    }
    return this.write(stamped, current ? 'update' : 'insert');
  }

  async get(args: { id: string }): Promise<T | null> {
    this.host.assertOpen();
    return this.read(assertId(args.id));
  }

  private filter(where: Where | undefined): T[] {
    const out: T[] = [];
    for (const json of this.docs.values()) {
      const doc = JSON.parse(json) as T;
      if (matches(doc, where)) out.push(doc);
    }
    return out;
  }

  async find(args: FindOptions = {}): Promise<Page<T>> {
    this.host.assertOpen();
    const q = normalizeFind(args);
    let docs = this.filter(q.where).sort((a, b) => compareBySort(a, b, q.sort));
    if (q.after) docs = docs.filter((d) => isAfterCursor(d, q.sort, q.after!));
    const items = docs.slice(0, q.limit);
    const next = docs.length > q.limit ? encodeCursor(items.at(-1)!, q.sort) : null;
    return { items, next };
  }

  async count(args: { where?: Where } = {}): Promise<number> {
    this.host.assertOpen();
    if (args.where === undefined) return this.docs.size;
    return this.filter(assertWhere(args.where)).length;
  }

  async aggregate(args: AggregateOptions): Promise<AggregateRow[]> {
    this.host.assertOpen();
    const query = normalizeAggregate(args);
    const docs = this.docs;
    return aggregateDocuments((function* () {
      for (const json of docs.values()) yield JSON.parse(json) as Record<string, unknown>;
    })(), query);
  }

  async update(args: { id: string; patch: Record<string, unknown>; expectVersion?: number }): Promise<T> {
    this.host.assertOpen();
    const current = this.read(assertId(args.id));
    if (!current) throw new StorageError('NOT_FOUND', `${this.spec.name}: ${args.id} not found`, { field: 'id' });
    if (args.expectVersion !== undefined && current.version !== args.expectVersion) {
      throw new StorageError('CONFLICT', `${this.spec.name}: ${args.id} is at version ${current.version}, not ${args.expectVersion}`, { field: 'version' });
    }
    return this.write(applyPatch(current, args.patch), 'update');
  }

  async delete(args: { id: string; expectVersion?: number }): Promise<boolean> {
    this.host.assertOpen();
    const current = this.read(assertId(args.id));
    if (!current) return false;
    if (args.expectVersion !== undefined && current.version !== args.expectVersion) {
      throw new StorageError('CONFLICT', `${this.spec.name}: ${args.id} is at version ${current.version}, not ${args.expectVersion}`, { field: 'version' });
    }
    if (this.host.persist) {
      this.host.persist({ collection: this.spec.name, op: 'delete', id: current.id, json: null });
      this.setRaw(current.id, undefined);
      if (this.host.hooks.active) this.host.hooks.run({ collection: this.spec.name, op: 'delete', id: current.id, doc: null });
      return true;
    }
    const json = this.docs.get(current.id)!;
    this.setRaw(current.id, undefined);
    try {
      this.host.hooks.run({ collection: this.spec.name, op: 'delete', id: current.id, doc: null });
    } catch (error) {
      this.setRaw(current.id, json);
      throw error;
    }
    return true;
  }

  async deleteMany(args: { where: Where }): Promise<number> {
    this.host.assertOpen();
    if (!args?.where) throw new StorageError('INVALID', 'deleteMany needs a where', { field: 'where' });
    assertWhere(args.where);
    let n = 0;
    for (const doc of this.filter(args.where)) if (await this.delete({ id: doc.id })) n++;
    return n;
  }

  async increment(args: { id: string; field: string; by?: number }): Promise<number> {
    this.host.assertOpen();
    const id = assertId(args.id);
    const field = assertFieldName(args.field);
    const by = assertStep(args.by);
    return this.incrementNow(id, field, by);
  }

  /** The value of a counter field before an increment: 0 when absent. Throws INVALID when it is not a number. */
  counterValue(id: string, field: string): number {
    const current = this.read(id);
    const value = current ? ((current as unknown as Record<string, unknown>)[field] ?? 0) : 0;
    if (typeof value !== 'number') throw new StorageError('INVALID', `${this.spec.name}: ${field} of ${id} is not a number`, { field });
    return value;
  }

  /** `increment` with validated arguments, synchronously. */
  incrementNow(id: string, field: string, by: number): number {
    const current = this.read(id);
    if (!current) {
      const doc = stampNew<T>({ id, [field]: by } as unknown as NewDoc<T>);
      this.write(doc, 'insert');
      return by;
    }
    const value = (current as unknown as Record<string, unknown>)[field] ?? 0;
    if (typeof value !== 'number') throw new StorageError('INVALID', `${this.spec.name}: ${field} of ${id} is not a number`, { field });
    this.write(applyPatch(current, { [field]: value + by }), 'update');
    return value + by;
  }

  /** The stored JSON of a document, or undefined (to restore it after a failed batch). */
  rawJson(id: string): string | undefined {
    return this.docs.get(id);
  }

  async insertNumbered(args: { docs: NewDoc<T>[]; field: string; counter: { collection: string; id: string; field: string } }): Promise<T[]> {
    this.host.assertOpen();
    const { field, counter } = assertNumbered(args);
    const counters = this.host.opened(counter.collection);
    if (!counters) throw new StorageError('INVALID', `counter collection ${counter.collection} is not open on this store`, { field: 'counter' });
    const docs = args.docs.map((d) => stampNew<T>(d));
    if (docs.length === 0) return [];
    // Everything below is synchronous, so no other write interleaves. The documents are checked
    // with the numbers they will get before the counter moves, so a refused batch uses no numbers.
    const base = counters.counterValue(counter.id, counter.field);
    docs.forEach((doc, i) => ((doc as Record<string, unknown>)[field] = base + 1 + i));
    this.assertInsertable(docs);
    if (this.host.persist) {
      // Persisted writes are not taken back: a failure after the counter leaves a gap, never a duplicate.
      counters.incrementNow(counter.id, counter.field, docs.length);
      return docs.map((doc) => this.write(doc, 'insert'));
    }
    const counterBefore = counters.rawJson(counter.id);
    const written: T[] = [];
    try {
      counters.incrementNow(counter.id, counter.field, docs.length);
      for (const doc of docs) written.push(this.write(doc, 'insert'));
    } catch (error) {
      for (const doc of written) this.setRaw(doc.id, undefined);
      counters.load(counter.id, counterBefore ?? null);
      throw error;
    }
    return written;
  }

  async *scan(args: { after?: string; batchSize?: number } = {}): AsyncIterable<T[]> {
    this.host.assertOpen();
    const size = args.batchSize ?? 500;
    let after = args.after;
    for (;;) {
      const sorted = this.sortedIds();
      const start = after === undefined ? 0 : firstAfter(sorted, after);
      const ids = sorted.slice(start, start + size);
      if (ids.length === 0) return;
      const batch = ids.map((id) => this.read(id)).filter((d): d is T => d !== null);
      after = ids.at(-1);
      if (batch.length > 0) yield batch;
      if (ids.length < size) return;
    }
  }
}

/** The index of the first id in `sorted` that is greater than `after` (binary search). */
function firstAfter(sorted: string[], after: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareIds(sorted[mid]!, after) > 0) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Orders ids by Unicode code point, which is the order of UTF-8 bytes: how SQLite (BINARY)
 * and MongoDB order string ids, so `scan` yields the same order on every engine. (JavaScript's
 * `<` compares UTF-16 code units, which differs for characters above U+FFFF versus U+E000–U+FFFF.)
 */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x < 0xd800 && y < 0xd800) return x - y;
    return codeUnitRank(x) - codeUnitRank(y);
  }
  return a.length - b.length;
}

/** A code unit's rank in code point order: surrogates (characters above U+FFFF) after U+E000–U+FFFF. */
function codeUnitRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
