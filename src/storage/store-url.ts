/**
 * Store URLs: one string naming any store, for the tools that move data between stores
 * (`otto transfer`, `verify`, `export`, `import`).
 *
 *   sqlite:<file>                      e.g. sqlite:./data/otto.db, sqlite:/var/lib/otto/otto.db
 *   jsonl:<folder>[?fsync=always|batch|never]   e.g. jsonl:./backup (Otto's JSON-lines folder format)
 *   mongodb://[user:pass@]host[:port][,host…]/<database>[?options]   (also mongodb+srv://)
 *   memory:                            an empty in-process store (tests)
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ottoVersion } from '../version.ts';
import { StorageError, type Store } from './contract.ts';
import { createJsonlStore, type FsyncPolicy } from './jsonl/jsonl-store.ts';
import { createMemoryStore } from './memory/memory-store.ts';
import { migrationsFor, runMigrations } from './migrations/index.ts';
import { createSqliteStore } from './sqlite/sqlite-store.ts';

/** A parsed store URL. Paths are as written (resolved against a cwd when opened or described). */
export type StoreUrl =
  | { kind: 'sqlite'; path: string }
  | { kind: 'jsonl'; dir: string; fsync?: FsyncPolicy }
  | { kind: 'mongodb'; uri: string; database: string }
  | { kind: 'memory' };

const EXAMPLES = 'use sqlite:<file>, jsonl:<folder>, mongodb://host[:port]/<database> or memory:';

/**
 * Parses a store URL. Throws StorageError INVALID naming the problem; the message never
 * repeats the text itself, which may hold a password.
 */
export function parseStoreUrl(text: string): StoreUrl {
  if (typeof text !== 'string' || text.trim() === '') throw new StorageError('INVALID', `the store is empty: ${EXAMPLES}`, { field: 'store' });
  const value = text.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1]?.toLowerCase();
  if (scheme === 'mongodb' || scheme === 'mongodb+srv') return parseMongo(value);
  if (scheme === 'sqlite' || scheme === 'jsonl') {
    let path = value.slice(scheme.length + 1);
    if (path.startsWith('//')) path = path.slice(2); // sqlite:///abs/file, as URLs write it
    if (path === '') {
      throw new StorageError('INVALID', scheme === 'sqlite' ? 'sqlite: needs a file, e.g. sqlite:./data/otto.db' : 'jsonl: needs a folder, e.g. jsonl:./backup', { field: 'store' });
    }
    if (path.includes('\u0000')) throw new StorageError('INVALID', `the ${scheme} path contains a NUL character`, { field: 'store' });
    if (scheme === 'sqlite') return { kind: 'sqlite', path };
    return parseJsonlOptions(path);
  }
  if (scheme === 'memory') {
    if (value.slice('memory:'.length) !== '') throw new StorageError('INVALID', 'memory: takes nothing after the colon', { field: 'store' });
    return { kind: 'memory' };
  }
  if (scheme === undefined || scheme.length === 1) {
    // A bare path (or a Windows drive letter): say which prefix to add.
    const hint = /\.(db|sqlite3?)$/i.test(value) ? `sqlite:${value}` : `jsonl:${value}`;
    throw new StorageError('INVALID', `a store needs a kind in front of the path, e.g. ${hint}; ${EXAMPLES}`, { field: 'store' });
  }
  throw new StorageError('INVALID', `unknown kind of store "${scheme.slice(0, 20)}:": ${EXAMPLES}`, { field: 'store' });
}

/** The JSONL fsync policies a store URL may name. */
const FSYNC_POLICIES: readonly FsyncPolicy[] = ['always', 'batch', 'never'];

/**
 * `<folder>[?fsync=always|batch|never]`: the folder, and the options after a `?`.
 * Throws INVALID for an unknown option or value, naming the allowed ones.
 */
function parseJsonlOptions(text: string): StoreUrl {
  const q = text.indexOf('?');
  const dir = q >= 0 ? text.slice(0, q) : text;
  if (dir === '') throw new StorageError('INVALID', 'jsonl: needs a folder, e.g. jsonl:./backup', { field: 'store' });
  if (q < 0) return { kind: 'jsonl', dir };
  const url: StoreUrl & { kind: 'jsonl' } = { kind: 'jsonl', dir };
  for (const [key, value] of new URLSearchParams(text.slice(q + 1))) {
    if (key !== 'fsync') throw new StorageError('INVALID', `jsonl: has no option ${JSON.stringify(key.slice(0, 40))}; the only one is fsync=always|batch|never`, { field: 'store' });
    if (!FSYNC_POLICIES.includes(value as FsyncPolicy)) {
      throw new StorageError('INVALID', `jsonl: fsync must be always, batch or never, got ${JSON.stringify(value.slice(0, 40))}`, { field: 'store' });
    }
    url.fsync = value as FsyncPolicy;
  }
  return url;
}

