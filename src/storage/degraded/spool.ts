/**
 * The spool: where writes go while the primary is unreachable (degraded mode), until they are
 * replayed into it. A folder (`OTTO_SPOOL_DIR`, default `<OTTO_DATA_DIR>/spool`) holding:
 *
 *   spool.jsonl     one JSON line per acknowledged write, in the order they were acknowledged;
 *                   each line is written and fsynced before the write is acknowledged
 *   replayed.json   {"spool": "<id>", "seq": N, "primary": "<host:port/db>"}: every entry up to N
 *                   is in the primary (written to a temp file, fsynced, renamed); the spool
 *                   belongs to that primary while it holds entries
 *   spool.lock      the pid of the process using the folder
 *
 * An entry is `{seq, at, write, results}`: `write` says what to do to the primary, `results`
 * what the write did as the process saw it (the documents it acknowledged), so the pending
 * entries rebuild the overlay reads are served with after a restart. Once every entry is
 * replayed the file is emptied; sequence numbers keep counting from the cursor.
 *
 * A last line cut short by a crash was never acknowledged (the fsync comes first): it is
 * dropped when the folder is opened. A bad line anywhere else is refused, naming the line.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StorageError, type CollectionSpec, type Doc } from '../contract.ts';
import { lockHolder, releaseLock, takeLock, writeFileAtomically } from '../files.ts';

/** One write to apply to the primary, as the spool keeps it. */
export type SpooledWrite =
  | { op: 'insert'; spec: CollectionSpec; docs: Doc[]; verbatim?: boolean }
  | { op: 'insert_numbered'; spec: CollectionSpec; docs: Doc[]; field: string; counter: { collection: string; id: string; field: string } }
  | { op: 'update'; spec: CollectionSpec; id: string; patch: Record<string, unknown>; base_version: number }
  | { op: 'upsert'; spec: CollectionSpec; doc: Doc; verbatim: boolean; base_version: number | null }
  | { op: 'delete'; spec: CollectionSpec; targets: Array<{ id: string; base_version: number }> }
  | { op: 'increment'; spec: CollectionSpec; id: string; field: string; by: number };

/** A document as a spooled write left it (null: deleted). */
export interface SpoolResult {
  collection: string;
  id: string;
  doc: Doc | null;
}

/** One line of `spool.jsonl`. */
export interface SpoolEntry {
  seq: number;
  /** When the write was acknowledged (ISO-8601). */
  at: string;
  write: SpooledWrite;
  results: SpoolResult[];
}

/** What a spool folder holds, read without opening it for writing (`otto doctor`). */
export interface SpoolSummary {
  dir: string;
  /** Entries not yet replayed into the primary. */
  backlog: number;
  /** When the oldest of them was acknowledged, or null. */
  oldest_at: string | null;
  /** The pid of the live process using the folder, or null. */
  locked_by: number | null;
}

const FILE = 'spool.jsonl';
const CURSOR = 'replayed.json';
const LOCK = 'spool.lock';

/** A spool folder opened for writing by this process. */
export class Spool {
  readonly dir: string;
  /** A random id naming this folder's entries (conflict ids are made from it). */
  readonly id: string;
  /** The location of the primary the entries are for. */
  private primary: string | undefined;
  private fd: number;
  private nextSeq: number;
  private replayedSeq: number;
  private readonly entries: SpoolEntry[];
  private closed = false;

  private constructor(dir: string, id: string, fd: number, replayedSeq: number, entries: SpoolEntry[], lastSeq: number) {
    this.dir = dir;
    this.id = id;
    this.fd = fd;
    this.replayedSeq = replayedSeq;
    this.entries = entries;
    this.nextSeq = Math.max(lastSeq, replayedSeq) + 1;
  }

