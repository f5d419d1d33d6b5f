/**
 * `npm run bench -- transfer`: `otto transfer` (the transfer machinery, as the CLI runs it)
 * copying a SQLite store into MongoDB, against the raw MongoDB driver's `insertMany` of the
 * same documents (already in memory, so the raw side does strictly less work), into a
 * database with the same indexes. Prints one JSON line; progress goes to stderr.
 *
 * Both sides run in the same process against the same server, on fresh databases, in
 * alternating order over `--rounds` rounds (raw first, then Otto first, …); each side's
 * median rate is reported, and the ratio of the medians.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MongoClient } from 'mongodb';
import { collections, domainCollections } from '../src/domain/collections.ts';
import { newId } from '../src/domain/ids.ts';
import type { Doc, Store } from '../src/storage/contract.ts';
import { migrationsFor, runMigrations } from '../src/storage/migrations/index.ts';
import { createSqliteStore } from '../src/storage/sqlite/sqlite-store.ts';
import { openStoreUrlMigrated } from '../src/storage/store-url.ts';
import { transfer } from '../src/storage/transfer/index.ts';
import { parseBenchArgs } from './support/args.ts';
import { benchProgress, median } from './support/figures.ts';

const progress = benchProgress('transfer');

const usage = `Usage: npm run bench -- transfer [--flags]

SQLite → MongoDB copy through \`otto transfer\`'s machinery ("otto") against the raw driver's
insertMany of the same documents ("raw", documents already in memory, same indexes).
One JSON line:
  otto_docs_per_s / raw_docs_per_s   median over the rounds
  ratio                              otto / raw (target >= 0.7)

Flags:
  --messages N       messages in the source (default 20000; plus N/50 conversations and 20 bots)
  --batch-size B     transfer batch size and insertMany batch (default 500)
  --rounds R         rounds, alternating which side goes first (default 2)
  --mongodb-uri URI  MongoDB server; else OTTO_BENCH_MONGODB_URI; else a FerretDB test server is started here
  -h, --help         this help`;

/** Fills a migrated SQLite store with bots, conversations and messages (not measured). */
async function seedSource(store: Store, messages: number): Promise<number> {
  await runMigrations({ store, migrations: migrationsFor(store.engine), ottoVersion: 'bench' });
  const bots = await store.collection(collections.bots);
  const botIds = Array.from({ length: 20 }, () => newId('bot'));
  await bots.insertMany({ docs: botIds.map((id, i) => ({ id, owner_id: 'bench', name: `Bot ${i}`, name_key: `bot ${i}`, description: 'a bench bot', composition_mode: 'fluid', max_engine_iterations: 3, metadata: { i } })) });
  const conversations = await store.collection(collections.conversations);
  const convIds = Array.from({ length: Math.max(1, Math.floor(messages / 50)) }, () => newId('conv'));
  for (let i = 0; i < convIds.length; i += 500) {
    await conversations.insertMany({
      docs: convIds.slice(i, i + 500).map((id, k) => ({ id, owner_id: 'bench', bot_id: botIds[(i + k) % botIds.length]!, user_id: `u${k}`, title: '', context: {}, last_offset: 50, journey_state: {} })),
    });
  }
  const msgs = await store.collection(collections.messages);
  for (let i = 0; i < messages; i += 500) {
    const docs = [];
    for (let k = i; k < Math.min(messages, i + 500); k++) {
      docs.push({
        id: newId('msg'),
        owner_id: 'bench',
        conversation_id: convIds[k % convIds.length]!,
        offset: Math.floor(k / convIds.length) + 1,
        role: k % 2 ? 'assistant' : 'user',
        content: `message ${k}: ${'lorem ipsum dolor sit amet '.repeat(4)}`,
        agent_steps: k % 2 ? [{ type: 'guideline_matched', guideline_id: 'gdl_x', condition: 'c', action: 'a', score: 0.9 }] : [],
        pdf_names: [],
        source_citations: [],
        meta_data: {},
      });
    }
    await msgs.insertMany({ docs });
  }
  return 20 + convIds.length + messages;
}

/** Creates the indexes Otto's specs declare, with the raw driver (what migrations do on the Otto side). */
async function rawIndexes(client: MongoClient, database: string): Promise<void> {
  for (const spec of domainCollections) {
    const c = client.db(database).collection(spec.name);
    await c.createIndex({ _id: 1 }).catch(() => {});
    for (const index of spec.indexes) await c.createIndex(Object.fromEntries(index.fields), { name: index.name, unique: index.unique ?? false });
  }
}

