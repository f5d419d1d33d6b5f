import type { Store } from '../contract.ts';
import { TransactionalChangeLog, WriteAheadChangeLog, isTransactionalStore, type ChangeLog, type ChangeLogOptions } from './change-log.ts';
import { withWriteAheadLog } from './write-ahead.ts';

/** A store whose writes are logged, and its log. */
export interface LoggedStore {
  /** Use this store for every write that must be logged (domain code sees the plain contract). */
  store: Store;
  log: ChangeLog;
}

/**
 * Starts logging every write of `store` in its `_changes` collection. On SQLite the log is
 * written inside each write's transaction and `store` itself is returned; on every other
 * engine (MongoDB, memory, JSONL) a wrapper writing a write-ahead record around each write is
 * returned (closing it closes `store`). Throws StorageError when `_changes` cannot be opened.
 */
export async function attachChangeLog(store: Store, options: ChangeLogOptions = {}): Promise<LoggedStore> {
  if (isTransactionalStore(store)) return { store, log: await TransactionalChangeLog.open(store, options) };
  const log = await WriteAheadChangeLog.open(store, options);
  return { store: withWriteAheadLog(store, log), log };
}

/** The store's change log for reading only (CLI tools): its writes are not logged through it. */
export async function openChangeLogReader(store: Store, options: ChangeLogOptions = {}): Promise<ChangeLog> {
  if (isTransactionalStore(store)) return TransactionalChangeLog.open(store, { ...options, write: false });
  return WriteAheadChangeLog.open(store, options);
}
