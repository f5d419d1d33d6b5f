import { StorageError } from '../contract.ts';

// SQLite primary result codes (https://sqlite.org/rescode.html).
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_READONLY = 8;
const SQLITE_IOERR = 10;
const SQLITE_CORRUPT = 11;
const SQLITE_FULL = 13;
const SQLITE_CANTOPEN = 14;
const SQLITE_CONSTRAINT = 19;
const SQLITE_TOOBIG = 18;
const SQLITE_NOTADB = 26;
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;

/**
 * Translates an error thrown by `node:sqlite` into a StorageError (keeping it as `cause`).
 * StorageErrors pass through unchanged.
 */
export function translateSqliteError(error: unknown, context: string): StorageError {
  if (error instanceof StorageError) return error;
  const err = error as { errcode?: number; errstr?: string; message?: string };
  const code = typeof err?.errcode === 'number' ? err.errcode : undefined;
  const detail = err?.message ?? String(error);
  if (code === SQLITE_CONSTRAINT_UNIQUE || code === SQLITE_CONSTRAINT_PRIMARYKEY) {
    const index = /UNIQUE constraint failed: (.*)$/.exec(detail)?.[1];
    const field = index
      ?.split(',')
      .map((c) => c.trim().replace(/^[^.]+\./, '').replace(/^f_/, ''))
      .join(',');
    return new StorageError('DUPLICATE', `a document with the same ${field ?? 'id'} already exists`, { cause: error, field: field ?? 'id' });
  }
  switch (code === undefined ? undefined : code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return new StorageError('UNAVAILABLE', `${context}: the database is locked by another writer (${detail})`, { cause: error });
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return new StorageError('UNAVAILABLE', `${context}: ${detail}`, { cause: error });
    case SQLITE_TOOBIG:
      return new StorageError('INVALID', `${context}: value too large`, { cause: error });
    case SQLITE_CONSTRAINT:
      return new StorageError('INVALID', `${context}: ${detail}`, { cause: error });
    default:
      return new StorageError('INTERNAL', `${context}: ${detail}`, { cause: error });
  }
}
