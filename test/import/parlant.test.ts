/**
 * Parlant → Otto into a real SQLite file: from Parlant's JSON-file stores in the newer shape
 * (tags, `agent:<id>`, journeys as graphs) and the older one (`guideline_set`, tool id pairs),
 * and from a real MongoDB-wire database seeded with the raw driver. Each import maps agents,
 * guidelines, journeys and tool associations, reports what Otto cannot hold, and imports
 * nothing twice when run again. The CLI prints the same report.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { main } from '../../src/cli/main.ts';
import { collections } from '../../src/domain/collections.ts';
import { importParlant, readParlant, readParlantFolder, readParlantMongo, type ParlantData, type ParlantImportReport } from '../../src/import/parlant/index.ts';
import { BotService } from '../../src/services/bots.ts';
import { BotRegistry } from '../../src/services/registry.ts';
import { attachChangeLog } from '../../src/storage/changes/index.ts';
import type { Store } from '../../src/storage/contract.ts';
import { migrationsFor, runMigrations } from '../../src/storage/migrations/index.ts';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';

const FIXTURES = new URL('./fixtures/parlant/', import.meta.url).pathname;
const V3 = join(FIXTURES, 'v3');
const V1 = join(FIXTURES, 'v1');
const caller = { owner_id: 'alice', admin: false };

const mongo = await mongoTestTarget();
if ('skip' in mongo) process.stderr.write(`${mongo.skip}\n`);
else after(() => mongo.stop());

const temps: string[] = [];
after(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'otto-parlant-'));
  temps.push(dir);
  return dir;
}

/** A migrated SQLite store with its change log, and the bot service on it. */
async function otto(): Promise<{ store: Store; bots: BotService; close(): Promise<void> }> {
  const plain = await createSqliteStore({ path: join(await tempDir(), 'otto.db') });
  await runMigrations({ store: plain, migrations: migrationsFor(plain.engine), ottoVersion: 'test' });
  const { store } = await attachChangeLog(plain);
  const bots = await BotService.open(store, await BotRegistry.open(store, []));
  return { store, bots, close: () => store.close() };
}

async function countOf(store: Store, name: keyof typeof collections): Promise<number> {
  return (await store.collection(collections[name])).count();
}

function notMapped(report: ParlantImportReport): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of report.not_mapped) out[n.kind] = (out[n.kind] ?? 0) + n.count;
  return out;
}

/** Checks what the newer fixture becomes; shared by the JSON and MongoDB imports. */
async function assertV3Imported(bots: BotService, report: ParlantImportReport): Promise<void> {
  assert.deepEqual(report.agents, { read: 2, created: 2, updated: 0, unchanged: 0 });
  assert.deepEqual(report.guidelines, { read: 8, created: 6, updated: 0, unchanged: 0 }, 'Support: refunds, orders, greeting; Sales: greeting, VIP, upsell');
  assert.deepEqual(report.tools, { read: 2, created: 1, updated: 0, unchanged: 0 });
  assert.deepEqual(report.tool_mappings, { read: 3, created: 1, updated: 0, unchanged: 0 });
  assert.deepEqual(report.journeys, { read: 1, created: 1, updated: 0, unchanged: 0 });

  const byAgent = Object.fromEntries(report.bots.map((b) => [b.parlant_id, b.bot_id]));
  const support = await bots.definition({ caller, id: byAgent.agt_support! });
  const sales = await bots.definition({ caller, id: byAgent.agt_sales! });
  assert.equal(support.bot.name, 'Support');
  assert.equal(support.bot.owner_id, 'alice');
  assert.equal(support.bot.composition_mode, 'composited_canned');
  assert.equal(sales.bot.max_engine_iterations, 10);
  assert.deepEqual(support.guidelines.map((g) => g.condition).sort(), ['the conversation starts', 'the customer asks about refunds', 'the customer asks where their order is']);
  assert.deepEqual(sales.guidelines.map((g) => g.condition).sort(), ['the conversation starts', 'the customer buys one item', 'the customer is a VIP']);
  const refund = support.guidelines.find((g) => g.condition === 'the customer asks about refunds')!;
  assert.deepEqual([refund.action, refund.criticality, refund.enabled, refund.id.startsWith('gdl_')], ['explain the 30-day refund policy', 'high', true, true]);
  assert.deepEqual(support.tools.map((t) => [t.name, t.endpoint.url, t.endpoint.method]), [['order_status', 'http://127.0.0.1:8089/tools/order_status/calls', 'POST']]);
  const order = support.guidelines.find((g) => g.condition.includes('order is'))!;
  assert.deepEqual(support.mappings.map((m) => [m.guideline_id, m.tool_name]), [[order.id, 'order_status']]);
  assert.equal(support.journeys.length, 1);
  assert.deepEqual(
    { title: support.journeys[0]!.title, conditions: support.journeys[0]!.conditions, steps: support.journeys[0]!.steps.map((s) => s.instruction) },
    {
      title: 'Return an item',
      conditions: ['the customer wants to return an item'],
      steps: ['ask for the order number', 'ask why they want to return it', 'send the return label', 'offer an exchange for another size'],
    },
  );
  assert.equal(sales.journeys.length, 0);
  assert.equal((support.bot.metadata as { parlant: { agent_id: string } }).parlant.agent_id, 'agt_support');

  assert.deepEqual(notMapped(report), {
    'agent settings': 1,
    'context variable values': 1,
    'context variables': 1,
    evaluations: 1,
    'guideline metadata': 1,
    'guideline relationships': 1,
    guidelines: 1,
    'journey branches': 1,
    'journey step tools': 1,
    'journey transition conditions': 3,
    'observational guidelines': 1,
    tags: 2,
    'tool associations': 1,
    tools: 1,
  });
  const tools = report.not_mapped.find((n) => n.kind === 'tools')!;
  assert.match(tools.reason, /service crm is openapi/);
  assert.deepEqual(tools.examples, ['crm:lookup_customer']);
  assert.deepEqual(report.not_mapped.find((n) => n.kind === 'guidelines')!.examples, ['gl_beta']);
}

