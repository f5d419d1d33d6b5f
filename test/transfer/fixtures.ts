/** Data and helpers for the transfer and verify tests. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collections, domainCollections } from '../../src/domain/collections.ts';
import type { Doc, Store } from '../../src/storage/contract.ts';
import { migrationsFor, runMigrations } from '../../src/storage/migrations/index.ts';
import { createMongoStore, type MongoStore } from '../../src/storage/mongodb/mongodb-store.ts';
import { openStoreUrl } from '../../src/storage/store-url.ts';
import { verify, type VerifyReport } from '../../src/storage/transfer/index.ts';
import { cli } from '../support/cli.ts';

/** A temp folder removed by `cleanup`. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Fills a migrated store with every kind of document Otto keeps, including what tends to break
 * copies: unicode, nested objects and arrays, nulls, versions above 1, deleted documents,
 * counters, a collection Otto does not know and a system collection that must not be copied.
 * Returns how many documents each copied collection holds.
 */
export async function seed(store: Store, options: { messages?: number } = {}): Promise<Record<string, number>> {
  await runMigrations({ store, migrations: migrationsFor(store.engine), ottoVersion: 'test' });
  const at = (i: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString();
  const bots = await store.collection(collections.bots);
  await bots.insertMany({
    docs: Array.from({ length: 12 }, (_, i) => ({
      id: `bot_${String(i).padStart(3, '0')}`,
      owner_id: i % 2 ? 'alice' : 'bob',
      name: ['Zoë', '日本語のボット', 'مرحبا', '👩‍💻 emoji', 'quote " and \\ backslash', 'tab\tnew\nline'][i % 6]! + ` ${i}`,
      name_key: `bot ${i}`,
      description: i % 3 ? null : 'a bot',
      composition_mode: 'fluid',
      max_engine_iterations: 3,
      metadata: { tags: ['a', i], nested: { deep: [{ x: i, y: null }], empty: {} }, flag: i % 2 === 0 },
      created_at: at(i),
    })),
  });
  for (let i = 0; i < 12; i += 3) await bots.update({ id: `bot_${String(i).padStart(3, '0')}`, patch: { description: `edited ${i}` } });
  await bots.delete({ id: 'bot_011' });
  const guidelines = await store.collection(collections.guidelines);
  await guidelines.insertMany({
    docs: Array.from({ length: 30 }, (_, i) => ({ id: `gl_${String(i).padStart(3, '0')}`, bot_id: `bot_${String(i % 11).padStart(3, '0')}`, condition: `when ${i}`, action: `do ${i}`, criticality: 'medium', enabled: i % 5 !== 0, created_at: at(i) })),
  });
  const journeys = await store.collection(collections.journeys);
  await journeys.insert({ doc: { id: 'jr_1', bot_id: 'bot_001', title: 'Onboarding', conditions: ['new user'], steps: [{ id: 's1', text: 'welcome', next: ['s2'] }, { id: 's2', text: 'done', next: [] }] } });
  const tools = await store.collection(collections.tools);
  await tools.insert({ doc: { id: 'tool_1', bot_id: 'bot_001', name: 'lookup', description: 'look up', input_schema: { type: 'object', properties: { q: { type: 'string' } } }, endpoint: 'http://127.0.0.1:9/lookup' } });
  const mappings = await store.collection(collections.tool_mappings);
  await mappings.insert({ doc: { id: 'tm_1', bot_id: 'bot_001', guideline_id: 'gl_001', tool_name: 'lookup' } });
  const conversations = await store.collection(collections.conversations);
  await conversations.insertMany({ docs: Array.from({ length: 10 }, (_, i) => ({ id: `conv_${i}`, bot_id: 'bot_001', user_id: `u${i}`, owner_id: 'alice', title: null, context: {}, last_offset: 0, created_at: at(i) })) });
  const messages = await store.collection(collections.messages);
  const total = options.messages ?? 100;
  for (let start = 0; start < total; start += 500) {
    const docs = Array.from({ length: Math.min(500, total - start) }, (_, k) => {
      const i = start + k;
      return {
        id: `msg_${String(i).padStart(7, '0')}`,
        conversation_id: `conv_${i % 10}`,
        offset: Math.floor(i / 10) + 1,
        role: i % 2 ? 'assistant' : 'user',
        content: `message ${i} — ünïcødé ✓`,
        agent_steps: i % 2 ? [{ kind: 'match', guideline: 'gl_001' }] : [],
        source_citations: [],
        meta_data: i % 7 ? null : { tokens: i },
        created_at: at(i % 60),
      };
    });
    await messages.insertMany({ docs });
  }
  const keys = await store.collection(collections.api_keys);
  await keys.insert({ doc: { id: 'key_1', owner_id: 'alice', key_hash: 'ab'.repeat(32) } });
  const counters = await store.collection(collections.counters);
  for (let i = 0; i < 10; i++) await counters.increment({ id: `conv_${i}:offset`, field: 'value', by: 10 });
  const custom = await store.collection({ name: 'custom_notes', schemaVersion: 1, indexes: [] });
  await custom.insert({ doc: { id: 'note_1', text: 'a collection Otto does not declare is copied too' } });
  const scratch = await store.collection({ name: '_scratch', schemaVersion: 1, indexes: [] });
  await scratch.insert({ doc: { id: 'x', text: 'system collections other than _counters are not copied' } });
  const seeded: Record<string, number> = {
    bots: 11,
    guidelines: 30,
    journeys: 1,
    tools: 1,
    tool_mappings: 1,
    conversations: 10,
    messages: total,
    api_keys: 1,
    _counters: 10,
    custom_notes: 1,
  };
  // Collections the migrations create (and may seed, e.g. role_permissions) are copied too.
  for (const spec of domainCollections) if (!(spec.name in seeded)) seeded[spec.name] = await (await store.collection(spec)).count();
  return seeded;
}

/** Every document of each named collection, by id (for small stores in tests). */
export async function contents(store: Store, names: string[]): Promise<Record<string, Doc[]>> {
  const out: Record<string, Doc[]> = {};
  const present = new Set(await store.listCollections());
  for (const name of names) {
    out[name] = [];
    if (!present.has(name)) continue;
    const collection = await store.collection({ name, schemaVersion: 1, indexes: [] });
    for await (const batch of collection.scan()) out[name].push(...batch);
  }
  return out;
}

export const copiedCollections = [...domainCollections.map((s) => s.name), '_counters', 'custom_notes'];

/** A URL for a fresh database on the MongoDB server at `uri` (keeping its options). */
export function mongoUrl(uri: string, database: string): string {
  const [base = '', query] = uri.split('?', 2);
  const authority = /^(mongodb(?:\+srv)?:\/\/[^/]*)/i.exec(base)?.[1] ?? base;
  return `${authority}/${database}${query ? `?${query}` : ''}`;
}

/** A fresh MongoDB database on the server at `uri` (dropped by `cleanup`) and its URL. */
export async function freshMongo(uri: string): Promise<{ store: MongoStore; url: string; cleanup(): Promise<void> }> {
  const database = `otto_transfer_${randomBytes(6).toString('hex')}`;
  const url = mongoUrl(uri, database);
  const store = await createMongoStore({ uri: url, database });
  return {
    store,
    url,
    cleanup: async () => {
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    },
  };
}

/**
 * A user's restore with a mirror configured (`env` names the configured store and
 * `OTTO_MIRRORS`), through the CLI: the mirror takes its full copy of the still-empty store, then
 * `otto import --from <from>` runs, then `otto mirror sync`. Returns what verifying `from`
 * against the mirror (`mirrorUrl`) finds. Throws, with the command's output, when a command fails.
 */
export async function importIntoMirroredStore(args: { env: NodeJS.ProcessEnv; cwd: string; from: string; mirrorUrl: string }): Promise<VerifyReport> {
  for (const argv of [['migrate', 'up'], ['mirror', 'sync'], ['import', '--from', args.from], ['mirror', 'sync']]) {
    const r = await cli(argv, args.env, args.cwd);
    if (r.code !== 0) throw new Error(`otto ${argv.join(' ')} exited ${r.code}: ${r.out}\n${r.err}`);
  }
  return verifyUrls(args.from, args.mirrorUrl, args.cwd);
}

/** What `verify` finds between the stores at URLs `a` and `b` (relative paths against `cwd`), both opened read-only. */
export async function verifyUrls(a: string, b: string, cwd = process.cwd()): Promise<VerifyReport> {
  const [x, y] = [await openStoreUrl(a, { source: true, cwd }), await openStoreUrl(b, { source: true, cwd })];
  try {
    return await verify({ a: x, b: y });
  } finally {
    await x.close();
    await y.close();
  }
}
