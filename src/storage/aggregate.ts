/**
 * What every engine's `aggregate` shares: validating the options, the canonical order and
 * shape of the rows, and the in-memory computation (memory and JSONL engines).
 */
import { MAX_AGGREGATE_GROUPS, StorageError, type AggregateOptions, type AggregateRow, type Where } from './contract.ts';
import { assertFieldName } from './validate.ts';
import { assertWhere, matches } from './where.ts';

/** Most `groupBy` fields. */
export const MAX_GROUP_FIELDS = 4;
/** Most `sum` fields. */
export const MAX_SUM_FIELDS = 8;

/** Aggregate options validated: fields are plain identifiers, each listed once. */
export interface NormalizedAggregate {
  where: Where | undefined;
  groupBy: string[];
  sum: string[];
}

/** Validates `aggregate`'s options; returns them normalized. Throws INVALID naming the problem. */
export function normalizeAggregate(args: AggregateOptions): NormalizedAggregate {
  if (args === null || typeof args !== 'object') throw new StorageError('INVALID', 'aggregate needs {groupBy, sum}');
  const list = (value: unknown, name: string, max: number): string[] => {
    if (!Array.isArray(value) || value.length > max) throw new StorageError('INVALID', `${name} must be a list of at most ${max} field names`, { field: name });
    const fields = value.map((f) => assertFieldName(f, `${name} field`));
    if (new Set(fields).size !== fields.length) throw new StorageError('INVALID', `${name} lists a field twice`, { field: name });
    return fields;
  };
  const groupBy = list(args.groupBy, 'groupBy', MAX_GROUP_FIELDS);
  const sum = list(args.sum, 'sum', MAX_SUM_FIELDS);
  return { where: args.where === undefined ? undefined : assertWhere(args.where), groupBy, sum };
}

/** The INVALID error for an aggregation with too many groups. */
export function tooManyGroups(): StorageError {
  return new StorageError('INVALID', `the aggregation has more than ${MAX_AGGREGATE_GROUPS} groups; narrow the where`, { field: 'groupBy' });
}

/** A group value as rows carry it: strings and numbers as they are, missing/null as null, anything else as its JSON text. */
export function groupValue(value: unknown): string | number | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'number') return value;
  return JSON.stringify(value);
}

/** Orders strings by code point (UTF-8 byte order), as SQLite's BINARY and MongoDB's simple collation do. */
function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const x = [...a];
  const y = [...b];
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] !== y[i]) return x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
  }
  return x.length - y.length;
}

function compareGroupValues(a: string | number | null, b: string | number | null): number {
  const rank = (v: unknown) => (v === null ? 0 : typeof v === 'number' ? 1 : 2);
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 0) return 0;
  if (ra === 1) return (a as number) - (b as number);
  return compareStrings(a as string, b as string);
}

/**
 * Merges rows whose groups are equal, adding their counts and sums (an engine may tell a
 * missing field from null, Otto does not; partial rows of one group may come from separate
 * queries), drops groups without documents, and sorts them in the canonical ascending group order.
 * Throws INVALID when there are more than MAX_AGGREGATE_GROUPS.
 */
export function finishRows(rows: AggregateRow[], groupBy: string[]): AggregateRow[] {
  const merged = new Map<string, AggregateRow>();
  for (const row of rows) {
    const key = JSON.stringify(groupBy.map((f) => row.group[f] ?? null));
    const existing = merged.get(key);
    if (!existing) {
      merged.set(key, row);
      continue;
    }
    existing.count += row.count;
    for (const [field, value] of Object.entries(row.sums)) existing.sums[field] = (existing.sums[field] ?? 0) + value;
  }
  const kept = [...merged.values()].filter((row) => row.count > 0);
  if (kept.length > MAX_AGGREGATE_GROUPS) throw tooManyGroups();
  return kept.sort((a, b) => {
    for (const field of groupBy) {
      const c = compareGroupValues(a.group[field] ?? null, b.group[field] ?? null);
      if (c !== 0) return c;
    }
    return 0;
  });
}

/** A numeric value to add, or 0 for anything that is not a finite number. */
export function addend(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** Aggregates documents held in memory (the memory and JSONL engines). */
export function aggregateDocuments(docs: Iterable<Record<string, unknown>>, query: NormalizedAggregate): AggregateRow[] {
  const groups = new Map<string, AggregateRow>();
  for (const doc of docs) {
    if (!matches(doc, query.where)) continue;
    const group: Record<string, string | number | null> = {};
    for (const field of query.groupBy) group[field] = groupValue(Object.hasOwn(doc, field) ? doc[field] : undefined);
    const key = JSON.stringify(query.groupBy.map((f) => group[f]));
    let row = groups.get(key);
    if (!row) {
      if (groups.size >= MAX_AGGREGATE_GROUPS) throw tooManyGroups();
      row = { group, count: 0, sums: Object.fromEntries(query.sum.map((f) => [f, 0])) };
      groups.set(key, row);
    }
    row.count++;
    for (const field of query.sum) row.sums[field]! += addend(Object.hasOwn(doc, field) ? doc[field] : undefined);
  }
  return finishRows([...groups.values()], query.groupBy);
}