  /**
   * Opens (creating when missing) the spool folder, takes its lock, drops a torn last line and
   * loads the entries not yet replayed. `primary` names the store the entries are for (its
   * location): a spool holding entries for another primary is refused, so they are never replayed
   * into the wrong database. Throws StorageError UNAVAILABLE when the folder cannot be used or
   * another live process holds it, INVALID when a line other than the last is corrupt or the
   * entries belong to another primary.
   */
  static open(args: { dir: string; primary?: string }): Spool {
    const dir = resolve(args.dir);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new StorageError('UNAVAILABLE', `cannot create the spool folder ${dir}: ${(error as Error).message}`, { cause: error });
    }
    takeSpoolLock(dir);
    try {
      const cursor = readCursor(dir);
      const path = join(dir, FILE);
      const fd = openSync(path, 'a+');
      const { entries, validBytes, lastSeq } = parseFile(path);
      if (fstatSync(fd).size > validBytes) {
        ftruncateSync(fd, validBytes);
        fsyncSync(fd);
      }
      const id = cursor?.spool ?? randomBytes(6).toString('hex');
      const replayed = cursor?.seq ?? 0;
      const pending = entries.filter((e) => e.seq > replayed);
      if (pending.length > 0 && args.primary !== undefined && cursor?.primary !== undefined && cursor.primary !== args.primary) {
        closeSync(fd);
        throw new StorageError(
          'INVALID',
          `the spool in ${dir} holds ${pending.length} write(s) for the primary ${cursor.primary}, not ${args.primary}: start Otto on that primary once to replay them, or move the folder aside (or set OTTO_SPOOL_DIR)`,
          { field: 'OTTO_SPOOL_DIR' },
        );
      }
      if (!cursor || (args.primary !== undefined && cursor.primary !== args.primary)) writeCursor(dir, { spool: id, seq: replayed, primary: args.primary ?? cursor?.primary });
      const spool = new Spool(dir, id, fd, replayed, pending, lastSeq);
      spool.primary = args.primary ?? cursor?.primary;
      return spool;
    } catch (error) {
      releaseLock(join(dir, LOCK));
      if (error instanceof StorageError) throw error;
      throw new StorageError('UNAVAILABLE', `cannot open the spool in ${dir}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** How many acknowledged writes are not yet in the primary. */
  get backlog(): number {
    return this.entries.length;
  }

  /** The entries not yet replayed, oldest first (a copy of the list; do not change the entries). */
  pending(): SpoolEntry[] {
    return [...this.entries];
  }

  /**
   * Appends one entry and fsyncs it: when this returns, the write survives a crash or power
   * loss. Returns the entry. Throws StorageError UNAVAILABLE when the disk refuses it (nothing
   * is acknowledged then; a partly written line is cut off again).
   */
  append(args: { write: SpooledWrite; results: SpoolResult[] }): SpoolEntry {
    this.assertOpen();
    const entry: SpoolEntry = { seq: this.nextSeq, at: new Date().toISOString(), write: args.write, results: args.results };
    const line = `${JSON.stringify(entry)}\n`;
    const size = fstatSync(this.fd).size;
    try {
      writeSync(this.fd, line);
      fsyncSync(this.fd);
    } catch (error) {
      try {
        ftruncateSync(this.fd, size);
      } catch {
        // the torn line is dropped when the spool is opened next
      }
      throw new StorageError('UNAVAILABLE', `cannot write to the spool in ${this.dir}: ${(error as Error).message}`, { cause: error });
    }
    this.nextSeq++;
    this.entries.push(entry);
    return entry;
  }

  /**
   * Records durably that every entry up to `seq` is in the primary, and drops them. When none
   * is left the file is emptied. Throws StorageError UNAVAILABLE on I/O errors.
   */
  markReplayed(args: { seq: number }): void {
    this.assertOpen();
    try {
      writeCursor(this.dir, { spool: this.id, seq: args.seq, primary: this.primary });
      this.replayedSeq = Math.max(this.replayedSeq, args.seq);
      while (this.entries.length > 0 && this.entries[0]!.seq <= args.seq) this.entries.shift();
      if (this.entries.length === 0) {
        ftruncateSync(this.fd, 0);
        fsyncSync(this.fd);
      }
    } catch (error) {
      throw new StorageError('UNAVAILABLE', `cannot record replay progress in ${this.dir}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Closes the file and releases the lock. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    releaseLock(join(this.dir, LOCK));
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageError('UNAVAILABLE', 'the spool is closed');
  }
}

/**
 * Reads a spool folder without opening it for writing: its backlog, oldest entry and lock
 * holder. A folder that does not exist has no backlog. Throws StorageError INVALID for a
 * corrupt file.
 */
export function readSpoolSummary(args: { dir: string }): SpoolSummary {
  const dir = resolve(args.dir);
  const path = join(dir, FILE);
  if (!existsSync(path)) return { dir, backlog: 0, oldest_at: null, locked_by: lockHolder(join(dir, LOCK)) };
  const replayed = readCursor(dir)?.seq ?? 0;
  const pending = parseFile(path).entries.filter((e) => e.seq > replayed);
  return { dir, backlog: pending.length, oldest_at: pending[0]?.at ?? null, locked_by: lockHolder(join(dir, LOCK)) };
}

function parseFile(path: string): { entries: SpoolEntry[]; validBytes: number; lastSeq: number } {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const entries: SpoolEntry[] = [];
  let offset = 0;
  let lastSeq = 0;
  let line = 0;
  while (offset < text.length) {
    const end = text.indexOf('\n', offset);
    line++;
    if (end < 0) break; // a torn last line: never acknowledged
    const raw = text.slice(offset, end);
    let entry: SpoolEntry;
    try {
      entry = JSON.parse(raw) as SpoolEntry;
      if (!Number.isInteger(entry.seq) || typeof entry.write?.op !== 'string' || !Array.isArray(entry.results)) throw new Error('not a spool entry');
    } catch (error) {
      if (text.indexOf('\n', end + 1) < 0 && end + 1 >= text.length) break; // torn before its newline was synced: treat as the last line
      throw new StorageError('INVALID', `${path} line ${line} is corrupt (${(error as Error).message}); move the file aside and report it`, { cause: error });
    }
    entries.push(entry);
    lastSeq = Math.max(lastSeq, entry.seq);
    offset = end + 1;
  }
  return { entries, validBytes: Buffer.byteLength(text.slice(0, offset)), lastSeq };
}

function readCursor(dir: string): { spool: string; seq: number; primary?: string } | null {
  const path = join(dir, CURSOR);
  if (!existsSync(path)) return null;
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as { spool?: unknown; seq?: unknown; primary?: unknown };
    if (typeof value.spool !== 'string' || !Number.isInteger(value.seq)) throw new Error('missing fields');
    return { spool: value.spool, seq: value.seq as number, ...(typeof value.primary === 'string' ? { primary: value.primary } : {}) };
  } catch (error) {
    throw new StorageError('INVALID', `${path} is corrupt (${(error as Error).message})`, { cause: error });
  }
}

function writeCursor(dir: string, value: { spool: string; seq: number; primary?: string }): void {
  writeFileAtomically({ path: join(dir, CURSOR), text: JSON.stringify(value), sync: true });
}

function takeSpoolLock(dir: string): void {
  takeLock({
    path: join(dir, LOCK),
    // One process holds a spool at a time; a lock with this process's own pid is a stale one.
    ownIsStale: true,
    inUse: (pid) => `the spool in ${dir} is in use by process ${pid}; give each Otto process its own OTTO_SPOOL_DIR`,
  });
}