export async function run(argv: string[]): Promise<number> {
  const values = parseBenchArgs(
    {
    args: argv,
    options: {
      messages: { type: 'string', default: '20000' },
      'batch-size': { type: 'string', default: '500' },
      rounds: { type: 'string', default: '2' },
      'mongodb-uri': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    },
    usage,
  );
  if (typeof values === 'number') return values;
  const messages = Number(values.messages);
  const batchSize = Number(values['batch-size']);
  const rounds = Number(values.rounds);
  if (![messages, batchSize, rounds].every((n) => Number.isSafeInteger(n) && n > 0) || batchSize > 10_000) {
    console.error(`--messages, --batch-size (<= 10000) and --rounds must be positive integers\n\n${usage}`);
    return 2;
  }
  const { MongoClient } = await import('mongodb');
  let uri = values['mongodb-uri'] ?? process.env.OTTO_BENCH_MONGODB_URI;
  let stopServer: (() => Promise<void>) | undefined;
  if (!uri) {
    const { startFerretDb } = await import('../test/support/mongodb-server.ts');
    progress('starting a FerretDB test server (set OTTO_BENCH_MONGODB_URI or --mongodb-uri to use another server)…');
    const server = await startFerretDb();
    uri = server.uri;
    stopServer = () => server.stop();
  }
  const base = uri.split('?', 1)[0]!.replace(/\/[^/]*$/, '').replace(/\/$/, '');
  const dir = mkdtempSync(join(tmpdir(), 'otto-bench-transfer-'));
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  const databases: string[] = [];
  try {
    await client.connect();
    const source = await createSqliteStore({ path: join(dir, 'source.db') });
    progress(`seeding SQLite with ${messages} messages…`);
    const total = await seedSource(source, messages);
    // The raw side's input: the same documents, read once, in memory.
    const byCollection = new Map<string, Array<Record<string, unknown>>>();
    for (const spec of domainCollections) {
      const c = await source.collection<Doc>({ name: spec.name, schemaVersion: 1, indexes: [] });
      const docs: Array<Record<string, unknown>> = [];
      for await (const batch of c.scan({ batchSize: 1000 })) for (const { id, ...rest } of batch) docs.push({ _id: id, ...rest });
      if (docs.length > 0) byCollection.set(spec.name, docs);
    }
    progress(`${total} documents; ${rounds} round(s), batch ${batchSize}, server ${base.replace(/\/\/[^@]*@/, '//')}`);

    const ottoRates: number[] = [];
    const rawRates: number[] = [];
    const runRaw = async (r: number): Promise<void> => {
      const database = `bench_transfer_raw_${process.pid}_${r}`;
      databases.push(database);
      await rawIndexes(client, database);
      const started = performance.now();
      let copied = 0;
      for (const [name, docs] of byCollection) {
        const c = client.db(database).collection(name);
        for (let i = 0; i < docs.length; i += batchSize) {
          const slice = docs.slice(i, i + batchSize).map((d) => ({ ...d }));
          await c.insertMany(slice as never[]);
          copied += slice.length;
        }
      }
      const rate = copied / ((performance.now() - started) / 1000);
      rawRates.push(rate);
      progress(`round ${r + 1}: raw insertMany ${Math.round(rate)} docs/s`);
    };
    const runOtto = async (r: number): Promise<void> => {
      const database = `bench_transfer_otto_${process.pid}_${r}`;
      databases.push(database);
      const target = await openStoreUrlMigrated(`${base}/${database}`);
      try {
        const started = performance.now();
        const summary = await transfer({ from: source, to: target, batchSize, collections: [...byCollection.keys()] });
        const rate = summary.copied / ((performance.now() - started) / 1000);
        ottoRates.push(rate);
        progress(`round ${r + 1}: otto transfer ${Math.round(rate)} docs/s (${summary.copied} docs)`);
      } finally {
        await target.close();
      }
    };
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        await runRaw(r);
        await runOtto(r);
      } else {
        await runOtto(r);
        await runRaw(r);
      }
    }
    await source.close();
    const otto = median(ottoRates);
    const raw = median(rawRates);
    console.log(
      JSON.stringify({
        bench: 'transfer',
        from: 'sqlite',
        to: 'mongodb',
        documents: total,
        batch_size: batchSize,
        rounds,
        otto_docs_per_s: Math.round(otto),
        raw_docs_per_s: Math.round(raw),
        ratio: Math.round((otto / raw) * 1000) / 1000,
        target_ratio: 0.7,
      }),
    );
    return 0;
  } finally {
    for (const database of databases) await client.db(database).dropDatabase().catch(() => {});
    await client.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    await stopServer?.();
  }
}
