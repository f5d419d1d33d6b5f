import { StorageError } from '../contract.ts';

// MongoDB server error codes (https://www.mongodb.com/docs/manual/reference/error-codes/).
const DUPLICATE_KEY = new Set([11000, 11001, 12582]);
const TOO_LARGE = new Set([
  10334, // BSONObjectTooLarge
  17419, // resulting document after update is larger than the maximum size
  17420, // document too large for capped collection
  10329, // legacy "object to insert too large"
]);
const UNSUPPORTED = new Set([
  59, // CommandNotFound
  115, // CommandNotSupported
  238, // NotImplemented
]);
const UNAVAILABLE_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  50, // MaxTimeMSExpired
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10058, // LegacyNotPrimary
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);
/** Driver error classes (by `name`, so no class identity across driver copies is needed) meaning "the server cannot be reached now". */
const UNAVAILABLE_NAMES = new Set([
  'MongoServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoPoolClearedError',
  'MongoPoolClosedError',
  'MongoWaitQueueTimeoutError',
  'MongoOperationTimeoutError',
  'MongoTopologyClosedError',
  'MongoClientClosedError',
  'MongoNotConnectedError',
  'MongoServerClosedError',
]);
/**
 * Node's own socket errors, which the driver sometimes passes through unwrapped when the server
 * goes away mid-operation (e.g. "This socket has been ended by the other party", EPIPE).
 */
const NETWORK_ERRNOS = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN', 'ERR_SOCKET_CLOSED', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);
/** Error labels the driver puts on errors a later retry could succeed with. */
const UNAVAILABLE_LABELS = ['RetryableWriteError', 'ResetPool', 'PoolRequestedRetry', 'SystemOverloadedError'];

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  codeName?: unknown;
  keyPattern?: unknown;
  keyValue?: unknown;
  errmsg?: unknown;
  errorResponse?: { code?: unknown; keyPattern?: unknown; keyValue?: unknown; errmsg?: unknown };
  writeErrors?: unknown;
  writeConcernError?: { code?: unknown };
  errorLabels?: unknown;
}

/** What a duplicate-key error names: the index's fields when the server reports them. */
export interface DuplicateInfo {
  /** Otto field names (`_id` reported as `id`), comma-joined; undefined when the server does not say (FerretDB). */
  field: string | undefined;
  /** True when the collision is on the document id itself. */
  onId: boolean | undefined;
}

/**
 * Translates an error thrown by the `mongodb` driver into a StorageError, keeping the
 * original as `cause`. StorageErrors pass through unchanged.
 *
 * - duplicate key (11000/11001, also inside bulk write errors, and FerretDB's SQLite
 *   "UNIQUE constraint failed") → DUPLICATE, naming the field when the server reports it;
 * - server selection, network (including Node's own socket errors: EPIPE, ECONNRESET, …),
 *   pool-cleared, closed-client and "not primary" errors → UNAVAILABLE;
 * - documents over the BSON size limit → INVALID;
 * - commands or options the server does not implement (59, 115, 238) → UNSUPPORTED;
 * - anything else → INTERNAL.
 *
 * `indexFields` maps index names to their Otto fields, to name the field when the server
 * reports only the index name. Messages never include the connection string.
 */
export function translateMongoError(error: unknown, context: string, indexFields?: ReadonlyMap<string, string>): StorageError {
  if (error instanceof StorageError) return error;
  const err = (error ?? {}) as ErrorLike;
  const detail = typeof err.message === 'string' ? err.message : String(error);
  const codes = errorCodes(err);
  const name = typeof err.name === 'string' ? err.name : '';

  if (isDuplicateKeyError(error)) {
    const { field } = duplicateInfo(error, indexFields);
    return new StorageError('DUPLICATE', `${context}: a document with the same ${field ?? 'unique value'} already exists`, {
      cause: error,
      ...(field === undefined ? {} : { field }),
    });
  }
  if (codes.some((c) => TOO_LARGE.has(c)) || isClientSizeError(name, detail)) {
    return new StorageError('INVALID', `${context}: the document is larger than the server accepts (${detail})`, { cause: error });
  }
  if (
    UNAVAILABLE_NAMES.has(name) ||
    codes.some((c) => UNAVAILABLE_CODES.has(c)) ||
    hasLabel(err, UNAVAILABLE_LABELS) ||
    (typeof err.code === 'string' && NETWORK_ERRNOS.has(err.code)) ||
    /\bnot (writable )?primary\b|NotWritablePrimary|node is recovering|socket has been ended by the other party/i.test(detail)
  ) {
    return new StorageError('UNAVAILABLE', `${context}: the MongoDB server is unavailable (${detail})`, { cause: error });
  }
  if (codes.some((c) => UNSUPPORTED.has(c))) {
    return new StorageError('UNSUPPORTED', `${context}: the server does not support this (${detail})`, { cause: error });
  }
  return new StorageError('INTERNAL', `${context}: ${detail}`, { cause: error });
}

