import { StorageError, type CollectionSpec, type NewDoc, type StoredMeta } from './contract.ts';

/** Largest document accepted, in bytes of JSON (MongoDB's BSON limit is 16 MiB). */
export const MAX_DOCUMENT_BYTES = 15 * 1024 * 1024;
/** Deepest nesting accepted in a document. */
export const MAX_DEPTH = 32;
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const COLLECTION_NAME = /^_?[a-z][a-z0-9_]{0,62}$/;
/** Names no top-level field may have: prototype keys, and `_id`, which MongoDB reserves for Otto's id. */
const RESERVED_FIELDS = new Set(['__proto__', 'constructor', 'prototype', '_id']);
const META_FIELDS = new Set(['id', 'version', 'created_at', 'updated_at']);

/**
 * Returns the field name if it may be used in a where, sort, index or patch; throws
 * INVALID otherwise. Such names are plain identifiers: no `$`, no `.`, no prototype keys.
 */
export function assertFieldName(field: unknown, role = 'field'): string {
  if (typeof field !== 'string' || !FIELD_NAME.test(field) || RESERVED_FIELDS.has(field)) {
    throw new StorageError('INVALID', `${role} name ${JSON.stringify(field)} is not a plain identifier`, { field: String(field) });
  }
  return field;
}

/** Returns the id if it is a usable document id; throws INVALID otherwise. */
export function assertId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 256 || id.includes('\u0000')) {
    throw new StorageError('INVALID', 'id must be a non-empty string of at most 256 characters', { field: 'id' });
  }
  return id;
}

/** Validates a collection spec; throws INVALID naming what is wrong. */
export function assertSpec(spec: CollectionSpec): void {
  if (!spec || typeof spec.name !== 'string' || !COLLECTION_NAME.test(spec.name)) {
    throw new StorageError('INVALID', `collection name ${JSON.stringify(spec?.name)} must be lowercase snake_case`);
  }
  if (!Number.isInteger(spec.schemaVersion) || spec.schemaVersion < 1) {
    throw new StorageError('INVALID', `collection ${spec.name}: schemaVersion must be a positive integer`);
  }
  for (const index of spec.indexes) {
    if (!Array.isArray(index.fields) || index.fields.length === 0) {
      throw new StorageError('INVALID', `collection ${spec.name}: an index needs at least one field`);
    }
    for (const [field, direction] of index.fields) {
      assertFieldName(field, 'index field');
      if (direction !== 1 && direction !== -1) throw new StorageError('INVALID', `collection ${spec.name}: index direction must be 1 or -1`);
    }
  }
}

/** The name of an index: given, or derived from its fields (`conversation_id_1_offset_-1`). */
export function indexName(index: CollectionSpec['indexes'][number]): string {
  return index.name ?? index.fields.map(([f, d]) => `${f}_${d}`).join('_');
}

/**
 * Checks that a value is storable JSON with safe keys, at most MAX_DEPTH deep.
 * Throws INVALID naming the offending path.
 */
export function assertStorableValue(value: unknown, path: string, depth = 0): void {
  if (depth > MAX_DEPTH) throw new StorageError('INVALID', `${path} is nested more than ${MAX_DEPTH} levels deep`, { field: path });
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new StorageError('INVALID', `${path} must be a finite number`, { field: path });
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => assertStorableValue(item, `${path}[${i}]`, depth + 1));
    return;
  }
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw new StorageError('INVALID', `${path} must be a plain object`, { field: path });
    for (const key of Object.keys(value)) {
      if (key.startsWith('$') || key.includes('.') || key.includes('\u0000') || key === '__proto__' || key === '') {
        throw new StorageError('INVALID', `${path} has key ${JSON.stringify(key)}: keys may not be empty, start with "$", contain "." or be "__proto__"`, { field: path });
      }
      assertStorableValue((value as Record<string, unknown>)[key], path === '' ? key : `${path}.${key}`, depth + 1);
    }
    return;
  }
  throw new StorageError('INVALID', `${path} has a ${typeof value}, which cannot be stored`, { field: path });
}

