/**
 * Mirror targets, named by store URL (`jsonl:<dir>`, `sqlite:<file>`, `mongodb://…/<db>`; see
 * `../store-url.ts`). Mirrors are opened for bulk, idempotent catch-up: the SQLite file with
 * synchronous=NORMAL and the JSONL folder with batched fsyncs (unless its URL names a policy,
 * `jsonl:<dir>?fsync=always|batch|never`), each made durable by `flushTarget` before the
 * mirror's cursor moves past what was written (with `never`, left to the OS: it survives a
 * process crash, not a power loss).
 */
import { createHash } from 'node:crypto';
import { StorageError, type Store } from '../contract.ts';
import { describeStoreUrl, openStoreUrl, parseStoreUrl, type StoreUrl } from '../store-url.ts';

/** A parsed mirror URL. `display` never holds credentials. */
export interface TargetUrl {
  kind: 'jsonl' | 'sqlite' | 'mongodb';
  /** The URL as given (may hold credentials): what is opened. */
  raw: string;
  /** `jsonl:/abs/dir`, `sqlite:/abs/file`, `mongodb://host:port/db`. */
  display: string;
  /** Folder that relative paths are taken from. */
  cwd: string;
}

/** How long a mirror waits for an unreachable MongoDB server before reporting it down. */
const MONGO_MIRROR_SELECTION_TIMEOUT_MS = 5_000;

/** Parses a mirror URL; relative paths are taken from `cwd`. Throws StorageError INVALID (never quoting the URL, which may hold a password). */
export function parseTargetUrl(url: string, cwd = process.cwd()): TargetUrl {
  const parsed: StoreUrl = parseStoreUrl(url);
  if (parsed.kind === 'memory') throw new StorageError('INVALID', 'memory: cannot be a mirror (it is gone when Otto stops); use jsonl:<dir>, sqlite:<file> or mongodb://host/<db>', { field: 'url' });
  return { kind: parsed.kind, raw: url.trim(), display: describeStoreUrl(parsed, cwd), cwd };
}

/** The id of a mirror's cursor in `_mirrors`: a hash of its URL without credentials. */
export function mirrorId(display: string): string {
  return `m_${createHash('sha256').update(display).digest('hex').slice(0, 16)}`;
}

/**
 * Opens the store a mirror URL names (creating a missing folder or file); a JSONL folder uses
 * the URL's `?fsync=` policy, `batch` when it names none. Throws StorageError (UNAVAILABLE when unreachable).
 */
export async function openTarget(target: TargetUrl): Promise<Store> {
  let url = target.raw;
  if (target.kind === 'mongodb' && !/[?&]serverselectiontimeoutms=/i.test(url)) {
    url = `${url}${url.includes('?') ? '&' : '?'}serverSelectionTimeoutMS=${MONGO_MIRROR_SELECTION_TIMEOUT_MS}`;
  }
  return openStoreUrl(url, { cwd: target.cwd, fsync: 'batch', sqliteSynchronous: 'NORMAL' });
}

/**
 * Makes everything written to a mirror so far durable (JSONL fsync, SQLite WAL checkpoint);
 * a JSONL folder opened with `fsync=never` is left to the OS. Throws StorageError.
 */
export async function flushTarget(store: Store): Promise<void> {
  const s = store as Store & { flush?: () => Promise<void>; fsync?: string; database?: { exec(sql: string): void } };
  if (typeof s.flush === 'function') {
    if (s.fsync !== 'never') await s.flush();
    return;
  }
  if (s.database && typeof s.database.exec === 'function' && s.capabilities.durable) {
    try {
      // synchronous=NORMAL commits are not fsynced; a checkpoint syncs the WAL, copies it and syncs the file.
      s.database.exec('PRAGMA wal_checkpoint(FULL)');
    } catch (error) {
      throw new StorageError('UNAVAILABLE', `cannot make the SQLite mirror durable: ${(error as Error).message}`, { cause: error });
    }
  }
}