/** True when the error (or one of its bulk write errors) is a duplicate-key violation. */
export function isDuplicateKeyError(error: unknown): boolean {
  if (error === null || typeof error !== 'object') return false;
  const err = error as ErrorLike;
  if (errorCodes(err).some((c) => DUPLICATE_KEY.has(c))) return true;
  // FerretDB's SQLite backend reports a unique-index violation during an update as a plain
  // internal error carrying SQLite's message.
  const message = typeof err.message === 'string' ? err.message : '';
  return /UNIQUE constraint failed|E11000 duplicate key/.test(message);
}

/** Which index a duplicate-key error collided on, as far as the server says (keyPattern, keyValue or the index name in the message). */
export function duplicateInfo(error: unknown, indexFields?: ReadonlyMap<string, string>): DuplicateInfo {
  const err = (error ?? {}) as ErrorLike;
  const sources: Array<{ keyPattern?: unknown; keyValue?: unknown; errmsg?: unknown; message?: unknown }> = [err];
  if (err.errorResponse) sources.push(err.errorResponse);
  for (const w of writeErrorList(err)) {
    sources.push(w);
    if (w.err && typeof w.err === 'object') sources.push(w.err as { keyPattern?: unknown });
  }
  for (const s of sources) {
    const pattern = isPlainRecord(s.keyPattern) ? s.keyPattern : isPlainRecord(s.keyValue) ? s.keyValue : undefined;
    if (pattern) {
      const keys = Object.keys(pattern);
      if (keys.length > 0) return { field: keys.map(ottoField).join(','), onId: keys.length === 1 && keys[0] === '_id' };
    }
  }
  for (const s of sources) {
    const text = typeof s.errmsg === 'string' ? s.errmsg : typeof s.message === 'string' ? s.message : '';
    const index = /index: (\S+) dup key/.exec(text)?.[1];
    if (index === '_id_') return { field: 'id', onId: true };
    if (index !== undefined) {
      const field = indexFields?.get(index);
      return { field: field ?? index, onId: false };
    }
    // FerretDB (SQLite backend) during an update: "UNIQUE constraint failed: index '<table>_<hash>_<index name>'".
    const sqliteIndex = /UNIQUE constraint failed: index '([^']+)'/.exec(text)?.[1];
    if (sqliteIndex !== undefined) {
      const known = [...(indexFields?.keys() ?? [])].filter((name) => sqliteIndex.endsWith(`_${name}`)).sort((a, b) => b.length - a.length)[0];
      return { field: known === undefined ? undefined : indexFields?.get(known), onId: false };
    }
  }
  return { field: undefined, onId: undefined };
}

function ottoField(key: string): string {
  return key === '_id' ? 'id' : key;
}

function errorCodes(err: ErrorLike): number[] {
  const codes: number[] = [];
  const add = (c: unknown): void => {
    if (typeof c === 'number') codes.push(c);
  };
  add(err.code);
  add(err.errorResponse?.code);
  add(err.writeConcernError?.code);
  for (const w of writeErrorList(err)) add(w.code);
  return codes;
}

function writeErrorList(err: ErrorLike): Array<{ code?: unknown; errmsg?: unknown; message?: unknown; keyPattern?: unknown; keyValue?: unknown; err?: unknown }> {
  const w = err.writeErrors;
  if (Array.isArray(w)) return w.filter((x) => x && typeof x === 'object');
  if (w && typeof w === 'object') return [w as { code?: unknown }];
  return [];
}

function hasLabel(err: ErrorLike, labels: string[]): boolean {
  const own = Array.isArray(err.errorLabels) ? (err.errorLabels as unknown[]) : [];
  return labels.some((l) => own.includes(l));
}

/** The driver refuses oversized documents client-side with a BSONError or an invalid-argument error. */
function isClientSizeError(name: string, detail: string): boolean {
  if (name === 'BSONError' || name === 'BSONOffsetError' || name === 'MongoInvalidArgumentError' || name === 'RangeError') {
    return /larger than|too large|exceeds|maximum (allowed )?size|out of range|max(imum)? bson/i.test(detail);
  }
  return false;
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
