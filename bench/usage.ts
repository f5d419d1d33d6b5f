/**
 * `npm run bench -- usage`: the usage report (`GET /usage`, `otto usage`) over N activity
 * records, through Otto (UsageService.report → the storage contract's `aggregate`) and through
 * a raw aggregation doing the same work on the same data in the same run: a hand-written SQL
 * GROUP BY with node:sqlite, and a raw `$match` + `$group` + `$sum` pipeline with the driver.
 * Prints one JSON line per engine and query on stdout (medians and otto/raw ratios); progress
 * goes to stderr.
 *
 * Data: N records spread over 30 days of June 2026, 100 users, 200 bots, 5 models, 5% failed
 * calls and 2% budget refusals (which reports leave out), loaded with the raw driver (not
 * measured) into the collection migration 0004 creates, with its indexes.
 *
 * Queries (each run R times per side, sides alternating, after one untimed run of each):
 *   admin_by_day, admin_by_bot, admin_by_model, admin_by_user: the whole month, every user;
 *   user_by_day: one user's month (what a non-admin sees; served by the owner_day index);
 *   admin_week_by_model: one week (the day range served by the day_owner index).
 * Both sides' figures are compared; a difference fails the run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Document } from 'mongodb';
import { collections } from '../src/domain/collections.ts';
import { costNanoUsd, nanoToUsd, type ActivityLog } from '../src/domain/index.ts';
import { UsageService, type Caller, type UsageReport } from '../src/services/index.ts';
import { createSqliteStore } from '../src/storage/sqlite/sqlite-store.ts';
import { parseBenchArgs } from './support/args.ts';
import { benchProgress, median } from './support/figures.ts';

const progress = benchProgress('usage');

const usage = `Usage: npm run bench -- usage [--flags]

Usage report over N activity records: Otto (UsageService.report on the storage contract's
aggregate) against a raw aggregation doing the same on the same data, same run.
One JSON line per engine and query:
  otto_ms / raw_ms   median time of one report
  ratio              otto_ms / raw_ms (1.0 = as fast as the raw driver)
  rows               groups in the report

Flags:
  --engine E          sqlite | mongodb | all (default all)
  --records N         default 1000000 (sqlite), 20000 (mongodb: FerretDB's $group is slow)
  --repeats R         timed runs per query and side (default 3)
  --dir DIR           where the SQLite file goes (default the OS temp dir); removed afterwards
  --mongodb-uri URI   MongoDB server; else OTTO_BENCH_MONGODB_URI; else a FerretDB test
                      server is started (and stopped) here
  -h, --help          this help`;

/**
 * FerretDB v1 (the test server) runs `$group` in Go over every matching document, loaded one
 * by one from its SQLite backend, and compares each with every group found so far: one report
 * over 100,000 records took about 40 s on the reference machine (2 shared cores), so its default
 * is smaller. `--records` sets any size.
 */
const DEFAULT_RECORDS: Record<'sqlite' | 'mongodb', number> = { sqlite: 1_000_000, mongodb: 20_000 };
const USERS = 100;
const BOTS = 200;
const MODELS = [
  { model: 'gpt-4o', input: 2.5, output: 10 },
  { model: 'gpt-4o-mini', input: 0.15, output: 0.6 },
  { model: 'gpt-4.1', input: 2, output: 8 },
  { model: 'o3-mini', input: 1.1, output: 4.4 },
  { model: 'claude-sonnet-4', input: 3, output: 15 },
];
const COUNTED = ['ok', 'error', 'timeout'];
const GROUP_FIELD = { day: 'day', bot: 'bot_id', model: 'model', user: 'owner_id' } as const;

interface Query {
  name: string;
  caller: Caller;
  from: string;
  to: string;
  group_by: keyof typeof GROUP_FIELD;
}

