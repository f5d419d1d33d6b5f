import { StorageError, type FindOptions, type Scalar, type SortKey, type Where } from './contract.ts';
import { assertFieldName } from './validate.ts';

/** `field` equals `value` (`null` also matches a missing field). */
export function eq(field: string, value: Scalar): Where {
  return { op: 'eq', field, value };
}
/** `field` equals one of `values`. */
export function isIn(field: string, values: Scalar[]): Where {
  return { op: 'in', field, values };
}
/** `field` > `value`. */
export function gt(field: string, value: Scalar): Where {
  return { op: 'gt', field, value };
}
/** `field` >= `value`. */
export function gte(field: string, value: Scalar): Where {
  return { op: 'gte', field, value };
}
/** `field` < `value`. */
export function lt(field: string, value: Scalar): Where {
  return { op: 'lt', field, value };
}
/** `field` <= `value`. */
export function lte(field: string, value: Scalar): Where {
  return { op: 'lte', field, value };
}
/** All clauses hold. Undefined clauses are dropped, so optional filters compose. */
export function and(...clauses: Array<Where | undefined>): Where {
  return { op: 'and', clauses: clauses.filter((c): c is Where => c !== undefined) };
}

function assertScalar(value: unknown, field: string): Scalar {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  throw new StorageError('INVALID', `filter value for ${field} must be a string, number, boolean or null`, { field });
}

/** Validates a where tree (plain data, identifier fields, scalar values); returns it. Throws INVALID. */
export function assertWhere(where: Where, depth = 0): Where {
  if (depth > 16) throw new StorageError('INVALID', 'where is nested too deeply');
  if (where === null || typeof where !== 'object') throw new StorageError('INVALID', 'where must be an object');
  switch (where.op) {
    case 'and':
      if (!Array.isArray(where.clauses)) throw new StorageError('INVALID', 'and needs a list of clauses');
      where.clauses.forEach((c) => assertWhere(c, depth + 1));
      return where;
    case 'in':
      assertFieldName(where.field);
      if (!Array.isArray(where.values) || where.values.length > 1000) throw new StorageError('INVALID', `in needs a list of at most 1000 values`, { field: where.field });
      where.values.forEach((v) => assertScalar(v, where.field));
      return where;
    case 'eq':
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      assertFieldName(where.field);
      assertScalar(where.value, where.field);
      if (where.op !== 'eq' && where.value === null) throw new StorageError('INVALID', `${where.op} cannot compare with null`, { field: where.field });
      return where;
    default:
      throw new StorageError('INVALID', `unknown where operator ${JSON.stringify((where as { op?: unknown }).op)}`);
  }
}

const TYPE_RANK: Record<string, number> = { null: 0, number: 1, string: 2, boolean: 3 };

function rank(value: unknown): number {
  if (value === undefined || value === null) return 0;
  return TYPE_RANK[typeof value] ?? 4;
}

/**
 * Orders two stored values the way the engines do for scalars: null/missing first,
 * then numbers, strings (by UTF-16 code units, like SQLite's BINARY and MongoDB's simple collation), booleans.
 */
export function compareValues(a: unknown, b: unknown): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 0) return 0;
  if (typeof a === 'boolean') return Number(a) - Number(b);
  if ((a as number | string) < (b as number | string)) return -1;
  if ((a as number | string) > (b as number | string)) return 1;
  return 0;
}

/** True when the document satisfies the where (the memory engine's evaluator). */
export function matches(document: object, where: Where | undefined): boolean {
  if (!where) return true;
  const doc = document as Record<string, unknown>;
  switch (where.op) {
    case 'and':
      return where.clauses.every((c) => matches(doc, c));
    case 'eq': {
      const v = Object.hasOwn(doc, where.field) ? doc[where.field] : undefined;
      if (where.value === null) return v === null || v === undefined;
      return typeof v === typeof where.value && v === where.value;
    }
    case 'in': {
      const v = Object.hasOwn(doc, where.field) ? doc[where.field] : undefined;
      return where.values.some((x) => (x === null ? v === null || v === undefined : v === x));
    }
    default: {
      const v = Object.hasOwn(doc, where.field) ? doc[where.field] : undefined;
      if (v === undefined || v === null || typeof v !== typeof where.value) return false;
      const c = compareValues(v, where.value);
      return where.op === 'gt' ? c > 0 : where.op === 'gte' ? c >= 0 : where.op === 'lt' ? c < 0 : c <= 0;
    }
  }
}

