/**
 * `npm run bench -- storage`: the chat-history workload, through Otto's storage contract
 * and through the raw driver doing the same work with the same durability, on SQLite and
 * MongoDB. Prints one JSON line per engine on stdout; progress goes to stderr.
 *
 * Workload (per side): C conversations are created (setup, not measured); then C × M
 * messages are appended as 2-message turns (user + bot), one write per turn, round-robin
 * over the conversations, one turn at a time; then R reads of the latest 50 messages of a
 * conversation picked by a seeded PRNG (the same sequence for both sides).
 *
 * Both sides run in the same process, on fresh files/databases, alternating in blocks
 * (250 turns, then 10 pages; the side going first swaps every block) so that machine noise
 * hits both alike. Before the timed reads each side reads 20 pages untimed (statement
 * caches, connection pools).
 */
import { newId } from '../src/domain/ids.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { MongoClient } from 'mongodb';
import { collections } from '../src/domain/collections.ts';
import type { Doc, NewDoc, Store } from '../src/storage/contract.ts';
import { createSqliteStore } from '../src/storage/sqlite/sqlite-store.ts';
import { eq } from '../src/storage/where.ts';
import { startCountingProxy, type CountingProxy } from './support/counting-proxy.ts';
import { parseBenchArgs } from './support/args.ts';
import { benchProgress, percentile, round } from './support/figures.ts';

const progress = benchProgress('storage');

const usage = `Usage: npm run bench -- storage [--flags]

Chat-history workload through Otto's storage contract ("otto") and through the raw
driver doing the same work with the same durability ("raw"). One JSON line per engine:
  append_per_s       messages appended per second (2 per turn, one write per turn)
  page_p50/p99_ms    latency of reading the latest 50 messages of a conversation
  *_ratio            otto / raw
  round_trips_*      (MongoDB) client->server wire messages per turn / per page,
                     counted by a loopback proxy over the measured phases only

Flags:
  --engine E            sqlite | mongodb | all (default all)
  --conversations C     default 1000 (sqlite), 200 (mongodb)
  --messages M          messages per conversation, even; default 100 (sqlite), 20 (mongodb)
  --reads R             pages read; default 1000
  --seed N              PRNG seed for the read sequence (default 42)
  --synchronous S       SQLite synchronous for both sides: FULL (default, Otto's default) | NORMAL
  --dir DIR             where the SQLite files go (default the OS temp dir); removed afterwards
  --mongodb-uri URI     MongoDB server (single host, no TLS); else OTTO_BENCH_MONGODB_URI;
                        else a FerretDB test server is started (and stopped) here
  -h, --help            this help

Targets (reported, not asserted): SQLite appends >= 0.8x raw, page p99 <= 1.5x raw;
MongoDB appends >= 0.5x raw, page p99 <= 1.5x raw, <= 2 round trips per turn.`;

const DEFAULTS = {
  sqlite: { conversations: 1000, messages: 100, reads: 1000 },
  mongodb: { conversations: 200, messages: 20, reads: 1000 },
} as const;
const PAGE_SIZE = 50;
const TURN_BLOCK = 250;
const PAGE_BLOCK = 10;
const WARMUP_PAGES = 20;

type EngineName = keyof typeof DEFAULTS;

interface Workload {
  conversations: number;
  messages: number;
  reads: number;
  seed: number;
}

/** One way of doing the workload's operations (Otto's contract, or the raw driver). */
interface Side {
  readonly name: 'otto' | 'raw';
  /** Creates the conversations (last_offset 0). Not measured. */
  setup(conversationIds: string[]): Promise<void>;
  /** Appends a user and a bot message to the conversation in one write. */
  turn(conversationId: string, user: string, bot: string): Promise<void>;
  /** Reads the latest PAGE_SIZE messages of the conversation; returns how many came back. */
  page(conversationId: string): Promise<number>;
  /** How many messages are stored (checked after the run). */
  count(): Promise<number>;
  close(): Promise<void>;
}

type Message = Doc & { conversation_id: string; offset: number; role: 'user' | 'bot'; content: string };
type Conversation = Doc & { owner_id: string; bot_id: string; user_id: string; title: string; last_offset: number };