function parseMongo(uri: string): StoreUrl {
  const rest = uri.replace(/^[^:]*:\/\//, '');
  if (rest === uri) throw new StorageError('INVALID', 'a MongoDB store starts with mongodb:// or mongodb+srv://', { field: 'store' });
  const withoutQuery = rest.split(/[?#]/, 1)[0]!;
  const slash = withoutQuery.indexOf('/');
  const authority = slash >= 0 ? withoutQuery.slice(0, slash) : withoutQuery;
  const path = slash >= 0 ? withoutQuery.slice(slash + 1) : '';
  if (path.includes('@')) {
    throw new StorageError('INVALID', 'the MongoDB URL has an "@" after the host list: escape "/" and "@" in the user name and password as %2F and %40', { field: 'store' });
  }
  const hosts = authority.slice(authority.lastIndexOf('@') + 1).split(',').filter((h) => h !== '');
  if (hosts.length === 0) throw new StorageError('INVALID', 'the MongoDB URL names no host', { field: 'store' });
  let database: string;
  try {
    database = decodeURIComponent(path);
  } catch {
    throw new StorageError('INVALID', 'the database in the MongoDB URL is not valid percent-encoding', { field: 'store' });
  }
  if (database === '') {
    throw new StorageError('INVALID', `the MongoDB URL names no database: put it after the hosts, e.g. mongodb://${hosts.length === 1 && !authority.includes('@') ? hosts[0] : 'host:27017'}/otto`, { field: 'store' });
  }
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(database)) {
    throw new StorageError('INVALID', `the MongoDB database ${JSON.stringify(database.slice(0, 64))} must be 1-63 letters, digits, _ or -`, { field: 'store' });
  }
  return { kind: 'mongodb', uri, database };
}

/**
 * The store for display and as a stable key: `sqlite:/abs/file`, `jsonl:/abs/folder`,
 * `mongodb://host:port/database` (never the user, password or options), `memory:`.
 * Relative paths are resolved against `cwd`. Throws INVALID like parseStoreUrl.
 */
export function describeStoreUrl(text: string | StoreUrl, cwd = process.cwd()): string {
  const url = typeof text === 'string' ? parseStoreUrl(text) : text;
  switch (url.kind) {
    case 'sqlite':
      return url.path === ':memory:' ? 'sqlite::memory:' : `sqlite:${resolve(cwd, url.path)}`;
    case 'jsonl':
      return `jsonl:${resolve(cwd, url.dir)}`;
    case 'memory':
      return 'memory:';
    case 'mongodb': {
      const srv = /^mongodb\+srv:/i.test(url.uri);
      const rest = url.uri.replace(/^[^:]*:\/\//, '').split(/[?#]/, 1)[0]!;
      const authority = rest.split('/', 1)[0]!;
      const hosts = authority
        .slice(authority.lastIndexOf('@') + 1)
        .split(',')
        .filter((h) => h !== '')
        .map((h) => (srv || h.includes('%2F') || (h.startsWith('[') ? h.includes(']:') : h.includes(':')) ? h : `${h}:27017`));
      return `${srv ? 'mongodb+srv' : 'mongodb'}://${hosts.join(',')}/${url.database}`;
    }
  }
}

/**
 * The store URL with relative paths made absolute and its options kept
 * (`jsonl:/abs/folder?fsync=never`); MongoDB URLs are returned as described (without
 * credentials), so pass the original text to open one. Throws INVALID like parseStoreUrl.
 */
export function absoluteStoreUrl(text: string | StoreUrl, cwd = process.cwd()): string {
  const url = typeof text === 'string' ? parseStoreUrl(text) : text;
  const described = describeStoreUrl(url, cwd);
  return url.kind === 'jsonl' && url.fsync ? `${described}?fsync=${url.fsync}` : described;
}

export interface OpenStoreUrlOptions {
  /** Folder that relative paths are resolved against; default the process's. */
  cwd?: string;
  /**
   * Open as a source that must not change: a SQLite file or JSONL folder must already exist
   * (UNAVAILABLE otherwise, rather than creating an empty one), and JSONL is opened read-only.
   */
  source?: boolean;
  /** JSONL fsync policy when the URL names none (`jsonl:<dir>?fsync=…` wins); default `always`. */
  fsync?: FsyncPolicy;
  /** SQLite `synchronous` (default `FULL`). */
  sqliteSynchronous?: 'FULL' | 'NORMAL';
}

/**
 * Connects to the store a URL names (migrations are the caller's concern; see
 * `openStoreUrlMigrated`). Throws INVALID for a bad URL, UNAVAILABLE when it cannot connect
 * or, with `source`, when there is nothing there.
 */
export async function openStoreUrl(text: string, options: OpenStoreUrlOptions = {}): Promise<Store> {
  const url = parseStoreUrl(text);
  const cwd = options.cwd ?? process.cwd();
  switch (url.kind) {
    case 'memory':
      return createMemoryStore();
    case 'sqlite': {
      const path = url.path === ':memory:' ? url.path : resolve(cwd, url.path);
      if (options.source && path !== ':memory:' && !existsSync(path)) throw new StorageError('UNAVAILABLE', `there is no SQLite database at ${path}`);
      return createSqliteStore({ path, synchronous: options.sqliteSynchronous ?? 'FULL' });
    }
    case 'jsonl':
      return createJsonlStore({ dir: resolve(cwd, url.dir), fsync: url.fsync ?? options.fsync, readOnly: options.source === true });
    case 'mongodb': {
      const { createMongoStore } = await import('./mongodb/mongodb-store.ts');
      return createMongoStore({ uri: url.uri, database: url.database });
    }
  }
}

/**
 * Opens the store and applies its engine's pending migrations (as `otto serve` does).
 * Closes the store and rethrows when a migration fails or the store was written by a newer Otto.
 */
export async function openStoreUrlMigrated(
  text: string,
  options: OpenStoreUrlOptions & { onProgress?: (line: string) => void } = {},
): Promise<Store> {
  const store = await openStoreUrl(text, options);
  try {
    await runMigrations({ store, migrations: migrationsFor(store.engine), ottoVersion, onProgress: options.onProgress });
    return store;
  } catch (error) {
    await store.close();
    throw error;
  }
}