async function assertNothingTwice(store: Store, bots: BotService, data: ParlantData): Promise<void> {
  const before = await Promise.all((['bots', 'guidelines', 'journeys', 'tools', 'tool_mappings'] as const).map((n) => countOf(store, n)));
  const again = await importParlant({ data, bots, caller });
  for (const kind of ['agents', 'guidelines', 'journeys', 'tools', 'tool_mappings'] as const) {
    assert.equal(again[kind].created, 0, `${kind} created again`);
    assert.equal(again[kind].updated, 0, `${kind} updated with nothing changed`);
  }
  assert.equal(again.guidelines.unchanged, 6);
  assert.equal(again.tool_mappings.unchanged, 1);
  const now = await Promise.all((['bots', 'guidelines', 'journeys', 'tools', 'tool_mappings'] as const).map((n) => countOf(store, n)));
  assert.deepEqual(now, before);
}

describe('Parlant import', () => {
  it('imports the newer JSON-file shape into SQLite, reports what it cannot map, and imports nothing twice', async () => {
    const { store, bots, close } = await otto();
    try {
      const data = readParlantFolder(V3);
      assert.equal(data.source, `parlant-json:${V3}`);
      const report = await importParlant({ data, bots, caller });
      await assertV3Imported(bots, report);
      await assertNothingTwice(store, bots, data);

      // A change in Parlant is applied to what was imported, not added next to it.
      const changed = readParlantFolder(V3);
      const refund = changed.collections.get('guidelines')!.find((g) => g.id === 'gl_refund')!;
      refund.action = 'explain the 60-day refund policy';
      const third = await importParlant({ data: changed, bots, caller });
      assert.equal(third.guidelines.updated, 1);
      assert.equal(third.guidelines.created, 0);
      const supportId = third.bots.find((b) => b.parlant_id === 'agt_support')!.bot_id;
      const guidelines = (await bots.listGuidelines({ caller, bot_id: supportId })).items;
      assert.deepEqual(guidelines.filter((g) => g.condition === 'the customer asks about refunds').map((g) => g.action), ['explain the 60-day refund policy']);
    } finally {
      await close();
    }
  });

  it('keeps bot names unique per owner, and imports tools of services without a URL when given a base URL', async () => {
    const { bots, close } = await otto();
    try {
      await bots.create({ caller, input: { name: 'support' } });
      const report = await importParlant({ data: readParlantFolder(V3), bots, caller, toolBaseUrl: 'http://tools.example.internal/' });
      assert.deepEqual(report.bots.map((b) => b.name).sort(), ['Sales', 'Support (Parlant)']);
      assert.equal(report.not_mapped.find((n) => n.kind === 'agent names')?.count, 1);
      assert.equal(report.tools.created, 1 + 1, 'crm:lookup_customer now has an endpoint');
      const salesId = report.bots.find((b) => b.parlant_id === 'agt_sales')!.bot_id;
      const tools = (await bots.listTools({ caller, bot_id: salesId })).items;
      assert.deepEqual(tools.map((t) => [t.name, t.endpoint.url]), [['lookup_customer', 'http://tools.example.internal/crm/lookup_customer']]);
      assert.equal(report.not_mapped.some((n) => n.kind === 'tools'), false);
    } finally {
      await close();
    }
  });

  it('imports the older JSON-file shape (guideline_set, tool id pairs, guideline connections)', async () => {
    const { store, bots, close } = await otto();
    try {
      const data = readParlantFolder(V1);
      const report = await importParlant({ data, bots, caller });
      assert.deepEqual(report.agents, { read: 1, created: 1, updated: 0, unchanged: 0 });
      assert.deepEqual(report.guidelines, { read: 3, created: 2, updated: 0, unchanged: 0 });
      assert.deepEqual(report.tool_mappings, { read: 2, created: 2, updated: 0, unchanged: 0 });
      const helper = await bots.definition({ caller, id: report.bots[0]!.bot_id });
      assert.equal(helper.bot.name, 'Helper');
      assert.equal(helper.bot.max_engine_iterations, 1);
      assert.deepEqual(helper.tools.map((t) => [t.name, t.endpoint.url]).sort(), [
        ['shipping_rates', 'http://127.0.0.1:8090/tools/shipping_rates/calls'],
        ['track_order', 'http://127.0.0.1:8090/tools/track_order/calls'],
      ]);
      const track = helper.guidelines.find((g) => g.condition.includes('track'))!;
      assert.ok(helper.mappings.some((m) => m.guideline_id === track.id && m.tool_name === 'track_order'));
      assert.deepEqual(notMapped(report), { 'context variables': 1, 'guideline relationships': 1, guidelines: 1 });
      assert.match(report.not_mapped.find((n) => n.kind === 'guidelines')!.reason, /agent agent_removed was not imported/);
      const again = await importParlant({ data, bots, caller });
      assert.deepEqual([again.guidelines.created, again.tools.created, again.tool_mappings.created, again.agents.created], [0, 0, 0, 0]);
      assert.equal(await countOf(store, 'guidelines'), 2);
    } finally {
      await close();
    }
  });

  it('reads collections whose names carry a prefix, as the newest Parlant allows', async () => {
    const { bots, close } = await otto();
    try {
      const data = readParlantFolder(V3);
      data.collections = new Map([...data.collections].map(([name, docs]) => [`acme_${name}`, docs]));
      const report = await importParlant({ data, bots, caller });
      await assertV3Imported(bots, report);
    } finally {
      await close();
    }
  });

  it('refuses what is not Parlant data with a clear error', async () => {
    const empty = await tempDir();
    assert.throws(() => readParlantFolder(join(empty, 'missing')), /cannot read the Parlant folder/);
    assert.throws(() => readParlantFolder(empty), /holds no Parlant store files/);
    await assert.rejects(readParlant(''), /name a Parlant folder/);
  });

  it('imports from a real MongoDB database seeded with the raw driver, the same as from JSON, and nothing twice', { skip: 'skip' in mongo ? mongo.skip : undefined }, async () => {
    if ('skip' in mongo) return;
    const database = `parlant_${randomBytes(5).toString('hex')}`;
    const base = mongo.uri.split('?', 1)[0]!.replace(/\/[^/]*$/, '');
    const url = `${base}/${database}`;
    const client = new MongoClient(mongo.uri);
    const { store, bots, close } = await otto();
    try {
      await client.connect();
      const db = client.db(database);
      for (const file of readdirSync(V3)) {
        const parsed = JSON.parse(readFileSync(join(V3, file), 'utf8')) as Record<string, Array<Record<string, unknown>>>;
        for (const [name, docs] of Object.entries(parsed)) if (docs.length > 0) await db.collection(name).insertMany(docs.map((d) => ({ ...d })));
      }
      const data = await readParlantMongo(url);
      assert.match(data.source, new RegExp(`^mongodb://.*/${database}$`));
      const report = await importParlant({ data, bots, caller });
      await assertV3Imported(bots, report);
      await assertNothingTwice(store, bots, data);
    } finally {
      await close();
      await client.db(database).dropDatabase().catch(() => {});
      await client.close();
    }
  });

  it('runs from the CLI: `otto import --parlant <folder>` prints the report, and a second run creates nothing', async () => {
    const dir = await tempDir();
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: () => {}, env: { OTTO_DATA_DIR: dir }, cwd: dir };
    assert.equal(await main(['import', '--parlant', V3, '--owner', 'alice'], io), 0);
    const first = lines.join('\n');
    assert.match(first, /agents\s+2\s+2\s+0\s+0/);
    assert.match(first, /guidelines\s+8\s+6\s+0\s+0/);
    assert.match(first, /not mapped:\n(.|\n)*guideline relationships/);
    lines.length = 0;
    assert.equal(await main(['import', '--parlant', V3, '--owner', 'alice', '--json'], io), 0);
    const report = JSON.parse(lines.join('\n')) as ParlantImportReport;
    assert.deepEqual([report.agents.created, report.guidelines.created, report.guidelines.unchanged], [0, 0, 6]);
    lines.length = 0;
    assert.equal(await main(['import', '--help'], io), 0);
    assert.match(lines.join('\n'), /--parlant <folder\|mongodb:/);
    const errors: string[] = [];
    assert.equal(await main(['import', '--parlant', V3, '--from', 'jsonl:./x'], { ...io, err: (l) => errors.push(l) }), 2);
    assert.match(errors.join('\n'), /either --from .* or --parlant/);
  });
});