export async function run(argv: string[]): Promise<number> {
  const values = parseBenchArgs(
    {
    args: argv,
    options: {
      engine: { type: 'string', default: 'all' },
      conversations: { type: 'string' },
      messages: { type: 'string' },
      reads: { type: 'string' },
      seed: { type: 'string', default: '42' },
      synchronous: { type: 'string', default: 'FULL' },
      dir: { type: 'string' },
      'mongodb-uri': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    },
    usage,
  );
  if (typeof values === 'number') return values;
  const engines: EngineName[] =
    values.engine === 'all' ? ['sqlite', 'mongodb'] : values.engine === 'sqlite' || values.engine === 'mongodb' ? [values.engine] : [];
  if (engines.length === 0) return bad(`--engine must be sqlite, mongodb or all, not ${JSON.stringify(values.engine)}`);
  const synchronous = values.synchronous.toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') return bad('--synchronous must be FULL or NORMAL');
  const numbers: Partial<Record<'conversations' | 'messages' | 'reads' | 'seed', number>> = {};
  for (const key of ['conversations', 'messages', 'reads', 'seed'] as const) {
    const text = values[key];
    if (text === undefined) continue;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < (key === 'seed' ? 0 : 1)) return bad(`--${key} must be a ${key === 'seed' ? 'non-negative' : 'positive'} integer, not ${JSON.stringify(text)}`);
    numbers[key] = n;
  }
  if (numbers.messages !== undefined && numbers.messages % 2 !== 0) return bad('--messages must be even (messages are appended as 2-message turns)');

  for (const engine of engines) {
    const workload: Workload = {
      conversations: numbers.conversations ?? DEFAULTS[engine].conversations,
      messages: numbers.messages ?? DEFAULTS[engine].messages,
      reads: numbers.reads ?? DEFAULTS[engine].reads,
      seed: numbers.seed ?? 42,
    };
    const started = performance.now();
    const line =
      engine === 'sqlite'
        ? await benchSqlite(workload, synchronous, values.dir ?? tmpdir())
        : await benchMongo(workload, values['mongodb-uri'] ?? process.env.OTTO_BENCH_MONGODB_URI);
    console.log(JSON.stringify(line));
    progress(`${engine}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return 0;
}

function bad(message: string): number {
  console.error(`${message}\n\n${usage}`);
  return 2;
}

// --- SQLite -------------------------------------------------------------------------

async function benchSqlite(workload: Workload, synchronous: 'FULL' | 'NORMAL', parent: string): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(resolve(parent), 'otto-bench-storage-'));
  progress(`sqlite: C=${workload.conversations} M=${workload.messages} R=${workload.reads}, synchronous ${synchronous}, files in ${dir}`);
  const sides: Side[] = [];
  try {
    const store = await createSqliteStore({ path: join(dir, 'otto.db'), synchronous });
    sides.push(await ottoSide(store));
    const raw = rawSqliteSide(join(dir, 'raw.db'), synchronous);
    sides.push(raw.side);
    // Same durability on both sides, read back from SQLite itself (Otto's FULL is its own WAL
    // fsync before acknowledging, over SQLite's NORMAL: what it guarantees is `store.synchronous`).
    const pragma = (db: DatabaseSync, name: string) => Object.values(db.prepare(`PRAGMA ${name}`).get() as object)[0];
    const levels: Record<string, string> = { '1': 'NORMAL', '2': 'FULL' };
    const settings = [
      `journal_mode=${pragma(store.database, 'journal_mode')} synchronous=${store.synchronous} busy_timeout=${pragma(store.database, 'busy_timeout')}`,
      `journal_mode=${pragma(raw.database, 'journal_mode')} synchronous=${levels[String(pragma(raw.database, 'synchronous'))] ?? '?'} busy_timeout=${pragma(raw.database, 'busy_timeout')}`,
    ];
    if (settings[0] !== settings[1]) throw new Error(`the two databases differ: otto ${settings[0]}, raw ${settings[1]}`);
    progress(`sqlite: both databases ${settings[0]}`);
    const result = await measure('sqlite', workload, sides[0]!, sides[1]!);
    return { bench: 'storage', engine: 'sqlite', ...shape(workload, result) };
  } finally {
    for (const side of sides) await side.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The hand-written equivalent: real columns for what is queried, the JSON document
 * beside them, the same indexes as Otto's collections (unique (conversation_id, offset)).
 */
function rawSqliteSide(path: string, synchronous: 'FULL' | 'NORMAL'): { side: Side; database: DatabaseSync } {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`PRAGMA synchronous = ${synchronous}`);
  db.exec(`
    CREATE TABLE conversations (
      id TEXT PRIMARY KEY NOT NULL, owner_id TEXT NOT NULL, bot_id TEXT NOT NULL, user_id TEXT NOT NULL,
      created_at TEXT NOT NULL, last_offset INTEGER NOT NULL DEFAULT 0, doc TEXT NOT NULL);
    CREATE INDEX conversations_owner_created ON conversations (owner_id, created_at);
    CREATE INDEX conversations_bot_created ON conversations (bot_id, created_at);
    CREATE INDEX conversations_user_created ON conversations (user_id, created_at);
    CREATE TABLE messages (id TEXT PRIMARY KEY NOT NULL, conversation_id TEXT NOT NULL, "offset" INTEGER NOT NULL, doc TEXT NOT NULL);
    CREATE UNIQUE INDEX messages_conversation_offset ON messages (conversation_id, "offset");
  `);
  const insertConversation = db.prepare(
    'INSERT INTO conversations (id, owner_id, bot_id, user_id, created_at, last_offset, doc) VALUES (?, ?, ?, ?, ?, 0, ?)',
  );
  const bump = db.prepare('UPDATE conversations SET last_offset = last_offset + 2 WHERE id = ? RETURNING last_offset');
  const insertMessage = db.prepare('INSERT INTO messages (id, conversation_id, "offset", doc) VALUES (?, ?, ?, ?)');
  const latest = db.prepare('SELECT doc FROM messages WHERE conversation_id = ? ORDER BY "offset" DESC LIMIT ?');
  const count = db.prepare('SELECT COUNT(*) AS n FROM messages');

  const inTransaction = <R>(fn: () => R): R => {
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      db.exec('COMMIT');
      return result;
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
  };

  const side: Side = {
    name: 'raw',
    async setup(ids) {
      inTransaction(() => {
        for (const id of ids) {
          const c = rawConversation(id);
          insertConversation.run(c.id, c.owner_id, c.bot_id, c.user_id, c.created_at, JSON.stringify(c));
        }
      });
    },
    async turn(conversationId, user, bot) {
      inTransaction(() => {
        const row = bump.get(conversationId) as { last_offset: number } | undefined;
        if (!row) throw new Error(`no conversation ${conversationId}`);
        const at = new Date().toISOString();
        for (const m of [rawMessage(conversationId, row.last_offset - 1, 'user', user, at), rawMessage(conversationId, row.last_offset, 'bot', bot, at)]) {
          insertMessage.run(m.id, m.conversation_id, m.offset, JSON.stringify(m));
        }
      });
    },
    async page(conversationId) {
      const rows = latest.all(conversationId, PAGE_SIZE) as Array<{ doc: string }>;
      return rows.map((r) => JSON.parse(r.doc) as Message).length;
    },
    async count() {
      return Number((count.get() as { n: number }).n);
    },
    async close() {
      if (db.isOpen) db.close();
    },
  };
  return { side, database: db };
}

// --- MongoDB ------------------------------------------------------------------------

async function benchMongo(workload: Workload, givenUri: string | undefined): Promise<Record<string, unknown>> {
  // Imported here so that the SQLite benchmark runs even without the MongoDB pieces.
  const { createMongoStore, parseMongoUri } = await import('../src/storage/mongodb/mongodb-store.ts');
  const { MongoClient } = await import('mongodb');

  let uri = givenUri;
  let stopServer: (() => Promise<void>) | undefined;
  if (uri === undefined || uri === '') {
    const { startFerretDb } = await import('../test/support/mongodb-server.ts');
    progress('mongodb: starting a FerretDB test server (set OTTO_BENCH_MONGODB_URI or --mongodb-uri to use another server)…');
    const server = await startFerretDb();
    uri = server.uri;
    stopServer = () => server.stop();
  }
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const target = proxyTarget(uri, parseMongoUri);
    const ottoProxy = await startCountingProxy({ targetHost: target.host, targetPort: target.port });
    cleanups.unshift(() => ottoProxy.close());
    const rawProxy = await startCountingProxy({ targetHost: target.host, targetPort: target.port });
    cleanups.unshift(() => rawProxy.close());
    const suffix = `${process.pid}_${Date.now().toString(36)}`;
    const ottoDb = `otto_bench_${suffix}`;
    const rawDb = `otto_bench_raw_${suffix}`;
    progress(`mongodb: C=${workload.conversations} M=${workload.messages} R=${workload.reads} on ${parseMongoUri(uri).hosts.join(',')}, databases ${ottoDb} / ${rawDb}`);

    const store = await createMongoStore({ uri: target.through(ottoProxy.port), database: ottoDb });
    cleanups.unshift(async () => {
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    });
    const otto = await ottoSide(store);
    const client = new MongoClient(target.through(rawProxy.port), { serverSelectionTimeoutMS: 10_000 });
    await client.connect();
    cleanups.unshift(async () => {
      await client.db(rawDb).dropDatabase().catch(() => {});
      await client.close();
    });
    const raw = await rawMongoSide(client, rawDb);
    progress(`mongodb: server ${(await store.health()).server_version ?? 'unknown'}`);

    const result = await measure('mongodb', workload, otto, raw, { otto: ottoProxy, raw: rawProxy });
    const trips = result.roundTrips!;
    return {
      bench: 'storage',
      engine: 'mongodb',
      ...shape(workload, result),
      round_trips_per_turn: round(trips.otto.turn, 3),
      raw_round_trips_per_turn: round(trips.raw.turn, 3),
      round_trips_per_page: round(trips.otto.page, 3),
      raw_round_trips_per_page: round(trips.raw.page, 3),
    };
  } finally {
    for (const cleanup of cleanups) await cleanup().catch((error: unknown) => progress(`mongodb: cleanup failed: ${String(error)}`));
    await stopServer?.();
  }
}

/** Where the proxy forwards to, and the connection string that goes through a proxy on `port`. */
function proxyTarget(uri: string, parse: (uri: string) => { scheme: string; hosts: string[]; values: Map<string, string> }) {
  const parts = parse(uri);
  if (parts.scheme !== 'mongodb' || parts.hosts.length !== 1) {
    throw new Error('counting round trips needs a single-host mongodb:// connection string (no mongodb+srv, no host list)');
  }
  if (['tls', 'ssl'].some((o) => parts.values.get(o)?.toLowerCase() === 'true')) {
    throw new Error('counting round trips needs a connection without TLS (the proxy reads the wire protocol)');
  }
  const hostPort = parts.hosts[0]!;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostPort) ?? /^([^:]+)(?::(\d+))?$/.exec(hostPort);
  if (!m) throw new Error('counting round trips needs a host:port server (not a socket path)');
  const host = m[1]!;
  const port = Number(m[2] ?? 27017);
  // Keep credentials, path and options; swap the host for the proxy and pin the driver to it.
  const split = /^(mongodb:\/\/)([^/?#]*@)?([^/?#]*)([^#]*)/i.exec(uri.trim())!;
  let rest = split[4]!;
  if (!parts.values.has('directconnection')) {
    if (rest.includes('?')) rest += `${rest.endsWith('?') || rest.endsWith('&') ? '' : '&'}directConnection=true`;
    else rest = `${rest === '' ? '/' : rest}?directConnection=true`;
  }
  return {
    host,
    port,
    through: (proxyPort: number) => `${split[1]}${split[2] ?? ''}127.0.0.1:${proxyPort}${rest}`,
  };
}

/** The raw driver: `$inc` upsert + insertMany per turn, find/sort/limit per page, the same indexes as Otto's. */
async function rawMongoSide(client: MongoClient, database: string): Promise<Side> {
  const db = client.db(database);
  interface RawConversation {
    _id: string;
    owner_id: string;
    bot_id: string;
    user_id: string;
    title: string;
    last_offset: number;
    version: number;
    created_at: string;
    updated_at: string;
  }
  interface RawMessage {
    _id: string;
    conversation_id: string;
    offset: number;
    role: string;
    content: string;
    version: number;
    created_at: string;
    updated_at: string;
  }
  const conversations = db.collection<RawConversation>('conversations');
  const messages = db.collection<RawMessage>('messages');
  await db.dropDatabase();
  for (const spec of [collections.conversations, collections.messages]) {
    await db.collection(spec.name).createIndexes(
      spec.indexes.map((index) => ({
        name: index.name,
        key: Object.fromEntries(index.fields),
        ...('unique' in index && index.unique ? { unique: true } : {}),
      })),
    );
  }
  const toRaw = <R extends { _id: string }>(doc: Doc): R => {
    const { id, ...rest } = doc;
    return { _id: id, ...rest } as unknown as R;
  };
  return {
    name: 'raw',
    async setup(ids) {
      for (let i = 0; i < ids.length; i += 500) await conversations.insertMany(ids.slice(i, i + 500).map((id) => toRaw<RawConversation>(rawConversation(id))));
    },
    async turn(conversationId, user, bot) {
      const after = await conversations.findOneAndUpdate({ _id: conversationId }, { $inc: { last_offset: 2 } }, { upsert: true, returnDocument: 'after' });
      const last = after?.last_offset;
      if (typeof last !== 'number') throw new Error(`no last_offset for ${conversationId}`);
      const at = new Date().toISOString();
      await messages.insertMany([
        toRaw<RawMessage>(rawMessage(conversationId, last - 1, 'user', user, at)),
        toRaw<RawMessage>(rawMessage(conversationId, last, 'bot', bot, at)),
      ]);
    },
    async page(conversationId) {
      return (await messages.find({ conversation_id: conversationId }).sort({ offset: -1 }).limit(PAGE_SIZE).toArray()).length;
    },
    count: () => messages.countDocuments({}),
    async close() {},
  };
}

// --- Otto (either engine) -------------------------------------------------------------

/** The workload through the storage contract, as domain code does it. */
async function ottoSide(store: Store): Promise<Side> {
  const conversations = await store.collection<Conversation>(collections.conversations);
  const messages = await store.collection<Message>(collections.messages);
  await store.collection(collections.counters);
  return {
    name: 'otto',
    async setup(ids) {
      for (let i = 0; i < ids.length; i += 500) {
        await conversations.insertMany({ docs: ids.slice(i, i + 500).map((id) => conversationFields(id)) });
      }
    },
    async turn(conversationId, user, bot) {
      // Reserve two offsets and write both messages in one call: one transaction on SQLite,
      // one $inc plus one insertMany on MongoDB. The offset counter lives in `_counters`
      // (keyed by the conversation id), off the indexed conversation document, so bumping it
      // rewrites no index entries — like the raw side's plain last_offset column.
      const at = new Date().toISOString();
      await messages.insertNumbered({
        // Ids are made before the offsets are known, as the services make them.
        docs: [
          { ...messageFields(conversationId, 0, 'user', user, at), id: newId('msg') },
          { ...messageFields(conversationId, 0, 'bot', bot, at), id: newId('msg') },
        ],
        field: 'offset',
        counter: { collection: collections.counters.name, id: conversationId, field: 'last_offset' },
      });
    },
    async page(conversationId) {
      const page = await messages.find({
        where: eq('conversation_id', conversationId),
        sort: [{ field: 'offset', direction: 'desc' }],
        limit: PAGE_SIZE,
      });
      return page.items.length;
    },
    count: () => messages.count(),
    close: () => store.close(),
  };
}

// --- Documents ------------------------------------------------------------------------

function conversationFields(id: string): NewDoc<Conversation> {
  const n = Number(id.slice(5));
  return { id, owner_id: `owner_${n % 50}`, bot_id: `bot_${n % 20}`, user_id: `user_${n}`, title: `Conversation ${n}`, last_offset: 0 };
}

/** A conversation as Otto stores it (version and timestamps included), for the raw sides. */
function rawConversation(id: string): Conversation {
  const at = new Date().toISOString();
  return { ...conversationFields(id), version: 1, created_at: at, updated_at: at } as Conversation;
}

function messageFields(conversationId: string, offset: number, role: Message['role'], content: string, at: string): NewDoc<Message> {
  return { id: `${conversationId}_m${offset}`, conversation_id: conversationId, offset, role, content, created_at: at };
}

/** A message as Otto stores it (version and updated_at included), for the raw sides. */
function rawMessage(conversationId: string, offset: number, role: Message['role'], content: string, at: string): Message {
  return { ...messageFields(conversationId, offset, role, content, at), version: 1, updated_at: at } as Message;
}

/** 64 message texts of 100–200 characters, the same on every run. */
const TEXTS: string[] = (() => {
  const words = 'the a bot user order refund shipping please thanks when where how can you my your account help with status is was will today'.split(' ');
  const random = mulberry32(7);
  const out: string[] = [];
  for (let i = 0; i < 64; i++) {
    const length = 100 + Math.floor(random() * 101);
    let text = '';
    while (text.length < length) text += `${words[Math.floor(random() * words.length)]} `;
    out.push(text.slice(0, length));
  }
  return out;
})();

// --- Measurement ----------------------------------------------------------------------

interface Measured {
  appendPerS: { otto: number; raw: number };
  pageMs: { otto: number[]; raw: number[] };
  roundTrips?: { otto: { turn: number; page: number }; raw: { turn: number; page: number } };
}

async function measure(engine: EngineName, workload: Workload, otto: Side, raw: Side, proxies?: { otto: CountingProxy; raw: CountingProxy }): Promise<Measured> {
  const sides = [otto, raw] as const;
  const { conversations: C, messages: M, reads: R } = workload;
  const ids = Array.from({ length: C }, (_, i) => `conv_${String(i).padStart(6, '0')}`);
  const turns = (C * M) / 2;

  progress(`${engine}: setup (${C} conversations per side)`);
  for (const side of sides) await side.setup(ids);

  // Appends: the same turns in the same order on both sides, alternating in blocks.
  progress(`${engine}: appending ${turns} turns (${C * M} messages) per side, alternating blocks of ${TURN_BLOCK} turns`);
  for (const p of proxiesOf(proxies)) p.reset();
  const appendMs = { otto: 0, raw: 0 };
  let nextReport = 0.1;
  for (let from = 0, block = 0; from < turns; from += TURN_BLOCK, block++) {
    const to = Math.min(turns, from + TURN_BLOCK);
    for (const side of block % 2 === 0 ? sides : [raw, otto]) {
      const started = performance.now();
      for (let t = from; t < to; t++) {
        await side.turn(ids[t % C]!, TEXTS[t % TEXTS.length]!, TEXTS[(t * 7 + 3) % TEXTS.length]!);
      }
      appendMs[side.name] += performance.now() - started;
    }
    if (to / turns >= nextReport) {
      progress(`${engine}: ${Math.round((to / turns) * 100)}% appended (otto ${(appendMs.otto / 1000).toFixed(1)} s, raw ${(appendMs.raw / 1000).toFixed(1)} s)`);
      while (to / turns >= nextReport) nextReport += 0.1;
    }
  }
  const turnTrips = proxies ? { otto: proxies.otto.messages / turns, raw: proxies.raw.messages / turns } : undefined;
  if (proxies) progress(`${engine}: append phase wire messages: otto ${JSON.stringify(proxies.otto.commands())}, raw ${JSON.stringify(proxies.raw.commands())}`);

  // Every message is there, once.
  for (const side of sides) {
    const stored = await side.count();
    if (stored !== C * M) throw new Error(`${engine} ${side.name}: ${stored} messages stored, expected ${C * M}`);
  }

  // Page reads: warm-up, then the seeded sequence on both sides, alternating in blocks.
  const expected = Math.min(PAGE_SIZE, M);
  for (const side of sides) for (let i = 0; i < Math.min(WARMUP_PAGES, C); i++) await side.page(ids[i]!);
  const random = mulberry32(workload.seed);
  const picks = Array.from({ length: R }, () => ids[Math.floor(random() * C)]!);
  progress(`${engine}: reading ${R} pages per side, alternating blocks of ${PAGE_BLOCK}`);
  for (const p of proxiesOf(proxies)) p.reset();
  const pageMs = { otto: [] as number[], raw: [] as number[] };
  for (let from = 0, block = 0; from < R; from += PAGE_BLOCK, block++) {
    for (const side of block % 2 === 0 ? sides : [raw, otto]) {
      for (let i = from; i < Math.min(R, from + PAGE_BLOCK); i++) {
        const started = performance.now();
        const n = await side.page(picks[i]!);
        pageMs[side.name].push(performance.now() - started);
        if (n !== expected) throw new Error(`${engine} ${side.name}: a page had ${n} messages, expected ${expected}`);
      }
    }
  }
  const pageTrips = proxies ? { otto: proxies.otto.messages / R, raw: proxies.raw.messages / R } : undefined;
  if (proxies) progress(`${engine}: read phase wire messages: otto ${JSON.stringify(proxies.otto.commands())}, raw ${JSON.stringify(proxies.raw.commands())}`);

  const result: Measured = {
    appendPerS: { otto: (C * M) / (appendMs.otto / 1000), raw: (C * M) / (appendMs.raw / 1000) },
    pageMs,
  };
  if (turnTrips && pageTrips) {
    result.roundTrips = { otto: { turn: turnTrips.otto, page: pageTrips.otto }, raw: { turn: turnTrips.raw, page: pageTrips.raw } };
  }
  report(engine, result);
  return result;
}

function proxiesOf(proxies: { otto: CountingProxy; raw: CountingProxy } | undefined): CountingProxy[] {
  return proxies ? [proxies.otto, proxies.raw] : [];
}

/** The common fields of the JSON line. */
function shape(workload: Workload, m: Measured): Record<string, number> {
  const p99 = percentile(m.pageMs.otto, 0.99);
  const rawP99 = percentile(m.pageMs.raw, 0.99);
  return {
    conversations: workload.conversations,
    messages: workload.messages,
    reads: workload.reads,
    append_per_s: round(m.appendPerS.otto, 1),
    raw_append_per_s: round(m.appendPerS.raw, 1),
    append_ratio: round(m.appendPerS.otto / m.appendPerS.raw, 3),
    page_p50_ms: round(percentile(m.pageMs.otto, 0.5), 3),
    page_p99_ms: round(p99, 3),
    raw_page_p99_ms: round(rawP99, 3),
    page_p99_ratio: round(p99 / rawP99, 3),
  };
}

/** The targets, on stderr (reported, not asserted). */
function report(engine: EngineName, m: Measured): void {
  const appendRatio = m.appendPerS.otto / m.appendPerS.raw;
  const p99Ratio = percentile(m.pageMs.otto, 0.99) / percentile(m.pageMs.raw, 0.99);
  const minAppend = engine === 'sqlite' ? 0.8 : 0.5;
  const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
  progress(`${engine}: appends ${appendRatio.toFixed(2)}x raw (target >= ${minAppend}x): ${verdict(appendRatio >= minAppend)}`);
  progress(
    `${engine}: page p99 ${p99Ratio.toFixed(2)}x raw (target <= 1.5x): ${verdict(p99Ratio <= 1.5)}` +
      ` [p50 otto ${percentile(m.pageMs.otto, 0.5).toFixed(3)} ms, raw ${percentile(m.pageMs.raw, 0.5).toFixed(3)} ms]`,
  );
  if (m.roundTrips) progress(`${engine}: ${m.roundTrips.otto.turn.toFixed(2)} round trips per turn (target <= 2): ${verdict(m.roundTrips.otto.turn <= 2)}`);
}

/** A small seeded PRNG (mulberry32): the same sequence for the same seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