/** Default and bounds for page sizes. */
export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 1000;

/** A find request with its defaults applied and validated. */
export interface NormalizedFind {
  where: Where | undefined;
  /** Sort keys including the trailing `id` tie-breaker. */
  sort: SortKey[];
  limit: number;
  /** Decoded cursor values, one per sort key, or null. */
  after: Array<string | number | boolean> | null;
}

/** Validates find options, applies defaults and decodes the cursor. Throws INVALID. */
export function normalizeFind(options: FindOptions = {}): NormalizedFind {
  const where = options.where === undefined ? undefined : assertWhere(options.where);
  const given = options.sort ?? [{ field: 'created_at', direction: 'asc' }];
  if (!Array.isArray(given) || given.length > 4) throw new StorageError('INVALID', 'sort must be a list of at most 4 keys', { field: 'sort' });
  const sort: SortKey[] = given.map((k) => {
    assertFieldName(k?.field, 'sort field');
    if (k.direction !== 'asc' && k.direction !== 'desc') throw new StorageError('INVALID', 'sort direction must be asc or desc', { field: 'sort' });
    return { field: k.field, direction: k.direction };
  });
  if (!sort.some((k) => k.field === 'id')) sort.push({ field: 'id', direction: sort.at(-1)?.direction ?? 'asc' });
  const limit = options.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new StorageError('INVALID', `limit must be an integer from 1 to ${MAX_LIMIT}`, { field: 'limit' });
  const after = options.after ? decodeCursor(options.after, sort.length) : null;
  return { where, sort, limit, after };
}

/** Encodes the sort values of the last item of a page as an opaque cursor. */
export function encodeCursor(document: object, sort: SortKey[]): string {
  const doc = document as Record<string, unknown>;
  const values = sort.map((k) => doc[k.field]);
  for (const [i, v] of values.entries()) {
    if (v === undefined || v === null || (typeof v === 'object')) {
      throw new StorageError('INVALID', `sort field ${sort[i]!.field} is missing or not a scalar on document ${String(doc.id)}`, { field: 'sort' });
    }
  }
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/** Decodes a cursor; throws INVALID when it is not one of ours for this sort. */
export function decodeCursor(cursor: string, keys: number): Array<string | number | boolean> {
  let values: unknown;
  try {
    if (typeof cursor !== 'string' || cursor.length > 4096) throw new Error('bad');
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new StorageError('INVALID', 'after is not a valid cursor', { field: 'after' });
  }
  if (!Array.isArray(values) || values.length !== keys || !values.every((v) => ['string', 'number', 'boolean'].includes(typeof v))) {
    throw new StorageError('INVALID', 'after is not a valid cursor for this sort', { field: 'after' });
  }
  return values as Array<string | number | boolean>;
}

/** Compares two documents by the sort keys (the memory engine's ordering). */
export function compareBySort(a: object, b: object, sort: SortKey[]): number {
  for (const key of sort) {
    const c = compareValues((a as Record<string, unknown>)[key.field], (b as Record<string, unknown>)[key.field]);
    if (c !== 0) return key.direction === 'asc' ? c : -c;
  }
  return 0;
}

/** True when the document comes strictly after the cursor values in sort order. */
export function isAfterCursor(doc: object, sort: SortKey[], after: Array<string | number | boolean>): boolean {
  for (const [i, key] of sort.entries()) {
    const c = compareValues((doc as Record<string, unknown>)[key.field], after[i]);
    if (c !== 0) return key.direction === 'asc' ? c > 0 : c < 0;
  }
  return false;
}