/** Validates a whole document before it is stored; returns its JSON text. Throws INVALID. */
export function serializeDocument(doc: StoredMeta): string {
  assertId(doc.id);
  if (Object.hasOwn(doc, '_id')) throw new StorageError('INVALID', 'a document may not have a top-level _id field; its id is `id`', { field: '_id' });
  assertStorableValue(doc, '');
  const json = JSON.stringify(doc);
  if (Buffer.byteLength(json) > MAX_DOCUMENT_BYTES) {
    throw new StorageError('INVALID', `document ${doc.id} is larger than ${MAX_DOCUMENT_BYTES} bytes`, { field: 'id' });
  }
  return json;
}

/** The current time as stored in `created_at`/`updated_at`. */
export function now(): string {
  return new Date().toISOString();
}

/**
 * Fills metadata for a new document: version 1 (or the given one when verbatim),
 * timestamps kept when given. Returns a fresh object; the input is not modified.
 */
export function stampNew<T extends StoredMeta>(input: NewDoc<T>, options: { verbatim?: boolean; version?: number } = {}): T {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new StorageError('INVALID', 'document must be an object');
  assertId((input as { id?: unknown }).id);
  const at = now();
  const created = typeof input.created_at === 'string' ? input.created_at : at;
  const version = options.verbatim && typeof input.version === 'number' ? input.version : (options.version ?? 1);
  const updated = options.verbatim && typeof input.updated_at === 'string' ? input.updated_at : options.version ? at : (input.updated_at ?? created);
  const doc = { ...input, version, created_at: created, updated_at: updated } as unknown as T;
  return doc;
}

/**
 * Applies a shallow patch to a stored document: ignores undefined values, refuses meta
 * fields, bumps version and updated_at. Returns a new object. Throws INVALID.
 */
export function applyPatch<T extends StoredMeta>(current: T, patch: Record<string, unknown>): T {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) throw new StorageError('INVALID', 'patch must be an object');
  const next: Record<string, unknown> = { ...(current as unknown as Record<string, unknown>) };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (key === 'updated_at') continue;
    if (META_FIELDS.has(key)) throw new StorageError('INVALID', `${key} cannot be patched`, { field: key });
    assertFieldName(key, 'patch field');
    next[key] = value;
  }
  next.version = current.version + 1;
  next.updated_at = laterThan(current.updated_at);
  return next as unknown as T;
}

/** A timestamp that is now, or 1 ms after `previous` when the clock has not moved past it. */
export function laterThan(previous: string): string {
  const at = now();
  if (at > previous) return at;
  const bumped = new Date(Date.parse(previous) + 1);
  return Number.isNaN(bumped.getTime()) ? at : bumped.toISOString();
}

/** The fields a patch will set (undefined dropped, meta fields refused). Throws INVALID. */
export function patchFields(patch: Record<string, unknown>): Record<string, unknown> {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) throw new StorageError('INVALID', 'patch must be an object');
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined || key === 'updated_at') continue;
    if (META_FIELDS.has(key)) throw new StorageError('INVALID', `${key} cannot be patched`, { field: key });
    assertFieldName(key, 'patch field');
    assertStorableValue(value, key, 1);
    out[key] = value;
  }
  return out;
}

/** Validates an increment's step; returns it. Throws INVALID. */
export function assertStep(by: unknown): number {
  const step = by === undefined ? 1 : by;
  if (typeof step !== 'number' || !Number.isFinite(step)) throw new StorageError('INVALID', 'increment step must be a finite number', { field: 'by' });
  return step;
}

/** The arguments of `insertNumbered` other than the documents, validated. Throws INVALID. */
export function assertNumbered(args: { docs?: unknown; field?: unknown; counter?: { collection?: unknown; id?: unknown; field?: unknown } }): {
  field: string;
  counter: { collection: string; id: string; field: string };
} {
  if (!Array.isArray(args?.docs)) throw new StorageError('INVALID', 'docs must be a list', { field: 'docs' });
  const field = assertFieldName(args.field);
  if (META_FIELDS.has(field)) throw new StorageError('INVALID', `${field} cannot be numbered`, { field });
  const counter = args.counter;
  if (counter === null || typeof counter !== 'object' || typeof counter.collection !== 'string') {
    throw new StorageError('INVALID', 'counter must name a collection, an id and a field', { field: 'counter' });
  }
  return { field, counter: { collection: counter.collection, id: assertId(counter.id), field: assertFieldName(counter.field) } };
}
