/**
 * The JSONL engine: a folder of append-only JSON-lines files, one per collection, folded into
 * memory when the store opens. It is also Otto's backup format (`otto export --to jsonl:<dir>`,
 * `otto import --from jsonl:<dir>`), so anything that can write two kinds of lines can feed Otto.
 *
 * Format, version 1. A folder `<dir>` holds:
 *
 *   <collection>.jsonl            the tail: one line per committed write, in commit order
 *   <collection>.snapshot.jsonl   optional: the collection as of its last compaction, one put per document, by id
 *   otto-jsonl.json               optional manifest: {"format":"otto-jsonl","version":1,"collections":{"<name>":<CollectionSpec>}}
 *   otto-jsonl.lock               exists while a process has the folder open for writing (holds its pid)
 *
 * Every line is one JSON object (UTF-8) ending in "\n", in one of two shapes:
 *
 *   {"op":"put","id":"bot_01…","doc":{"id":"bot_01…","version":3,"created_at":"…","updated_at":"…",…}}
 *   {"op":"delete","id":"bot_01…","doc":null}
 *
 * A collection's state is its snapshot (if any) with the tail applied line by line: a put stores
 * the whole document (version and timestamps as written), a delete removes it. Applying a line
 * twice changes nothing, so a snapshot followed by a tail that overlaps it gives the same state;
 * that is what makes compaction safe against a crash at any point.
 *
 * A last line that does not parse is a write cut short by a crash (never acknowledged with the
 * default fsync policy): it is ignored, reported in `warnings`, and cut off before the next
 * append. A bad line anywhere else is corruption, and the folder is refused, naming file and line.
 * The manifest only carries index definitions; without it the collections are found from the
 * file names, and the indexes come back when Otto opens its collections (migrations do).
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import {
  StorageError,
  type Capabilities,
  type Collection,
  type CollectionSpec,
  type Doc,
  type StoredMeta,
  type Store,
  type StoreHealth,
  type WriteHook,
} from '../contract.ts';
import { MemoryCollection, type MemoryCollectionHost, type PersistedWrite } from '../memory/memory-store.ts';
import { fsyncDirectory, releaseLock, takeLock, writeFileAtomically } from '../files.ts';
import { assertSpec, indexName } from '../validate.ts';
import { WriteHooks } from '../write-hooks.ts';

/** When appends reach the disk: after each write (default), every ~100 ms, or when the OS decides. */
export type FsyncPolicy = 'always' | 'batch' | 'never';

export interface JsonlStoreOptions {
  /** The folder; created (with its parents) when missing unless `create` is false. */
  dir: string;
  /**
   * `always` (default): each write is fsynced before it is acknowledged, so it survives power
   * loss. `batch`: fsynced every ~100 ms (a power loss may drop the last 100 ms; a process crash
   * loses nothing). `never`: left to the OS (survives process crashes, not power loss).
   */
  fsync?: FsyncPolicy;
  /** Open without taking the lock or changing any file; every write throws UNSUPPORTED. */
  readOnly?: boolean;
  /** Create the folder when missing; default true, false when `readOnly`. */
  create?: boolean;
}

/** What one compaction did. */
export interface CompactResult {
  collection: string;
  documents: number;
  /** Size of the new snapshot file. */
  bytes: number;
  /** Size of the tail before it was emptied. */
  tailBytes: number;
}

/** The JSONL store's extra surface. */
export interface JsonlStore extends Store {
  readonly dir: string;
  readonly fsync: FsyncPolicy;
  readonly readOnly: boolean;
  /** Problems found while loading (torn last lines, ignored files) and later fsync failures, one line each. */
  readonly warnings: string[];
  /**
   * Folds a collection (all when omitted) into `<collection>.snapshot.jsonl` (written to a temp
   * file, fsynced, renamed over the old one) and empties its tail. Safe against a crash at any
   * point: reopening gives the same state. Runs synchronously (writes wait for it).
   * Throws NOT_FOUND for an unknown collection, UNSUPPORTED when read-only, UNAVAILABLE on I/O errors.
   */
  compact(args?: { collection?: string }): Promise<CompactResult[]>;
  /** Fsyncs every file with writes not yet on disk (what the `batch` timer does), whatever the policy. */
  flush(): Promise<void>;
}

