/**
 * A Store wrapper whose collections log every write in a write-ahead change log (see
 * `change-log.ts`). Domain code keeps using the plain contract: the wrapper behaves exactly
 * like the store it wraps (same results, same errors), with one pending record inserted
 * before each document write and committed (or aborted) after it.
 *
 * What a write did is taken from the wrapped store's own write hooks, matched to the call
 * through AsyncLocalStorage, so `increment`, `upsert` and a partly written `insertMany` are
 * logged with the exact document the engine wrote.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  StorageError,
  isStorageError,
  type AggregateOptions,
  type AggregateRow,
  type ChangeOp,
  type Collection,
  type CollectionSpec,
  type Doc,
  type FindOptions,
  type NewDoc,
  type Page,
  type StoredMeta,
  type Store,
  type StoreHealth,
  type Where,
  type WriteHook,
} from '../contract.ts';
import { assertId } from '../validate.ts';
import { assertWhere, matches } from '../where.ts';
import type { WriteAheadChangeLog } from './change-log.ts';
import { UNLOGGED_COLLECTIONS } from './records.ts';

/** The writes one wrapped call made, by `collection\0id` (the last one of a document wins). */
interface Capture {
  events: Map<string, { op: ChangeOp; doc: Doc | null }>;
}

/** A document a wrapped call is about to write. */
interface Target {
  collection: string;
  id: string;
  /** The write intended, when it differs from the call's. */
  op?: ChangeOp;
}

const keyOf = (collection: string, id: string) => `${collection}\u0000${id}`;

const capture = new AsyncLocalStorage<Capture>();
/** Pages deleteMany walks at most (500 documents each). */
const DELETE_MANY_MAX_PAGES = 100_000;
const DELETE_ATTEMPTS = 8;

/** Wraps `inner` so that every write of its collections (except the log's own) is logged in `log`. */
export function withWriteAheadLog(inner: Store, log: WriteAheadChangeLog): Store {
  return new LoggedStore(inner, log);
}

class LoggedStore implements Store {
  private readonly inner: Store;
  private readonly log: WriteAheadChangeLog;
  private readonly wrapped = new Map<string, LoggedCollection<Doc>>();
  private readonly detach: () => void;

  constructor(inner: Store, log: WriteAheadChangeLog) {
    this.inner = inner;
    this.log = log;
    this.detach = inner.onWrite((event) => {
      capture.getStore()?.events.set(keyOf(event.collection, event.id), { op: event.op, doc: event.doc });
    });
  }

  get engine(): string {
    return this.inner.engine;
  }
  get location(): string {
    return this.inner.location;
  }
  get capabilities() {
    return this.inner.capabilities;
  }

  async collection<T extends StoredMeta = Doc>(spec: CollectionSpec): Promise<Collection<T>> {
    const collection = await this.inner.collection<T>(spec);
    if (UNLOGGED_COLLECTIONS.has(spec.name)) return collection;
    this.log.rememberSpec(spec);
    let wrapper = this.wrapped.get(spec.name);
    if (!wrapper) {
      wrapper = new LoggedCollection<Doc>(collection as unknown as Collection<Doc>, this.log, this.inner.capabilities.transactions);
      this.wrapped.set(spec.name, wrapper);
    } else {
      wrapper.inner = collection as unknown as Collection<Doc>;
    }
    return wrapper as unknown as Collection<T>;
  }

  listCollections(): Promise<string[]> {
    return this.inner.listCollections();
  }

  listIndexes(args: { collection: string }): Promise<string[]> {
    return this.inner.listIndexes(args);
  }

  onWrite(hook: WriteHook): () => void {
    return this.inner.onWrite(hook);
  }

  health(): Promise<StoreHealth> {
    return this.inner.health();
  }

  async close(): Promise<void> {
    this.detach();
    this.log.close();
    await this.inner.close();
  }
}

class LoggedCollection<T extends StoredMeta> implements Collection<T> {
  inner: Collection<T>;
  private readonly log: WriteAheadChangeLog;
  /** The wrapped store rolls a failed multi-document write back entirely (no partial batch). */
  private readonly atomicBatches: boolean;

