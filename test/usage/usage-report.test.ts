/**
 * The same usage fixture on SQLite, MongoDB (the FerretDB test server), JSON lines and memory
 * gives identical reports — each computed by that engine's own aggregation — equal to the
 * figures computed here from the fixture: every grouping, date range boundaries (a day's first
 * and last millisecond in, the neighbouring days out), tenant scoping and filters.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { collections } from '../../src/domain/collections.ts';
import { costNanoUsd, nanoToUsd, utcDay, type ActivityLog, type ActivityOutcome } from '../../src/domain/index.ts';
import { UsageService, type Caller, type UsageReport } from '../../src/services/index.ts';
import type { NewDoc, Store } from '../../src/storage/index.ts';
import { openStoreUrlMigrated } from '../../src/storage/store-url.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';

const target = await mongoTestTarget();
if ('skip' in target) process.stderr.write(`${target.skip}\n`);
else after(() => target.stop());

const owners = ['usr_ann', 'usr_ben', 'usr_cat'];
const bots = ['bot_a', 'bot_b', 'bot_c', 'bot_d'];
const models = [
  { model: 'gpt-4o', input: 2.5, output: 10 },
  { model: 'gpt-4o-mini', input: 0.15, output: 0.6 },
  { model: 'claude-sonnet-4', input: 3, output: 15 },
];
const outcomes: ActivityOutcome[] = ['ok', 'ok', 'ok', 'ok', 'error', 'timeout', 'budget_refused'];

/** A deterministic fixture: 1200 calls over January–March 2026, plus calls on the edges of February. */
function fixture(): Array<NewDoc<ActivityLog>> {
  let seed = 42;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
  const docs: Array<NewDoc<ActivityLog>> = [];
  const make = (i: number, at: Date): NewDoc<ActivityLog> => {
    const price = models[next() % models.length]!;
    const outcome = outcomes[next() % outcomes.length]!;
    const tokens_in = outcome === 'ok' ? next() % 5000 : 0;
    const tokens_out = outcome === 'ok' ? next() % 1500 : 0;
    const nano = costNanoUsd({ tokens_in, tokens_out, input_usd_per_1m: price.input, output_usd_per_1m: price.output });
    return {
      id: `act_${String(i).padStart(5, '0')}`,
      owner_id: owners[next() % owners.length]!,
      bot_id: bots[next() % bots.length]!,
      conversation_id: `conv_${next() % 50}`,
      provider: 'openai',
      model: price.model,
      tokens_in,
      tokens_out,
      latency_ms: next() % 3000,
      outcome,
      cost_usd: nanoToUsd(nano),
      cost_nano_usd: nano,
      priced: true,
      day: utcDay(at),
      created_at: at.toISOString(),
    };
  };
  const start = Date.UTC(2026, 0, 1);
  for (let i = 0; i < 1200; i++) docs.push(make(i, new Date(start + (next() % (90 * 86_400)) * 1000)));
  const edges = ['2026-01-31T23:59:59.999Z', '2026-02-01T00:00:00.000Z', '2026-02-28T23:59:59.999Z', '2026-03-01T00:00:00.000Z'];
  edges.forEach((at, i) => docs.push(make(2000 + i, new Date(at))));
  return docs;
}