const admin: Caller = { owner_id: 'usr_admin', admin: true };
const QUERIES: Query[] = [
  { name: 'admin_by_day', caller: admin, from: '2026-06-01', to: '2026-06-30', group_by: 'day' },
  { name: 'admin_by_bot', caller: admin, from: '2026-06-01', to: '2026-06-30', group_by: 'bot' },
  { name: 'admin_by_model', caller: admin, from: '2026-06-01', to: '2026-06-30', group_by: 'model' },
  { name: 'admin_by_user', caller: admin, from: '2026-06-01', to: '2026-06-30', group_by: 'user' },
  { name: 'user_by_day', caller: { owner_id: 'usr_007', admin: false }, from: '2026-06-01', to: '2026-06-30', group_by: 'day' },
  { name: 'admin_week_by_model', caller: admin, from: '2026-06-08', to: '2026-06-14', group_by: 'model' },
];

/** The same raw figures both sides must agree on. */
type RawRow = { key: string; calls: number; tokens_in: number; tokens_out: number; nano: number };

/** Record i of the data set (deterministic). */
function record(i: number): ActivityLog {
  // mulberry32, seeded by the record's number.
  let x = (i * 0x9e3779b9) >>> 0;
  const next = () => {
    x = (x + 0x6d2b79f5) >>> 0;
    let t = x;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const model = MODELS[next() % MODELS.length]!;
  const roll = next() % 100;
  const outcome = roll < 2 ? 'budget_refused' : roll < 6 ? 'error' : roll < 7 ? 'timeout' : 'ok';
  const tokens_in = outcome === 'ok' ? 50 + (next() % 4000) : 0;
  const tokens_out = outcome === 'ok' ? 10 + (next() % 1000) : 0;
  const nano = costNanoUsd({ tokens_in, tokens_out, input_usd_per_1m: model.input, output_usd_per_1m: model.output });
  const at = new Date(Date.UTC(2026, 5, 1) + (next() % (30 * 86_400)) * 1000).toISOString();
  return {
    id: `act_${String(i).padStart(8, '0')}`,
    version: 1,
    created_at: at,
    updated_at: at,
    owner_id: `usr_${String(next() % USERS).padStart(3, '0')}`,
    bot_id: `bot_${String(next() % BOTS).padStart(3, '0')}`,
    conversation_id: `conv_${next() % 100_000}`,
    provider: 'openai',
    model: model.model,
    tokens_in,
    tokens_out,
    latency_ms: next() % 5000,
    outcome,
    cost_usd: nanoToUsd(nano),
    cost_nano_usd: nano,
    priced: true,
    day: at.slice(0, 10),
  } as ActivityLog;
}

function fromReport(report: UsageReport): RawRow[] {
  return report.rows.map((r) => ({ key: r.key, calls: r.calls, tokens_in: r.tokens_in, tokens_out: r.tokens_out, nano: Math.round(r.cost_usd * 1e9) }));
}

function sortRows(rows: RawRow[]): RawRow[] {
  return rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Runs both sides on every query, alternating, and prints one line per query. Throws when their figures differ. */
async function measure(args: { engine: string; records: number; repeats: number; otto: (q: Query) => Promise<RawRow[]>; raw: (q: Query) => Promise<RawRow[]>; extra?: Record<string, unknown> }): Promise<void> {
  for (const q of QUERIES) {
    const [o, r] = [await args.otto(q), sortRows(await args.raw(q))];
    if (JSON.stringify(o) !== JSON.stringify(r)) throw new Error(`${args.engine} ${q.name}: otto and raw disagree:\n${JSON.stringify(o.slice(0, 3))}\n${JSON.stringify(r.slice(0, 3))}`);
    const times = { otto: [] as number[], raw: [] as number[] };
    for (let i = 0; i < args.repeats; i++) {
      const order: Array<'otto' | 'raw'> = i % 2 === 0 ? ['otto', 'raw'] : ['raw', 'otto'];
      for (const side of order) {
        const started = performance.now();
        await args[side](q);
        times[side].push(performance.now() - started);
      }
    }
    const otto_ms = Math.round(median(times.otto) * 100) / 100;
    const raw_ms = Math.round(median(times.raw) * 100) / 100;
    const line = { bench: 'usage', engine: args.engine, records: args.records, query: q.name, group_by: q.group_by, rows: o.length, calls: o.reduce((n, row) => n + row.calls, 0), otto_ms, raw_ms, ratio: Math.round((median(times.otto) / median(times.raw)) * 100) / 100, repeats: args.repeats, ...args.extra };
    console.log(JSON.stringify(line));
  }
}

function ottoSide(usage: UsageService): (q: Query) => Promise<RawRow[]> {
  return async (q) => fromReport(await usage.report(q));
}

// --- SQLite -------------------------------------------------------------------------

async function benchSqlite(records: number, repeats: number, parent: string): Promise<void> {
  const dir = mkdtempSync(join(resolve(parent), 'otto-bench-usage-'));
  try {
    const store = await createSqliteStore({ path: join(dir, 'otto.db'), synchronous: 'NORMAL' });
    try {
      await store.collection(collections.ai_activity_logs);
      const db = store.database;
      progress(`sqlite: loading ${records} records into ${dir} …`);
      const insert = db.prepare('INSERT INTO ai_activity_logs (id, doc) VALUES (?, ?)');
      const started = performance.now();
      for (let i = 0; i < records; i += 50_000) {
        db.exec('BEGIN');
        for (let j = i; j < Math.min(records, i + 50_000); j++) insert.run(`act_${String(j).padStart(8, '0')}`, JSON.stringify(record(j)));
        db.exec('COMMIT');
        progress(`sqlite: ${Math.min(records, i + 50_000)}/${records}`);
      }
      db.exec('ANALYZE');
      progress(`sqlite: loaded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      const usage = await UsageService.open({ store });
      const statements = new Map<string, ReturnType<typeof db.prepare>>();
      // The raw aggregation: what one would write by hand against this table, on the same generated columns.
      const raw = async (q: Query): Promise<RawRow[]> => {
        const column = q.group_by === 'day' ? 'f_day' : q.group_by === 'bot' ? 'f_bot_id' : q.group_by === 'user' ? 'f_owner_id' : "json_extract(doc, '$.model')";
        const owner = q.caller.admin ? '' : ' AND f_owner_id = ?';
        const sql =
          `SELECT ${column} AS k, COUNT(*) AS n, SUM(json_extract(doc, '$.tokens_in')) AS ti, SUM(json_extract(doc, '$.tokens_out')) AS tout, SUM(json_extract(doc, '$.cost_nano_usd')) AS c ` +
          `FROM ai_activity_logs WHERE f_day >= ? AND f_day <= ?${owner} AND json_extract(doc, '$.outcome') IN ('ok', 'error', 'timeout') GROUP BY k`;
        let statement = statements.get(sql);
        if (!statement) statements.set(sql, (statement = db.prepare(sql)));
        const params = q.caller.admin ? [q.from, q.to] : [q.from, q.to, q.caller.owner_id];
        return (statement.all(...params) as Array<{ k: string; n: number; ti: number; tout: number; c: number }>).map((r) => ({ key: r.k, calls: r.n, tokens_in: r.ti, tokens_out: r.tout, nano: r.c }));
      };
      await measure({ engine: 'sqlite', records, repeats, otto: ottoSide(usage), raw, extra: { synchronous: 'NORMAL' } });
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- MongoDB ------------------------------------------------------------------------

async function benchMongo(records: number, repeats: number, givenUri: string | undefined): Promise<void> {
  const { createMongoStore } = await import('../src/storage/mongodb/mongodb-store.ts');
  let uri = givenUri;
  let stopServer: (() => Promise<void>) | undefined;
  if (!uri) {
    const { startFerretDb } = await import('../test/support/mongodb-server.ts');
    progress('mongodb: starting a FerretDB test server (set OTTO_BENCH_MONGODB_URI or --mongodb-uri to use another server)…');
    const server = await startFerretDb();
    uri = server.uri;
    stopServer = () => server.stop();
  }
  const database = `otto_bench_usage_${process.pid}_${Date.now().toString(36)}`;
  let store: import('../src/storage/mongodb/mongodb-store.ts').MongoStore | undefined;
  try {
    store = await createMongoStore({ uri, database });
    await store.collection(collections.ai_activity_logs);
    const build = await store.client.db('admin').command({ buildInfo: 1 });
    const ferret = build.ferretdb !== undefined || build.ferretdbVersion !== undefined || build.ferretdbFeatures !== undefined;
    const driver = store.db.collection<Document>('ai_activity_logs');
    progress(`mongodb: loading ${records} records into ${database} (${ferret ? 'FerretDB' : 'MongoDB'}) …`);
    const started = performance.now();
    for (let i = 0; i < records; i += 5000) {
      const batch: Document[] = [];
      for (let j = i; j < Math.min(records, i + 5000); j++) {
        const { id, ...rest } = record(j);
        batch.push({ _id: id, ...rest });
      }
      await driver.insertMany(batch, { ordered: false });
      if ((i / 5000) % 10 === 9 || i + 5000 >= records) progress(`mongodb: ${Math.min(records, i + 5000)}/${records} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
    progress(`mongodb: loaded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const usage = await UsageService.open({ store });
    // The raw pipeline. FerretDB v1's $group computes only its first accumulator correctly, so
    // there the raw side, like Otto, runs one pipeline per accumulator (in parallel).
    const raw = async (q: Query): Promise<RawRow[]> => {
      const match: Document = { day: { $gte: q.from, $lte: q.to }, outcome: { $in: COUNTED } };
      if (!q.caller.admin) match.owner_id = q.caller.owner_id;
      const key = `$${GROUP_FIELD[q.group_by]}`;
      const accumulators: Document = { n: { $sum: 1 }, ti: { $sum: '$tokens_in' }, tout: { $sum: '$tokens_out' }, c: { $sum: '$cost_nano_usd' } };
      const groups = ferret ? Object.entries(accumulators).map(([name, acc]) => ({ _id: key, [name]: acc })) : [{ _id: key, ...accumulators }];
      const results = await Promise.all(groups.map((group) => driver.aggregate([{ $match: match }, { $group: group }]).toArray()));
      const rows = new Map<string, RawRow>();
      for (const result of results) {
        for (const r of result) {
          const row = rows.get(String(r._id)) ?? { key: String(r._id), calls: 0, tokens_in: 0, tokens_out: 0, nano: 0 };
          row.calls += Number(r.n ?? 0);
          row.tokens_in += Number(r.ti ?? 0);
          row.tokens_out += Number(r.tout ?? 0);
          row.nano += Number(r.c ?? 0);
          rows.set(row.key, row);
        }
      }
      return [...rows.values()];
    };
    await measure({ engine: 'mongodb', records, repeats, otto: ottoSide(usage), raw, extra: { server: (await store.health()).server_version ?? 'unknown' } });
  } finally {
    if (store) {
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    }
    await stopServer?.();
  }
}

/** Runs the benchmark with `argv`; returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const values = parseBenchArgs(
    {
      args: argv,
      options: {
        engine: { type: 'string', default: 'all' },
        records: { type: 'string' },
        repeats: { type: 'string', default: '3' },
        dir: { type: 'string' },
        'mongodb-uri': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    usage,
  );
  if (typeof values === 'number') return values;
  const engines: Array<'sqlite' | 'mongodb'> = values.engine === 'all' ? ['sqlite', 'mongodb'] : values.engine === 'sqlite' || values.engine === 'mongodb' ? [values.engine] : [];
  if (engines.length === 0) {
    console.error(`--engine must be sqlite, mongodb or all\n\n${usage}`);
    return 2;
  }
  const repeats = Number(values.repeats);
  const records = values.records === undefined ? undefined : Number(values.records);
  if (!Number.isSafeInteger(repeats) || repeats < 1 || (records !== undefined && (!Number.isSafeInteger(records) || records < 1))) {
    console.error(`--records and --repeats must be positive integers\n\n${usage}`);
    return 2;
  }
  for (const engine of engines) {
    const n = records ?? DEFAULT_RECORDS[engine];
    if (engine === 'sqlite') await benchSqlite(n, repeats, values.dir ?? tmpdir());
    else await benchMongo(n, repeats, values['mongodb-uri'] ?? process.env.OTTO_BENCH_MONGODB_URI);
  }
  return 0;
}