  constructor(inner: Collection<T>, log: WriteAheadChangeLog, atomicBatches: boolean) {
    this.inner = inner;
    this.log = log;
    this.atomicBatches = atomicBatches;
  }

  get spec(): CollectionSpec {
    return this.inner.spec;
  }

  /**
   * Runs one write of the documents `targets`: an intent each (its seq), the write, then each
   * seq committed with what was written (or aborted when nothing was). `derive` says what a
   * successful write did to a document of this collection the engine reported no hook event for.
   */
  private async logged<R>(targets: Target[], op: ChangeOp, write: () => Promise<R>, derive: (result: R) => Promise<Map<string, { op: ChangeOp; doc: Doc | null }>>): Promise<R> {
    const intents = targets.map((t) => ({ collection: t.collection, op: t.op ?? op, doc_id: t.id }));
    const allocated = await Promise.allSettled(intents.map((intent) => this.log.allocate(intent)));
    const failed = allocated.find((a) => a.status === 'rejected');
    if (failed) {
      await Promise.all(allocated.map((a, i) => (a.status === 'fulfilled' ? this.log.abort(a.value, intents[i]!) : undefined)));
      throw failed.reason;
    }
    const seqs = allocated.map((a) => (a as PromiseFulfilledResult<number>).value);
    const seen: Capture = { events: new Map() };
    let result: R;
    try {
      result = await capture.run(seen, write);
    } catch (error) {
      // Engines without transactions keep what was written before a failure: log that part.
      await Promise.all(
        targets.map((t, i) => {
          const event = this.atomicBatches ? undefined : seen.events.get(keyOf(t.collection, t.id));
          return event ? this.log.commit(seqs[i]!, intents[i]!, event) : this.log.abort(seqs[i]!, intents[i]!);
        }),
      );
      throw error;
    }
    const name = this.inner.spec.name;
    let derived: Map<string, { op: ChangeOp; doc: Doc | null }> | undefined;
    if (targets.some((t) => t.collection === name && !seen.events.has(keyOf(t.collection, t.id)))) derived = await derive(result).catch(() => new Map());
    await Promise.all(
      targets.map((t, i) => {
        const event = seen.events.get(keyOf(t.collection, t.id)) ?? (t.collection === name ? derived?.get(t.id) : undefined);
        return event ? this.log.commit(seqs[i]!, intents[i]!, event) : this.log.abort(seqs[i]!, intents[i]!);
      }),
    );
    return result;
  }

  private here(...ids: string[]): Target[] {
    return ids.map((id) => ({ collection: this.inner.spec.name, id }));
  }

  async insert(args: { doc: NewDoc<T> }): Promise<T> {
    const id = assertId((args?.doc as { id?: unknown } | undefined)?.id);
    return this.logged(this.here(id), 'insert', () => this.inner.insert(args), async (doc) => one(id, 'insert', doc));
  }

  async insertMany(args: { docs: NewDoc<T>[] }): Promise<T[]> {
    if (!Array.isArray(args?.docs)) throw new StorageError('INVALID', 'docs must be a list', { field: 'docs' });
    if (args.docs.length === 0) return this.inner.insertMany(args);
    const ids = args.docs.map((d) => assertId((d as { id?: unknown } | undefined)?.id));
    return this.logged(this.here(...ids), 'insert', () => this.inner.insertMany(args), async (docs) => new Map(docs.map((d) => [d.id, { op: 'insert' as const, doc: d as unknown as Doc }])));
  }

  async upsert(args: { doc: NewDoc<T>; verbatim?: boolean }): Promise<T> {
    const id = assertId((args?.doc as { id?: unknown } | undefined)?.id);
    return this.logged(this.here(id), 'update', () => this.inner.upsert(args), async (doc) => one(id, doc.version === 1 ? 'insert' : 'update', doc));
  }

  get(args: { id: string }): Promise<T | null> {
    return this.inner.get(args);
  }

  aggregate(args: AggregateOptions): Promise<AggregateRow[]> {
    return this.inner.aggregate(args);
  }