/** The version of the folder format this Otto writes and reads. */
export const JSONL_FORMAT_VERSION = 1;
const MANIFEST = 'otto-jsonl.json';
const LOCK = 'otto-jsonl.lock';
const BATCH_INTERVAL_MS = 100;
const READ_CHUNK = 1 << 20;
const COLLECTION_FILE = /^(_?[a-z][a-z0-9_]{0,62})\.jsonl$/;
const SNAPSHOT_FILE = /^(_?[a-z][a-z0-9_]{0,62})\.snapshot\.jsonl$/;

/**
 * Opens (creating when missing) a JSONL folder store and folds every collection's snapshot and
 * tail into memory. Throws INVALID for bad options or a corrupt file (naming file and line),
 * UNSUPPORTED for a folder written by a newer Otto, UNAVAILABLE when the folder cannot be used
 * (missing with `create: false`, not a folder, or open for writing by another live process).
 */
export async function createJsonlStore(options: JsonlStoreOptions): Promise<JsonlStore> {
  if (!options || typeof options.dir !== 'string' || options.dir.trim() === '') {
    throw new StorageError('INVALID', 'the JSONL store needs a folder (dir)', { field: 'dir' });
  }
  const fsync = options.fsync ?? 'always';
  if (fsync !== 'always' && fsync !== 'batch' && fsync !== 'never') {
    throw new StorageError('INVALID', `fsync must be always, batch or never, got ${JSON.stringify(fsync)}`, { field: 'fsync' });
  }
  const readOnly = options.readOnly === true;
  const dir = resolve(options.dir);
  const create = options.create ?? !readOnly;
  let stat;
  try {
    stat = statSync(dir, { throwIfNoEntry: false });
    if (!stat && create) {
      mkdirSync(dir, { recursive: true });
      stat = statSync(dir);
    }
  } catch (error) {
    throw new StorageError('UNAVAILABLE', `cannot create the JSONL folder ${dir}: ${(error as Error).message}`, { cause: error });
  }
  if (!stat) throw new StorageError('UNAVAILABLE', `there is no JSONL store at ${dir} (the folder does not exist)`);
  if (!stat.isDirectory()) throw new StorageError('UNAVAILABLE', `${dir} is not a folder, so it cannot be a JSONL store`);
  if (!readOnly) {
    takeLock({
      path: join(dir, LOCK),
      inUse: (pid) => `the JSONL store at ${dir} is open for writing by ${pid === process.pid ? 'this process (it is already open)' : `process ${pid}`}; if no Otto process uses it, delete ${join(dir, LOCK)}`,
    });
  }
  const store = new JsonlStoreImpl(dir, fsync, readOnly);
  try {
    store.load();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/** The append state of one collection's tail file. */
interface TailFile {
  path: string;
  fd: number | null;
  /** Bytes in the file as far as this process knows (appends go at the end). */
  size: number;
  /** When a torn last line was found: cut the file to this length before the next append. */
  repairTo: number | null;
  /** The last line is complete but lacks its "\n": add it before the next append. */
  needsNewline: boolean;
  /** Appended since the last fsync. */
  dirty: boolean;
  /** Why this file takes no more writes (an append failed and could not be undone). */
  broken: string | null;
}

class JsonlStoreImpl implements JsonlStore, MemoryCollectionHost {
  readonly engine = 'jsonl';
  readonly location: string;
  readonly capabilities: Capabilities;
  readonly hooks = new WriteHooks();
  readonly warnings: string[] = [];
  readonly dir: string;
  readonly fsync: FsyncPolicy;
  readonly readOnly: boolean;
  private readonly collections = new Map<string, MemoryCollection<Doc>>();
  private readonly specs = new Map<string, CollectionSpec>();
  private readonly tails = new Map<string, TailFile>();
  private timer: NodeJS.Timeout | null = null;
  /** Set when a batch fsync failed: acknowledged writes may not be on disk, so no more are taken. */
  private flushFailure: string | null = null;
  private closed = false;

  constructor(dir: string, fsync: FsyncPolicy, readOnly: boolean) {
    this.dir = dir;
    this.location = dir;
    this.fsync = fsync;
    this.readOnly = readOnly;
    this.capabilities = { transactions: false, changeStreams: false, ttl: false, durable: fsync !== 'never', multiProcess: false };
    if (fsync === 'batch' && !readOnly) {
      this.timer = setInterval(() => this.flushDirty(), BATCH_INTERVAL_MS);
      this.timer.unref();
    }
  }

  // ---- loading ----------------------------------------------------------------------------

  /** Reads the manifest and folds every collection's snapshot and tail into memory. */
  load(): void {
    const manifest = this.readManifest();
    const names = new Set<string>(Object.keys(manifest));
    for (const file of readdirSync(this.dir)) {
      const match = COLLECTION_FILE.exec(file) ?? SNAPSHOT_FILE.exec(file);
      if (match) names.add(match[1]!);
      else if (file.endsWith('.jsonl')) this.warnings.push(`${join(this.dir, file)}: ignored (not <collection>.jsonl with a lowercase snake_case name)`);
      else if (file.endsWith('.tmp') && !this.readOnly) rmSync(join(this.dir, file), { force: true }); // an unfinished compaction or manifest write
    }
    for (const name of [...names].sort()) {
      const given = manifest[name];
      const spec: CollectionSpec = given ? { ...given, name } : { name, schemaVersion: 1, indexes: [] };
      try {
        assertSpec(spec);
      } catch (error) {
        throw new StorageError('INVALID', `${join(this.dir, MANIFEST)}: collection ${name}: ${(error as Error).message}`, { cause: error });
      }
      const collection = new MemoryCollection<Doc>(spec, this);
      this.collections.set(name, collection);
      this.specs.set(name, { name, schemaVersion: spec.schemaVersion, indexes: [...spec.indexes] });
      this.fold(collection, join(this.dir, `${name}.snapshot.jsonl`), false);
      const tail = this.fold(collection, this.tailPath(name), true);
      this.tails.set(name, { path: this.tailPath(name), fd: null, size: tail.size, repairTo: tail.repairTo, needsNewline: tail.needsNewline, dirty: false, broken: null });
    }
  }

  private readManifest(): Record<string, CollectionSpec> {
    const path = join(this.dir, MANIFEST);
    if (!existsSync(path)) return {};
    let parsed: { format?: unknown; version?: unknown; collections?: unknown };
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8')) as typeof parsed;
    } catch (error) {
      throw new StorageError('INVALID', `${path} is not valid JSON (${(error as Error).message}); fix it or delete it (it only holds index definitions)`, { cause: error });
    }
    if (parsed?.format !== 'otto-jsonl' || typeof parsed.version !== 'number' || typeof parsed.collections !== 'object' || parsed.collections === null) {
      throw new StorageError('INVALID', `${path} is not an Otto JSONL manifest; fix it or delete it (it only holds index definitions)`);
    }
    if (parsed.version > JSONL_FORMAT_VERSION) {
      throw new StorageError('UNSUPPORTED', `${this.dir} was written in JSONL format version ${parsed.version} by a newer Otto; this Otto reads version ${JSONL_FORMAT_VERSION}. Upgrade Otto.`);
    }
    return parsed.collections as Record<string, CollectionSpec>;
  }

  /**
   * Applies every line of a file to the collection, streaming it in chunks. Returns the file's
   * size and, for a torn last line, where to cut it. Throws INVALID for a bad line that is not the last.
   */
  private fold(collection: MemoryCollection<Doc>, path: string, isTail: boolean): { size: number; repairTo: number | null; needsNewline: boolean } {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { size: 0, repairTo: null, needsNewline: false };
      throw new StorageError('UNAVAILABLE', `cannot read ${path}: ${(error as Error).message}`, { cause: error });
    }
    let offset = 0;
    let lineNo = 0;
    let lineStart = 0;
    let pending: Buffer[] = [];
    let held: { text: Buffer; lineNo: number; start: number } | null = null;
    const chunk = Buffer.allocUnsafe(READ_CHUNK);
    // A line is applied only once the next one is seen, so that the last line (which may be torn) is judged as such.
    const handle = (line: { text: Buffer; lineNo: number; start: number }, last: boolean, terminated: boolean): { repairTo: number | null; needsNewline: boolean } => {
      const { text } = line;
      if (text.length === 0) return { repairTo: null, needsNewline: false };
      if (text.every((b) => b === 0)) {
        this.warnings.push(`${path}:${line.lineNo}: skipped ${text.length} NUL bytes at offset ${line.start} (left by a crash)`);
        return { repairTo: last && !terminated ? line.start : null, needsNewline: false };
      }
      const problem = this.apply(collection, text);
      if (problem === null) return { repairTo: null, needsNewline: last && !terminated };
      if (last) {
        this.warnings.push(
          `${path}:${line.lineNo}: ignored a torn last line (${text.length} bytes at offset ${line.start}: ${problem}), most likely a write cut short by a crash` +
            (isTail && !this.readOnly ? '; it is cut off before the next write' : ''),
        );
        return { repairTo: line.start, needsNewline: false };
      }
      throw new StorageError('INVALID', `${path}:${line.lineNo}: ${problem}. This is not the last line, so it is not a torn write: the file is damaged; repair or remove that line by hand`);
    };
    try {
      for (;;) {
        const n = readSync(fd, chunk, 0, READ_CHUNK, null);
        if (n === 0) break;
        let from = 0;
        for (;;) {
          const nl = chunk.indexOf(10, from);
          if (nl < 0 || nl >= n) break;
          const piece = chunk.subarray(from, nl);
          const text = pending.length > 0 ? Buffer.concat([...pending, piece]) : Buffer.from(piece);
          pending = [];
          lineNo++;
          if (held) handle(held, false, true);
          held = { text, lineNo, start: lineStart };
          lineStart = offset + nl + 1;
          from = nl + 1;
        }
        if (from < n) pending.push(Buffer.from(chunk.subarray(from, n)));
        offset += n;
      }
    } finally {
      closeSync(fd);
    }
    let result: { repairTo: number | null; needsNewline: boolean } = { repairTo: null, needsNewline: false };
    if (pending.length > 0) {
      if (held) handle(held, false, true);
      result = handle({ text: Buffer.concat(pending), lineNo: lineNo + 1, start: lineStart }, true, false);
    } else if (held) {
      result = handle(held, true, true);
    }
    return { size: offset, ...result };
  }

  /** Applies one line; returns null, or what is wrong with it. */
  private apply(collection: MemoryCollection<Doc>, text: Buffer): string | null {
    let record: { op?: unknown; id?: unknown; doc?: unknown };
    try {
      record = JSON.parse(text.toString('utf8')) as typeof record;
    } catch {
      return 'not valid JSON';
    }
    if (record === null || typeof record !== 'object' || typeof record.id !== 'string' || record.id === '') return 'not a record with a string id';
    if (record.op === 'delete') {
      collection.load(record.id, null);
      return null;
    }
    if (record.op !== 'put') return `unknown op ${JSON.stringify(record.op)} (expected put or delete)`;
    const doc = record.doc as Record<string, unknown> | null;
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'a put without a document';
    if (doc.id !== record.id) return `the document's id ${JSON.stringify(doc.id)} is not the record's id ${JSON.stringify(record.id)}`;
    collection.load(record.id, JSON.stringify(doc));
    return null;
  }

  // ---- writing ----------------------------------------------------------------------------

  private tailPath(name: string): string {
    return join(this.dir, `${name}.jsonl`);
  }

  /** The open tail of a collection, opening (and repairing) it on first use. */
  private openTail(name: string): TailFile {
    let tail = this.tails.get(name);
    if (!tail) {
      tail = { path: this.tailPath(name), fd: null, size: 0, repairTo: null, needsNewline: false, dirty: false, broken: null };
      this.tails.set(name, tail);
    }
    if (tail.fd !== null) return tail;
    try {
      const existed = existsSync(tail.path);
      tail.fd = openSync(tail.path, 'a');
      if (!existed && this.fsync !== 'never') fsyncDirectory(this.dir);
      if (tail.repairTo !== null) {
        ftruncateSync(tail.fd, tail.repairTo);
        tail.repairTo = null;
        if (this.fsync !== 'never') fsyncSync(tail.fd);
      }
      if (tail.needsNewline) {
        writeAll(tail.fd, Buffer.from('\n'));
        tail.needsNewline = false;
      }
      tail.size = fstatSync(tail.fd).size;
    } catch (error) {
      throw new StorageError('UNAVAILABLE', `cannot open ${tail.path} for appending: ${(error as Error).message}`, { cause: error });
    }
    return tail;
  }

  /** The persistence hook of the in-memory collections: appends one line, fsynced per the policy. */
  persist(write: PersistedWrite): void {
    this.assertOpen();
    if (this.readOnly) throw new StorageError('UNSUPPORTED', `the JSONL store at ${this.dir} is open read-only`);
    if (this.flushFailure) throw new StorageError('UNAVAILABLE', `the JSONL store at ${this.dir} takes no more writes: ${this.flushFailure}`);
    const tail = this.openTail(write.collection);
    if (tail.broken) throw new StorageError('UNAVAILABLE', `${tail.path} takes no more writes: ${tail.broken}; reopen the store`);
    const id = JSON.stringify(write.id);
    const line = Buffer.from(write.op === 'put' ? `{"op":"put","id":${id},"doc":${write.json}}\n` : `{"op":"delete","id":${id},"doc":null}\n`);
    const fd = tail.fd!;
    try {
      writeAll(fd, line);
      if (this.fsync === 'always') fsyncSync(fd);
    } catch (error) {
      // Take the partial line back, so the next append does not follow a torn one.
      try {
        ftruncateSync(fd, tail.size);
      } catch (undo) {
        tail.broken = `a failed append could not be undone (${(undo as Error).message})`;
      }
      throw new StorageError('UNAVAILABLE', `cannot append to ${tail.path}: ${(error as Error).message}`, { cause: error });
    }
    tail.size += line.length;
    if (this.fsync !== 'always') tail.dirty = true;
  }

  private flushDirty(): void {
    for (const tail of this.tails.values()) {
      if (!tail.dirty || tail.fd === null) continue;
      try {
        fsyncSync(tail.fd);
        tail.dirty = false;
      } catch (error) {
        const message = `fsync of ${tail.path} failed: ${(error as Error).message}`;
        if (!this.flushFailure) this.warnings.push(message);
        this.flushFailure = message;
      }
    }
  }

  async flush(): Promise<void> {
    this.assertOpen();
    this.flushDirty();
    if (this.flushFailure) throw new StorageError('UNAVAILABLE', this.flushFailure);
  }

  /** Writes the manifest (temp file, fsync, rename). */
  private writeManifest(): void {
    const collections: Record<string, CollectionSpec> = {};
    for (const name of [...this.specs.keys()].sort()) collections[name] = this.specs.get(name)!;
    const text = `${JSON.stringify({ format: 'otto-jsonl', version: JSONL_FORMAT_VERSION, collections }, null, 2)}\n`;
    const path = join(this.dir, MANIFEST);
    try {
      writeFileAtomically({ path, text, sync: this.fsync !== 'never' });
    } catch (error) {
      throw new StorageError('UNAVAILABLE', `cannot write ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  async compact(args: { collection?: string } = {}): Promise<CompactResult[]> {
    this.assertOpen();
    if (this.readOnly) throw new StorageError('UNSUPPORTED', `the JSONL store at ${this.dir} is open read-only`);
    const names = args.collection === undefined ? [...this.collections.keys()].sort() : [args.collection];
    const results: CompactResult[] = [];
    for (const name of names) {
      const collection = this.collections.get(name);
      if (!collection) throw new StorageError('NOT_FOUND', `the JSONL store at ${this.dir} has no collection ${JSON.stringify(name)}`, { field: 'collection' });
      results.push(this.compactOne(name, collection));
    }
    return results;
  }

  /**
   * Crash safety, step by step: until the rename, the old snapshot and the full tail are on
   * disk (the temp file is ignored and removed on open); after the rename and before the tail
   * is emptied, the new snapshot plus the old tail fold to the same state, because every line
   * is a whole-document put or a delete; after that, the new snapshot alone is the state.
   */
  private compactOne(name: string, collection: MemoryCollection<Doc>): CompactResult {
    const path = join(this.dir, `${name}.snapshot.jsonl`);
    const temp = `${path}.tmp`;
    const tail = this.openTail(name);
    let bytes = 0;
    let documents = 0;
    if (tail.size === 0) {
      // Nothing since the last compaction: the snapshot (or its absence) is the state already.
      return { collection: name, documents: collection.size, bytes: existsSync(path) ? statSync(path).size : 0, tailBytes: 0 };
    }
    try {
      if (collection.size === 0) {
        // An empty collection needs no snapshot. Replaying the tail alone also gives an empty
        // collection (every document of an earlier snapshot was deleted in it), so a crash
        // between removing the snapshot and emptying the tail is safe too.
        rmSync(path, { force: true });
        if (this.fsync !== 'never') fsyncDirectory(this.dir);
        const tailBytes = tail.size;
        ftruncateSync(tail.fd!, 0);
        if (this.fsync !== 'never') fsyncSync(tail.fd!);
        tail.size = 0;
        tail.dirty = false;
        return { collection: name, documents: 0, bytes: 0, tailBytes };
      }
      const fd = openSync(temp, 'w');
      try {
        let parts: string[] = [];
        let size = 0;
        for (const [id, json] of collection.entries()) {
          const line = `{"op":"put","id":${JSON.stringify(id)},"doc":${json}}\n`;
          parts.push(line);
          size += line.length;
          documents++;
          if (size >= READ_CHUNK) {
            bytes += writeAll(fd, Buffer.from(parts.join('')));
            parts = [];
            size = 0;
          }
        }
        if (parts.length > 0) bytes += writeAll(fd, Buffer.from(parts.join('')));
        if (this.fsync !== 'never') fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, path);
      if (this.fsync !== 'never') fsyncDirectory(this.dir);
      const tailBytes = tail.size;
      ftruncateSync(tail.fd!, 0);
      if (this.fsync !== 'never') fsyncSync(tail.fd!);
      tail.size = 0;
      tail.dirty = false;
      return { collection: name, documents, bytes, tailBytes };
    } catch (error) {
      rmSync(temp, { force: true });
      throw new StorageError('UNAVAILABLE', `cannot compact ${name} in ${this.dir}: ${(error as Error).message}`, { cause: error });
    }
  }

  // ---- the Store contract -------------------------------------------------------------------

  async collection<T extends StoredMeta = Doc>(spec: CollectionSpec): Promise<Collection<T>> {
    this.assertOpen();
    assertSpec(spec);
    let collection = this.collections.get(spec.name);
    let changed = false;
    if (!collection) {
      collection = new MemoryCollection<Doc>(spec, this);
      this.collections.set(spec.name, collection);
      this.specs.set(spec.name, { name: spec.name, schemaVersion: spec.schemaVersion, indexes: [...spec.indexes] });
      changed = true;
    } else if (collection.addIndexes(spec) || (this.specs.get(spec.name)?.schemaVersion ?? 0) < spec.schemaVersion) {
      const known = this.specs.get(spec.name)!;
      const names = new Set(known.indexes.map(indexName));
      known.indexes.push(...spec.indexes.filter((i) => !names.has(indexName(i))));
      known.schemaVersion = Math.max(known.schemaVersion, spec.schemaVersion);
      changed = true;
    }
    if (changed && !this.readOnly) {
      this.openTail(spec.name);
      this.writeManifest();
    }
    return collection as unknown as Collection<T>;
  }

  async listCollections(): Promise<string[]> {
    this.assertOpen();
    return [...this.collections.keys()].sort();
  }

  async listIndexes(args: { collection: string }): Promise<string[]> {
    this.assertOpen();
    const collection = this.collections.get(args.collection);
    return collection ? ['_id_', ...collection.indexNames()] : [];
  }

  onWrite(hook: WriteHook): () => void {
    return this.hooks.add(hook);
  }

  opened(name: string): MemoryCollection<Doc> | undefined {
    return this.collections.get(name);
  }

  async health(): Promise<StoreHealth> {
    const started = performance.now();
    const base = { engine: this.engine, location: this.location, server_version: `JSONL format ${JSONL_FORMAT_VERSION}` };
    const latency = () => Math.round((performance.now() - started) * 100) / 100;
    if (this.closed) return { ok: false, ...base, latency_ms: 0, error: 'the JSONL store is closed' };
    if (this.flushFailure) return { ok: false, ...base, latency_ms: latency(), error: this.flushFailure };
    try {
      if (!statSync(this.dir).isDirectory()) throw new Error(`${this.dir} is no longer a folder`);
      return { ok: true, ...base, latency_ms: latency() };
    } catch (error) {
      return { ok: false, ...base, latency_ms: latency(), error: (error as Error).message };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.fsync !== 'never') this.flushDirty();
    for (const tail of this.tails.values()) {
      if (tail.fd === null) continue;
      try {
        closeSync(tail.fd);
      } catch {
        // Already closed.
      }
      tail.fd = null;
    }
    if (!this.readOnly) releaseLock(join(this.dir, LOCK));
  }

  assertOpen(): void {
    if (this.closed) throw new StorageError('UNAVAILABLE', `the JSONL store at ${this.dir} is closed`);
  }
}

/** Writes the whole buffer (appends may be split); returns its length. */
function writeAll(fd: number, buffer: Buffer): number {
  let written = 0;
  while (written < buffer.length) written += writeSync(fd, buffer, written, buffer.length - written);
  return buffer.length;
}





