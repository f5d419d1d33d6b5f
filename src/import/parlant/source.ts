/**
 * Reads Parlant's stored documents, as they are, from either of its document databases:
 *
 * - its JSON-file stores: a folder of files such as `agents.json`, `guidelines.json`,
 *   `journeys.json`, `guideline_tool_associations.json`, `tags.json`, `relationships.json`,
 *   `services.json`, each one JSON object mapping collection names to arrays of documents
 *   (`{"metadata": [{"id", "version", …}], "guidelines": [{…}, …], "guideline_tag_associations": […]}`);
 * - its MongoDB store: the same documents in collections of one database
 *   (`mongodb://host:port/<database>`).
 *
 * Both give a `ParlantData`: every collection by name, documents as plain JSON. Only reads.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StorageError } from '../../storage/contract.ts';
import { describeStoreUrl, parseStoreUrl } from '../../storage/store-url.ts';

/** A Parlant document as stored (string ids, `version` as "0.7.0", `creation_utc`, …). */
export type RawDoc = Record<string, unknown>;

/** Everything read from a Parlant store. */
export interface ParlantData {
  /** Where it came from, without credentials: `parlant-json:/abs/dir` or `mongodb://host:port/db`. */
  source: string;
  /** Documents by collection name (`metadata` and `failed_migrations` collections left out). */
  collections: Map<string, RawDoc[]>;
  /** Documents Parlant itself could not migrate (its `failed_migrations` collections), counted. */
  failedMigrations: number;
}

/** Collections every Parlant store file has that hold no data of their own. */
const BOOKKEEPING = new Set(['metadata']);
const MAX_FILE_BYTES = 256 * 1024 * 1024;

function add(data: ParlantData, name: string, docs: RawDoc[]): void {
  if (BOOKKEEPING.has(name)) return;
  if (name === 'failed_migrations' || name.endsWith('_failed_migrations')) {
    data.failedMigrations += docs.length;
    return;
  }
  const list = data.collections.get(name) ?? [];
  for (const doc of docs) if (doc && typeof doc === 'object' && !Array.isArray(doc)) list.push(doc);
  data.collections.set(name, list);
}

/**
 * Reads every `*.json` file of a Parlant home folder. Throws StorageError UNAVAILABLE when the
 * folder is missing or unreadable, INVALID when a file is not a Parlant store (naming it).
 */
export function readParlantFolder(dir: string): ParlantData {
  const folder = resolve(dir);
  let files: string[];
  try {
    if (!statSync(folder).isDirectory()) throw new Error('not a folder');
    files = readdirSync(folder).filter((f) => f.endsWith('.json')).sort();
  } catch (error) {
    throw new StorageError('UNAVAILABLE', `cannot read the Parlant folder ${folder}: ${(error as Error).message}`, { cause: error });
  }
  const data: ParlantData = { source: `parlant-json:${folder}`, collections: new Map(), failedMigrations: 0 };
  let stores = 0;
  for (const file of files) {
    const path = join(folder, file);
    if (statSync(path).size > MAX_FILE_BYTES) throw new StorageError('INVALID', `${path} is larger than ${MAX_FILE_BYTES} bytes`);
    const text = readFileSync(path, 'utf8');
    if (text.trim() === '') continue; // Parlant leaves a new store's file empty
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new StorageError('INVALID', `${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new StorageError('INVALID', `${path} is not a Parlant store (a JSON object of collections)`);
    let collections = 0;
    for (const [name, docs] of Object.entries(parsed as Record<string, unknown>)) {
      if (!Array.isArray(docs)) continue;
      add(data, name, docs as RawDoc[]);
      collections++;
    }
    if (collections > 0) stores++;
  }
  if (stores === 0) throw new StorageError('UNAVAILABLE', `${folder} holds no Parlant store files (agents.json, guidelines.json, …)`);
  return data;
}

/**
 * Reads every collection of a Parlant MongoDB database (the URL names it, as in
 * `mongodb://host:27017/parlant`). Throws StorageError INVALID for a bad URL, UNAVAILABLE when
 * the server cannot be reached or the database is empty.
 */
export async function readParlantMongo(url: string): Promise<ParlantData> {
  const parsed = parseStoreUrl(url);
  if (parsed.kind !== 'mongodb') throw new StorageError('INVALID', 'a Parlant MongoDB source is mongodb://host[:port]/<database>', { field: 'source' });
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(parsed.uri, { serverSelectionTimeoutMS: 5_000 });
  const data: ParlantData = { source: describeStoreUrl(parsed), collections: new Map(), failedMigrations: 0 };
  try {
    await client.connect();
    const db = client.db(parsed.database);
    const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => !n.startsWith('system.')).sort();
    for (const name of names) {
      const docs = await db.collection(name).find({}, { projection: { _id: 0 } }).toArray();
      add(data, name, docs as RawDoc[]);
    }
  } catch (error) {
    throw new StorageError('UNAVAILABLE', `cannot read the Parlant database ${data.source}: ${(error as Error).message}`, { cause: error });
  } finally {
    await client.close().catch(() => {});
  }
  if (data.collections.size === 0) throw new StorageError('UNAVAILABLE', `the database ${data.source} holds no Parlant collections (agents, guidelines, …)`);
  return data;
}

/** Reads a Parlant source named by a folder path or a `mongodb://…/<database>` URL. Throws as the readers do. */
export async function readParlant(source: string): Promise<ParlantData> {
  if (typeof source !== 'string' || source.trim() === '') throw new StorageError('INVALID', 'name a Parlant folder or a mongodb://host/<database> URL', { field: 'source' });
  return /^mongodb(\+srv)?:\/\//i.test(source.trim()) ? readParlantMongo(source.trim()) : readParlantFolder(source);
}