/** The report computed here, from the documents, for comparison. */
function expected(docs: Array<NewDoc<ActivityLog>>, q: { caller: Caller; from: string; to: string; group_by: 'day' | 'bot' | 'model' | 'user'; bot_id?: string; user_id?: string }): UsageReport {
  const field = { day: 'day', bot: 'bot_id', model: 'model', user: 'owner_id' }[q.group_by] as 'day' | 'bot_id' | 'model' | 'owner_id';
  const rows = new Map<string, { key: string; calls: number; tokens_in: number; tokens_out: number; nano: number }>();
  for (const d of docs) {
    if (!q.caller.admin && d.owner_id !== q.caller.owner_id) continue;
    if (q.user_id !== undefined && d.owner_id !== q.user_id) continue;
    if (q.bot_id !== undefined && d.bot_id !== q.bot_id) continue;
    if (d.day < q.from || d.day > q.to || d.outcome === 'budget_refused') continue;
    const key = d[field] as string;
    const row = rows.get(key) ?? { key, calls: 0, tokens_in: 0, tokens_out: 0, nano: 0 };
    row.calls++;
    row.tokens_in += d.tokens_in;
    row.tokens_out += d.tokens_out;
    row.nano += d.cost_nano_usd;
    rows.set(key, row);
  }
  const sorted = [...rows.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  const total = sorted.reduce((t, r) => ({ calls: t.calls + r.calls, tokens_in: t.tokens_in + r.tokens_in, tokens_out: t.tokens_out + r.tokens_out, nano: t.nano + r.nano }), { calls: 0, tokens_in: 0, tokens_out: 0, nano: 0 });
  return {
    from: q.from,
    to: q.to,
    group_by: q.group_by,
    rows: sorted.map((r) => ({ key: r.key, calls: r.calls, tokens_in: r.tokens_in, tokens_out: r.tokens_out, cost_usd: nanoToUsd(r.nano) })),
    totals: { calls: total.calls, tokens_in: total.tokens_in, tokens_out: total.tokens_out, cost_usd: nanoToUsd(total.nano) },
  };
}

const admin: Caller = { owner_id: 'usr_root', admin: true };
const ben: Caller = { owner_id: 'usr_ben', admin: false };

const queries: Array<Parameters<typeof expected>[1]> = [];
for (const group_by of ['day', 'bot', 'model', 'user'] as const) {
  queries.push({ caller: admin, from: '2026-01-01', to: '2026-03-31', group_by });
  queries.push({ caller: admin, from: '2026-02-01', to: '2026-02-28', group_by });
  queries.push({ caller: ben, from: '2026-01-15', to: '2026-02-15', group_by });
}
queries.push({ caller: admin, from: '2026-02-01', to: '2026-02-01', group_by: 'model' });
queries.push({ caller: admin, from: '2026-01-01', to: '2026-03-31', group_by: 'model', bot_id: 'bot_b' });
queries.push({ caller: admin, from: '2026-01-01', to: '2026-03-31', group_by: 'bot', user_id: 'usr_cat' });
queries.push({ caller: ben, from: '2026-01-01', to: '2026-03-31', group_by: 'bot', user_id: 'usr_cat' });
queries.push({ caller: admin, from: '2025-12-01', to: '2025-12-31', group_by: 'day' });

describe('usage reports are identical on every engine', () => {
  const docs = fixture();
  const dirs: string[] = [];
  const stores: Array<{ name: string; store: Store; usage: UsageService }> = [];

  before(async () => {
    const urls: Array<[string, string]> = [['memory', 'memory:']];
    const dir = await mkdtemp(join(tmpdir(), 'otto-usage-report-'));
    dirs.push(dir);
    urls.push(['sqlite', `sqlite:${join(dir, 'otto.db')}`], ['jsonl', `jsonl:${join(dir, 'jsonl')}`]);
    if (!('skip' in target)) {
      const [base = '', query] = target.uri.split('?', 2);
      const authority = /^(mongodb:\/\/[^/]*)/i.exec(base)?.[1] ?? base;
      urls.push(['mongodb', `${authority}/otto_usage_report_${randomBytes(5).toString('hex')}${query ? `?${query}` : ''}`]);
    }
    for (const [name, url] of urls) {
      const store = await openStoreUrlMigrated(url, { sqliteSynchronous: 'NORMAL' });
      const logs = await store.collection<ActivityLog>(collections.ai_activity_logs);
      for (let i = 0; i < docs.length; i += 500) await logs.insertMany({ docs: docs.slice(i, i + 500) });
      stores.push({ name, store, usage: await UsageService.open({ store }) });
    }
  });
  after(async () => {
    for (const { store } of stores) {
      if (store.engine === 'mongodb') await (store as unknown as { db: { dropDatabase(): Promise<unknown> } }).db.dropDatabase().catch(() => {});
      await store.close();
    }
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('covers the engines it should', () => {
    assert.deepEqual(stores.map((s) => s.name), ['memory', 'sqlite', 'jsonl', ...('skip' in target ? [] : ['mongodb'])]);
  });

  for (const q of queries) {
    const label = `${q.caller.admin ? 'admin' : q.caller.owner_id} ${q.from}…${q.to} by ${q.group_by}${q.bot_id ? ` bot=${q.bot_id}` : ''}${q.user_id ? ` user=${q.user_id}` : ''}`;
    it(`gives the expected figures on every engine: ${label}`, async () => {
      const want = expected(docs, q);
      for (const { name, usage } of stores) assert.deepEqual(await usage.report(q), want, name);
    });
  }

  it('includes a day from its first to its last millisecond, and nothing of the days around it', async () => {
    for (const { name, usage } of stores) {
      const february = await usage.report({ caller: admin, from: '2026-02-01', to: '2026-02-28', group_by: 'day' });
      const keys = february.rows.map((r) => r.key);
      assert.equal(keys[0], '2026-02-01', name);
      assert.equal(keys.at(-1), '2026-02-28', name);
      assert.ok(!keys.includes('2026-01-31') && !keys.includes('2026-03-01'), name);
      const inFebruary = docs.filter((d) => d.created_at! >= '2026-02-01T00:00:00.000Z' && d.created_at! < '2026-03-01T00:00:00.000Z' && d.outcome !== 'budget_refused');
      assert.equal(february.totals.calls, inFebruary.length, name);
    }
  });

  it("keeps a non-admin to their own usage whatever they filter on", async () => {
    for (const { name, usage } of stores) {
      const own = await usage.report({ caller: ben, from: '2026-01-01', to: '2026-03-31', group_by: 'user' });
      assert.deepEqual(own.rows.map((r) => r.key), ['usr_ben'], name);
      const other = await usage.report({ caller: ben, from: '2026-01-01', to: '2026-03-31', group_by: 'user', user_id: 'usr_ann' });
      assert.deepEqual(other.rows, [], name);
    }
  });
});