  find(args?: FindOptions): Promise<Page<T>> {
    return this.inner.find(args);
  }

  count(args?: { where?: Where }): Promise<number> {
    return this.inner.count(args);
  }

  async update(args: { id: string; patch: Partial<Omit<T, 'id' | 'version' | 'created_at'>>; expectVersion?: number }): Promise<T> {
    const id = assertId(args?.id);
    return this.logged(this.here(id), 'update', () => this.inner.update(args), async (doc) => one(id, 'update', doc));
  }

  async delete(args: { id: string; expectVersion?: number }): Promise<boolean> {
    const id = assertId(args?.id);
    return this.logged(this.here(id), 'delete', () => this.inner.delete(args), async (deleted) => (deleted ? one(id, 'delete', null) : new Map()));
  }

  /**
   * Deletes the matches one by one (each a logged delete guarded by its version), walking them
   * in id order; a document changed meanwhile is deleted only if it still matches.
   */
  async deleteMany(args: { where: Where }): Promise<number> {
    if (!args?.where) throw new StorageError('INVALID', 'deleteMany needs a where', { field: 'where' });
    const where = assertWhere(args.where);
    let after: string | null = null;
    let total = 0;
    for (let pages = 0; pages < DELETE_MANY_MAX_PAGES; pages++) {
      const page: Page<T> = await this.inner.find({ where, sort: [{ field: 'id', direction: 'asc' }], limit: 500, after });
      for (const doc of page.items) if (await this.deleteIfMatching(doc, where)) total++;
      if (!page.next) return total;
      after = page.next;
    }
    throw new StorageError('UNAVAILABLE', `${this.inner.spec.name}: deleteMany matched more than ${DELETE_MANY_MAX_PAGES * 500} documents; delete in smaller steps`);
  }

  private async deleteIfMatching(found: T, where: Where): Promise<boolean> {
    let doc: T | null = found;
    for (let attempt = 0; attempt < DELETE_ATTEMPTS && doc; attempt++) {
      try {
        return await this.delete({ id: doc.id, expectVersion: doc.version });
      } catch (error) {
        if (!isStorageError(error, 'CONFLICT')) throw error;
      }
      doc = await this.inner.get({ id: found.id });
      if (doc && !matches(doc, where)) return false;
    }
    if (!doc) return false;
    throw new StorageError('CONFLICT', `${this.inner.spec.name}: ${found.id} kept changing while it was being deleted; try again`, { field: 'version' });
  }

  async increment(args: { id: string; field: string; by?: number }): Promise<number> {
    const id = assertId(args?.id);
    return this.logged(this.here(id), 'update', () => this.inner.increment(args), async () => {
      const doc = await this.inner.get({ id });
      return one(id, doc ? (doc.version === 1 ? 'insert' : 'update') : 'delete', doc);
    });
  }

  /** Logs the numbered documents and the counter's new value (written in the counter's collection). */
  async insertNumbered(args: { docs: NewDoc<T>[]; field: string; counter: { collection: string; id: string; field: string } }): Promise<T[]> {
    if (!Array.isArray(args?.docs)) throw new StorageError('INVALID', 'docs must be a list', { field: 'docs' });
    if (args.docs.length === 0 || typeof args.counter?.collection !== 'string') return this.inner.insertNumbered(args);
    const ids = args.docs.map((d) => assertId((d as { id?: unknown } | undefined)?.id));
    const counter: Target = { collection: args.counter.collection, id: assertId(args.counter.id), op: 'update' };
    return this.logged([counter, ...this.here(...ids)], 'insert', () => this.inner.insertNumbered(args), async (docs) => new Map(docs.map((d) => [d.id, { op: 'insert' as const, doc: d as unknown as Doc }])));
  }

  scan(args?: { after?: string; batchSize?: number }): AsyncIterable<T[]> {
    return this.inner.scan(args);
  }
}

function one(id: string, op: ChangeOp, doc: StoredMeta | null): Map<string, { op: ChangeOp; doc: Doc | null }> {
  return new Map([[id, { op, doc: doc as Doc | null }]]);
}
