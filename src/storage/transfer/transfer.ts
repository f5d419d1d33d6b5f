/**
 * Copies collections from any store into any other, through the storage contract only:
 * `scan` in id order on the source; on the target, per batch, one lookup of the ids it has,
 * one `insertMany({verbatim: true})` of the others, and `upsert({verbatim: true})` of those
 * that differ (documents keep their id, version and timestamps).
 *
 * - Streaming: one batch of one collection is in memory at a time.
 * - Idempotent: a verbatim upsert of the same document changes nothing, so copying twice is harmless.
 * - Resumable: after each batch, the last id copied is recorded in the target's `_transfers`
 *   collection under a key derived from the source (its engine and location). A run that was
 *   stopped (kill -9, Ctrl-C, a lost connection) resumes after that id when run again; a
 *   finished run starts over from the beginning when run again.
 * - Read-only on the source: only `listCollections`, `collection` (with a spec without
 *   indexes, which creates nothing), `count` and `scan` are called on it.
 * - Never deletes: documents the target has and the source lacks stay (`target_before` and
 *   `otto verify` show them).
 */
import { createHash } from 'node:crypto';
import { StorageError, isStorageError, type Collection, type Doc, type Store } from '../contract.ts';
import { isIn } from '../where.ts';
import { assertCollectionNames, defaultCollections, readSpec, targetSpec, TRANSFERS } from './collections.ts';
import { canonicalJson } from './verify.ts';

export interface TransferOptions {
  from: Store;
  to: Store;
  /** Collections to copy; default: see `defaultCollections` (domain collections, `_counters`, other non-system ones). */
  collections?: string[];
  /** Documents per batch (and per checkpoint), 1..10000; default 500. */
  batchSize?: number;
  /** Upserts in flight at once within a batch; default 8. */
  concurrency?: number;
  /** Called after each batch and when a collection is finished. */
  onProgress?: (progress: TransferProgress) => void;
  /** Stops the transfer after the batch in flight (its checkpoint is kept); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** What identifies the source in checkpoints; default `<engine>:<location>`. */
  sourceId?: string;
  /** Ignore the checkpoints of an unfinished earlier run and copy everything again. */
  restart?: boolean;
}

export interface TransferProgress {
  collection: string;
  /** 1-based position of this collection in the run, and how many there are. */
  position: number;
  of: number;
  /** Documents copied by this run, and where the source stands (copied + already copied by an earlier run). */
  copied: number;
  done: number;
  /** Documents in the source collection when it was started. */
  total: number;
  elapsed_ms: number;
  docs_per_s: number;
  /** Seconds left for this collection at the current rate, or null before there is a rate. */
  eta_s: number | null;
  /** True on the last report of a collection. */
  finished: boolean;
}

export interface CollectionTransfer {
  collection: string;
  /** Documents written by this run. */
  copied: number;
  /** Documents not copied again because an earlier, interrupted run had copied them. */
  skipped: number;
  /** Documents in the target before this collection was started (not counting resumes). */
  target_before: number;
  /** The id this run resumed after, or null when it started from the beginning. */
  resumed_after: string | null;
  duration_ms: number;
}

export interface TransferSummary {
  source: string;
  target: string;
  /** True when this run continued an interrupted one. */
  resumed: boolean;
  collections: CollectionTransfer[];
  copied: number;
  duration_ms: number;
}

/** A run's record in the target's `_transfers`. */
interface RunRecord extends Doc {
  source: string;
  state: 'running' | 'done';
  started_at: string;
  finished_at: string | null;
  collections: string[];
}

/** A collection's checkpoint in the target's `_transfers`. */
interface Checkpoint extends Doc {
  run: string;
  collection: string;
  last_id: string | null;
  copied: number;
  target_before: number;
  done: boolean;
}

/** The key of a source's checkpoints: a hash of what identifies it. */
export function transferKey(sourceId: string): string {
  return `transfer_${createHash('sha256').update(sourceId).digest('hex').slice(0, 24)}`;
}

/** Stores that can be asked to put pending writes on disk (the JSONL engine with fsync `batch`). */
function flusher(store: Store): (() => Promise<void>) | null {
  const flush = (store as { flush?: unknown }).flush;
  return typeof flush === 'function' ? () => (flush as () => Promise<void>).call(store) : null;
}

/**
 * Makes everything written so far durable before the transfer reports success: `flush()` where
 * the store has it, and a full WAL checkpoint on SQLite opened with synchronous=NORMAL (whose
 * commits stay in order, so checkpoints never overtake documents, but are not each fsynced).
 */
