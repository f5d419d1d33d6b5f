/**
 * Compares two stores collection by collection: counts, a content checksum per side, and the
 * ids that are missing on one side or different. Both sides are streamed in id order and
 * merge-joined, so memory use does not grow with the collections. Read-only on both stores.
 */
import { createHash } from 'node:crypto';
import { StorageError, type Doc, type Store } from '../contract.ts';
import { compareIds } from '../memory/memory-store.ts';
import { assertCollectionNames, defaultCollections, readSpec } from './collections.ts';

export interface VerifyOptions {
  a: Store;
  b: Store;
  /** Collections to compare; default: those a transfer copies, found on either side. */
  collections?: string[];
  /** Keep longer lists of ids (up to 1000 per list instead of 20). */
  verbose?: boolean;
  /** Ids kept per list; overrides `verbose`. */
  limit?: number;
  /** Documents per scan batch; default 500. */
  batchSize?: number;
  signal?: AbortSignal;
  /** Called after each collection. */
  onCollection?: (result: CollectionComparison) => void;
}

export interface CollectionComparison {
  collection: string;
  count_a: number;
  count_b: number;
  /** sha256 (hex) over `id NUL canonical-JSON LF` of every document, in id order. Equal content gives equal checksums on any engine. */
  checksum_a: string;
  checksum_b: string;
  equal: boolean;
  /** Ids (capped) present in a and not in b, in b and not in a, and present in both with different content. */
  missing_in_b: string[];
  missing_in_a: string[];
  different: string[];
  /** Full counts of those lists (the lists themselves are capped). */
  missing_in_b_count: number;
  missing_in_a_count: number;
  different_count: number;
}

export interface VerifyReport {
  a: string;
  b: string;
  equal: boolean;
  collections: CollectionComparison[];
}

/**
 * JSON with object keys sorted (recursively) and no whitespace: the same document gives the
 * same text whatever order an engine returns its fields in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
}

/** Compares the stores; throws StorageError when one fails (INVALID for a bad collection name). Never writes. */
export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  const { a, b } = options;
  const limit = options.limit ?? (options.verbose ? 1000 : 20);
  const batchSize = options.batchSize ?? 500;
  const [listA, listB] = await Promise.all([a.listCollections(), b.listCollections()]);
  const inA = new Set(listA);
  const inB = new Set(listB);
  const names = options.collections ? assertCollectionNames(options.collections) : defaultCollections(new Set([...inA, ...inB]));
  const collections: CollectionComparison[] = [];
  for (const name of names) {
    options.signal?.throwIfAborted();
    const result = await compareCollection({
      name,
      a: inA.has(name) ? await a.collection<Doc>(readSpec(name)) : null,
      b: inB.has(name) ? await b.collection<Doc>(readSpec(name)) : null,
      limit,
      batchSize,
      signal: options.signal,
    });
    options.onCollection?.(result);
    collections.push(result);
  }
  return {
    a: `${a.engine}:${a.location}`,
    b: `${b.engine}:${b.location}`,
    equal: collections.every((c) => c.equal),
    collections,
  };
}

interface Scannable {
  scan(args?: { after?: string; batchSize?: number }): AsyncIterable<Doc[]>;
}

/** One side, document by document, with its running count and checksum; checks the id order. */
class Side {
  readonly hash = createHash('sha256');
  count = 0;
  current: { id: string; json: string } | null = null;
  private readonly batches: AsyncIterator<Doc[]> | null;
  private batch: Doc[] = [];
  private index = 0;
  private readonly label: string;

  constructor(collection: Scannable | null, batchSize: number, label: string) {
    this.batches = collection ? collection.scan({ batchSize })[Symbol.asyncIterator]() : null;
    this.label = label;
  }

  /** Moves to the next document (null at the end), adding it to the count and checksum. */
  async advance(): Promise<void> {
    const previous = this.current?.id;
    if (this.index >= this.batch.length) {
      const next = this.batches ? await this.batches.next() : { done: true as const, value: undefined };
      if (next.done) {
        this.current = null;
        return;
      }
      this.batch = next.value;
      this.index = 0;
      if (this.batch.length === 0) return this.advance();
    }
    const doc = this.batch[this.index++]!;
    const json = canonicalJson(doc);
    if (previous !== undefined && compareIds(previous, doc.id) >= 0) {
      throw new StorageError('INTERNAL', `${this.label}: scan returned ${JSON.stringify(doc.id)} after ${JSON.stringify(previous)}, out of id order; cannot compare`);
    }
    this.current = { id: doc.id, json };
    this.count++;
    this.hash.update(doc.id).update('\u0000').update(json).update('\n');
  }

  async close(): Promise<void> {
    await this.batches?.return?.();
  }
}

async function compareCollection(args: { name: string; a: Scannable | null; b: Scannable | null; limit: number; batchSize: number; signal: AbortSignal | undefined }): Promise<CollectionComparison> {
  const a = new Side(args.a, args.batchSize, `${args.name} on a`);
  const b = new Side(args.b, args.batchSize, `${args.name} on b`);
  const missingInB: string[] = [];
  const missingInA: string[] = [];
  const different: string[] = [];
  let missingInBCount = 0;
  let missingInACount = 0;
  let differentCount = 0;
  try {
    await a.advance();
    await b.advance();
    let steps = 0;
    while (a.current !== null || b.current !== null) {
      if (++steps % 1000 === 0) args.signal?.throwIfAborted();
      const order = a.current === null ? 1 : b.current === null ? -1 : compareIds(a.current.id, b.current.id);
      if (order < 0) {
        if (missingInBCount++ < args.limit) missingInB.push(a.current!.id);
        await a.advance();
      } else if (order > 0) {
        if (missingInACount++ < args.limit) missingInA.push(b.current!.id);
        await b.advance();
      } else {
        if (a.current!.json !== b.current!.json && differentCount++ < args.limit) different.push(a.current!.id);
        await Promise.all([a.advance(), b.advance()]);
      }
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  const checksumA = a.hash.digest('hex');
  const checksumB = b.hash.digest('hex');
  return {
    collection: args.name,
    count_a: a.count,
    count_b: b.count,
    checksum_a: checksumA,
    checksum_b: checksumB,
    equal: a.count === b.count && checksumA === checksumB && missingInBCount === 0 && missingInACount === 0 && differentCount === 0,
    missing_in_b: missingInB,
    missing_in_a: missingInA,
    different,
    missing_in_b_count: missingInBCount,
    missing_in_a_count: missingInACount,
    different_count: differentCount,
  };
}