async function makeDurable(store: Store): Promise<void> {
  const flush = flusher(store);
  if (flush) return flush();
  const database = (store as { database?: { exec?: unknown } }).database;
  if (store.capabilities.durable && database && typeof database.exec === 'function') {
    try {
      (database.exec as (sql: string) => void).call(database, 'PRAGMA wal_checkpoint(FULL)');
    } catch (error) {
      throw new StorageError('UNAVAILABLE', `cannot make the copy durable: ${(error as Error).message}`, { cause: error });
    }
  }
}

/**
 * Copies the collections; returns what it did per collection. Throws StorageError (INVALID for
 * bad options or an unknown collection, and whatever the engines throw, with the collection
 * and id named), or the signal's reason when aborted. Never prompts or exits.
 */
export async function transfer(options: TransferOptions): Promise<TransferSummary> {
  const { from, to } = options;
  if (from === to) throw new StorageError('INVALID', 'the source and the target are the same store');
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new StorageError('INVALID', 'batchSize must be an integer from 1 to 10000', { field: 'batchSize' });
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new StorageError('INVALID', 'concurrency must be an integer from 1 to 256', { field: 'concurrency' });
  const started = performance.now();
  const source = options.sourceId ?? `${from.engine}:${from.location}`;
  const target = `${to.engine}:${to.location}`;
  if (from.engine !== 'memory' && `${from.engine}:${from.location}` === target) throw new StorageError('INVALID', `the source and the target are the same store (${target})`);
  const present = new Set(await from.listCollections());
  let names: string[];
  if (options.collections) {
    names = assertCollectionNames(options.collections);
    const absent = names.filter((n) => !present.has(n));
    if (absent.length > 0) throw new StorageError('INVALID', `the source ${source} has no collection ${absent.join(', ')}`, { field: 'collections' });
  } else {
    names = defaultCollections(present);
  }

  const key = transferKey(source);
  const checkpoints = await to.collection<Doc>(TRANSFERS);
  const previous = (await checkpoints.get({ id: key })) as RunRecord | null;
  const resumed = previous?.state === 'running' && !options.restart;
  const flush = flusher(to);
  const run: RunRecord = {
    id: key,
    source,
    state: 'running',
    started_at: resumed ? previous.started_at : new Date().toISOString(),
    finished_at: null,
    collections: names,
    version: 0,
    created_at: previous?.created_at ?? new Date().toISOString(),
    updated_at: new Date().toISOString(),
  };
  await checkpoints.upsert({ doc: withoutMeta(run) });

  const results: CollectionTransfer[] = [];
  for (const [i, name] of names.entries()) {
    options.signal?.throwIfAborted();
    const checkpointId = `${key}:${name}`;
    const saved = resumed ? ((await checkpoints.get({ id: checkpointId })) as Checkpoint | null) : null;
    results.push(
      await copyCollection({
        name,
        position: i + 1,
        of: names.length,
        from,
        to,
        batchSize,
        concurrency,
        saved: saved?.run === key ? saved : null,
        save: async (state) => {
          if (flush) await flush(); // the documents reach the disk before the checkpoint that covers them
          await checkpoints.upsert({ doc: { id: checkpointId, run: key, collection: name, ...state } });
        },
        onProgress: options.onProgress,
        signal: options.signal,
      }),
    );
  }
  await checkpoints.upsert({ doc: withoutMeta({ ...run, state: 'done', finished_at: new Date().toISOString() }) });
  await makeDurable(to);
  return {
    source,
    target,
    resumed,
    collections: results,
    copied: results.reduce((n, r) => n + r.copied, 0),
    duration_ms: Math.round(performance.now() - started),
  };
}

function withoutMeta<T extends Doc>(doc: T): Omit<T, 'version' | 'updated_at'> {
  const { version: _version, updated_at: _updated, ...rest } = doc;
  return rest;
}

async function copyCollection(args: {
  name: string;
  position: number;
  of: number;
  from: Store;
  to: Store;
  batchSize: number;
  concurrency: number;
  saved: Checkpoint | null;
  save: (state: Pick<Checkpoint, 'last_id' | 'copied' | 'target_before' | 'done'>) => Promise<void>;
  onProgress: TransferOptions['onProgress'];
  signal: AbortSignal | undefined;
}): Promise<CollectionTransfer> {
  const { name, saved } = args;
  const started = performance.now();
  const source = await args.from.collection<Doc>(readSpec(name));
  const target = await args.to.collection<Doc>(targetSpec(name));
  const total = await source.count();
  const targetBefore = saved ? saved.target_before : await target.count();
  const earlier = saved?.copied ?? 0;
  let copied = 0;
  let lastId = saved?.last_id ?? null;
  const report = (finished: boolean): void => {
    if (!args.onProgress) return;
    const elapsed = performance.now() - started;
    const rate = elapsed > 0 ? (copied * 1000) / elapsed : 0;
    const done = Math.min(total, earlier + copied);
    args.onProgress({
      collection: name,
      position: args.position,
      of: args.of,
      copied,
      done: finished ? Math.max(done, total) : done,
      total,
      elapsed_ms: Math.round(elapsed),
      docs_per_s: Math.round(rate),
      eta_s: finished ? 0 : rate > 0 ? Math.round((total - done) / rate) : null,
      finished,
    });
  };
  if (saved?.done) {
    report(true);
    return { collection: name, copied: 0, skipped: total, target_before: targetBefore, resumed_after: saved.last_id, duration_ms: Math.round(performance.now() - started) };
  }
  if (!saved) await args.save({ last_id: null, copied: 0, target_before: targetBefore, done: false });
  for await (const batch of source.scan({ after: lastId ?? undefined, batchSize: args.batchSize })) {
    args.signal?.throwIfAborted();
    await writeBatch(target, batch, args.concurrency, name);
    copied += batch.length;
    lastId = batch.at(-1)!.id;
    await args.save({ last_id: lastId, copied: earlier + copied, target_before: targetBefore, done: false });
    report(false);
  }
  await args.save({ last_id: lastId, copied: earlier + copied, target_before: targetBefore, done: true });
  report(true);
  return {
    collection: name,
    copied,
    skipped: Math.max(0, total - copied),
    target_before: targetBefore,
    resumed_after: saved?.last_id ?? null,
    duration_ms: Math.round(performance.now() - started),
  };
}

/** Ids looked up per query when a batch checks what the target already has. */
const LOOKUP_CHUNK = 1000;

/**
 * Writes one batch to the target with as few round trips as it can. First, optimistically, one
 * `insertMany({verbatim: true})`: into a fresh target that is the whole job. When it collides
 * (the target has some of these documents: a resumed or repeated run, or a write landed
 * meanwhile), one query finds which documents the target has; those it lacks are inserted in
 * one `insertMany`, those it has with different content are upserted verbatim one by one, and
 * identical ones are left alone. Every step is idempotent. Throws StorageError naming the
 * collection (and the id, for a document that cannot be written).
 */
async function writeBatch(target: Collection<Doc>, docs: Doc[], concurrency: number, name: string): Promise<void> {
  if (docs.length === 0) return;
  const failed = (error: unknown): StorageError =>
    new StorageError(isStorageError(error) ? error.code : 'INTERNAL', `${name}: ${(error as Error).message}`, { cause: error, field: isStorageError(error) ? error.field : undefined });
  try {
    await target.insertMany({ docs, verbatim: true });
    return;
  } catch (error) {
    if (!isStorageError(error, 'DUPLICATE')) throw failed(error);
  }
  const existing = new Map<string, Doc>();
  for (let i = 0; i < docs.length; i += LOOKUP_CHUNK) {
    const ids = docs.slice(i, i + LOOKUP_CHUNK).map((d) => d.id);
    let after: string | null = null;
    do {
      const page: { items: Doc[]; next: string | null } = await target.find({ where: isIn('id', ids), limit: 1000, after });
      for (const doc of page.items) existing.set(doc.id, doc);
      after = page.next;
    } while (after);
  }
  const missing = docs.filter((d) => !existing.has(d.id));
  const changed = docs.filter((d) => {
    const there = existing.get(d.id);
    return there !== undefined && canonicalJson(there) !== canonicalJson(d);
  });
  if (missing.length > 0) {
    try {
      await target.insertMany({ docs: missing, verbatim: true });
    } catch (error) {
      if (!isStorageError(error, 'DUPLICATE')) throw failed(error);
      changed.push(...missing); // a unique value held by another document: upserted one by one, which names it
    }
  }
  await upsertAll(target, changed, concurrency, name);
}

/** Upserts every document verbatim, `concurrency` at a time; an error names the collection and id. */
async function upsertAll(target: { upsert(args: { doc: Doc; verbatim?: boolean }): Promise<Doc> }, docs: Doc[], concurrency: number, name: string): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < docs.length) {
      const doc = docs[next++]!;
      try {
        await target.upsert({ doc, verbatim: true });
      } catch (error) {
        failure ??= isStorageError(error)
          ? new StorageError(error.code, `${name}/${doc.id}: ${error.message}`, { cause: error, field: error.field })
          : new StorageError('INTERNAL', `${name}/${doc.id}: ${(error as Error).message}`, { cause: error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, docs.length) }, worker));
  if (failure !== null) throw failure;
}
