/**
 * Usage and cost through the API, on SQLite and on the MongoDB-wire test server (FerretDB):
 * every provider call of a turn recorded with tokens, latency, outcome and cost (fake OpenAI
 * server returning usage tokens), failed calls recorded too, reports scoped to their owner,
 * admin-only pricing, budgets refusing provider calls with 429 BUDGET_EXCEEDED while the user's
 * message stays stored with the error, the offline provider recorded, and a failed recording
 * surfaced in /health and retried.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { collections } from '../../src/domain/collections.ts';
import { utcDay, utcMonth, type ActivityLog } from '../../src/domain/index.ts';
import { createOpenAiCompatibleProvider, type Provider } from '../../src/engine/index.ts';
import type { Otto } from '../../src/http/otto.ts';
import { eq } from '../../src/storage/index.ts';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fake-openai.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';
import { call, testOtto } from '../support/otto.ts';
import { cli } from '../support/cli.ts';


const target = await mongoTestTarget();
if ('skip' in target) process.stderr.write(`${target.skip}\n`);
else after(() => target.stop());

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

interface Engine {
  name: string;
  skip?: string;
  env(): Promise<{ env: NodeJS.ProcessEnv; cleanup(): Promise<void> }>;
}

const engines: Engine[] = [
  {
    name: 'sqlite',
    async env() {
      const dir = await mkdtemp(join(tmpdir(), 'otto-usage-'));
      return { env: { OTTO_STORAGE: 'sqlite', OTTO_DATA_DIR: dir, OTTO_SQLITE_SYNC: 'NORMAL' }, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'mongodb',
    skip: 'skip' in target ? target.skip : undefined,
    async env() {
      if ('skip' in target) throw new Error(target.skip);
      const database = `otto_usage_${randomBytes(5).toString('hex')}`;
      return { env: { OTTO_STORAGE: 'mongodb', MONGODB_URI: target.uri, MONGODB_DATABASE: database }, cleanup: async () => {} };
    },
  },
];

async function userWithKey(otto: Otto, username: string, role: 'admin' | 'builder' | 'viewer') {
  const user = await otto.services.accounts.createUser({ input: { username, role } });
  const { secret } = await otto.services.accounts.createKey({ user_id: user.id, input: { name: 'test' } });
  return { id: user.id, h: bearer(secret) };
}

async function logsOf(otto: Otto, where = {}): Promise<ActivityLog[]> {
  const logs = await otto.storage.store.collection<ActivityLog>(collections.ai_activity_logs);
  const out: ActivityLog[] = [];
  for await (const batch of logs.scan()) out.push(...batch);
  return out.filter((l) => Object.entries(where).every(([k, v]) => (l as unknown as Record<string, unknown>)[k] === v)).sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0));
}

for (const engine of engines) {
  describe(`usage and cost over HTTP on ${engine.name}`, { skip: engine.skip }, () => {
    let otto: Otto;
    let fake: FakeOpenAi;
    let cleanup: () => Promise<void>;
    let admin: Awaited<ReturnType<typeof userWithKey>>;
    let alice: Awaited<ReturnType<typeof userWithKey>>;
    let bob: Awaited<ReturnType<typeof userWithKey>>;
    let aliceBot: string;
    let bobBot: string;
    const today = utcDay(new Date());

    before(async () => {
      fake = await startFakeOpenAi();
      const made = await engine.env();
      cleanup = made.cleanup;
      const provider: Provider = createOpenAiCompatibleProvider({ baseUrl: fake.baseUrl, apiKey: 'sk-test-usage', model: 'gpt-4o-mini' });
      otto = await testOtto(made.env, { provider });
      admin = await userWithKey(otto, 'root', 'admin');
      alice = await userWithKey(otto, 'alice', 'builder');
      bob = await userWithKey(otto, 'bob', 'builder');
      aliceBot = (await call(otto, 'POST', '/bots', { name: 'AliceBot' }, alice.h)).json.id;
      bobBot = (await call(otto, 'POST', '/bots', { name: 'BobBot' }, bob.h)).json.id;
      assert.ok(aliceBot && bobBot);
    });
    after(async () => {
      await otto?.close();
      await fake?.close();
      await cleanup?.();
    });

    it('records every provider call with tokens, latency, outcome and cost from the model price', async () => {
      fake.enqueue({ content: 'Hello Alice.', usage: { prompt_tokens: 1000, completion_tokens: 200 } });
      const chat = await call(otto, 'POST', '/chat', { bot_id: aliceBot, message: 'hi there' }, alice.h);
      assert.equal(chat.status, 200, chat.body);
      const [log, ...more] = await logsOf(otto, { conversation_id: chat.json.conversation_id });
      assert.equal(more.length, 0);
      assert.equal(log!.owner_id, alice.id);
      assert.equal(log!.bot_id, aliceBot);
      assert.equal(log!.provider, 'openai');
      assert.equal(log!.model, 'gpt-4o-mini');
      assert.equal(log!.tokens_in, 1000);
      assert.equal(log!.tokens_out, 200);
      assert.equal(log!.outcome, 'ok');
      assert.equal(log!.priced, true);
      // gpt-4o-mini is seeded at $0.15 / $0.60 per 1M tokens: 1000 × 0.15e-6 + 200 × 0.6e-6 = $0.00027.
      assert.equal(log!.cost_nano_usd, 270_000);
      assert.equal(log!.cost_usd, 0.00027);
      assert.equal(log!.day, today);
      assert.ok(Number.isInteger(log!.latency_ms) && log!.latency_ms >= 0);
      assert.equal(log!.created_at.slice(0, 10), today);
    });

    it('records a failed call (outcome error) and keeps the user message with the error, as before', async () => {
      fake.enqueue({ status: 500, body: { error: { message: 'upstream exploded' } } });
      const failed = await call(otto, 'POST', '/chat', { bot_id: aliceBot, message: 'are you there?' }, alice.h);
      assert.equal(failed.status, 502);
      const conversationId = failed.json.error.detail.conversation_id;
      const [log] = await logsOf(otto, { conversation_id: conversationId });
      assert.equal(log!.outcome, 'error');
      assert.equal(log!.error_code, 'PROVIDER_FAILED');
      assert.equal(log!.cost_nano_usd, 0);
      const messages = await call(otto, 'GET', `/conversations/${conversationId}/messages`, undefined, alice.h);
      assert.deepEqual(messages.json.items.map((m: { role: string }) => m.role), ['user']);
      assert.equal(messages.json.items[0].agent_steps.at(-1).code, 'PROVIDER_FAILED');
    });

    it('records the call of every turn of a conversation', async () => {
      fake.enqueue({ content: 'first', usage: { prompt_tokens: 10, completion_tokens: 5 } });
      const first = await call(otto, 'POST', '/chat', { bot_id: bobBot, message: 'hello' }, bob.h);
      assert.equal(first.status, 200, first.body);
      fake.enqueue({ content: 'second', usage: { prompt_tokens: 20, completion_tokens: 7 } });
      const second = await call(otto, 'POST', '/chat', { conversation_id: first.json.conversation_id, message: 'again' }, bob.h);
      assert.equal(second.status, 200, second.body);
      const logs = await logsOf(otto, { conversation_id: first.json.conversation_id });
      assert.deepEqual(logs.map((l) => [l.tokens_in, l.tokens_out, l.owner_id]), [[10, 5, bob.id], [20, 7, bob.id]]);
    });

    it('reports usage by day, bot, model and user; non-admins see only their own', async () => {
      const q = (by: string, extra = '') => `/usage?from=${today}&to=${today}&group_by=${by}${extra}`;
      const mine = await call(otto, 'GET', q('bot'), undefined, alice.h);
      assert.equal(mine.status, 200, mine.body);
      assert.deepEqual(mine.json, {
        from: today,
        to: today,
        group_by: 'bot',
        rows: [{ key: aliceBot, calls: 2, tokens_in: 1000, tokens_out: 200, cost_usd: 0.00027 }],
        totals: { calls: 2, tokens_in: 1000, tokens_out: 200, cost_usd: 0.00027 },
      });
      const bobs = await call(otto, 'GET', q('user'), undefined, bob.h);
      assert.deepEqual(bobs.json.rows.map((r: { key: string }) => r.key), [bob.id]);
      assert.equal(bobs.json.totals.tokens_in, 30);
      // Someone else's user or bot matches nothing, exactly like an unknown one.
      for (const url of [q('user', `&user_id=${bob.id}`), q('bot', `&bot_id=${bobBot}`), q('bot', '&bot_id=bot_unknown')]) {
        const other = await call(otto, 'GET', url, undefined, alice.h);
        assert.equal(other.status, 200);
        assert.deepEqual(other.json.rows, []);
        assert.equal(other.json.totals.calls, 0);
      }
      const all = await call(otto, 'GET', q('user'), undefined, admin.h);
      assert.deepEqual(all.json.rows.map((r: { key: string; calls: number }) => [r.key, r.calls]).sort(), [[alice.id, 2], [bob.id, 2]].sort());
      const byModel = await call(otto, 'GET', q('model'), undefined, admin.h);
      assert.deepEqual(byModel.json.rows, [{ key: 'gpt-4o-mini', calls: 4, tokens_in: 1030, tokens_out: 212, cost_usd: byModel.json.totals.cost_usd }]);
      const byDay = await call(otto, 'GET', q('day'), undefined, admin.h);
      assert.deepEqual(byDay.json.rows.map((r: { key: string }) => r.key), [today]);
      assert.deepEqual(byDay.json.totals, byModel.json.totals);
      const yesterday = utcDay(new Date(Date.now() - 86_400_000));
      assert.deepEqual((await call(otto, 'GET', `/usage?from=${yesterday}&to=${yesterday}&group_by=day`, undefined, admin.h)).json.rows, []);
    });

    it('refuses bad report requests with 400 naming the field', async () => {
      for (const [url, field] of [
        [`/usage?from=2026-02-30&to=2026-03-01&group_by=day`, 'from'],
        [`/usage?from=2026-03-02&to=2026-03-01&group_by=day`, 'from'],
        [`/usage?from=2026-03-01&to=2026-03-01&group_by=owner`, 'group_by'],
        [`/usage?from=2026-03-01&to=2026-03-01`, 'group_by'],
        [`/usage?from=2026-03-01&to=2026-03-01&group_by=day&bot_id[$ne]=x`, undefined],
      ] as const) {
        const bad = await call(otto, 'GET', url, undefined, alice.h);
        assert.equal(bad.status, 400, `${url}: ${bad.body}`);
        if (field) assert.equal(bad.json.error.field, field, url);
      }
    });

    it('serves seeded pricing, editable by admins only; recorded calls keep their cost', async () => {
      const list = await call(otto, 'GET', '/model-pricing', undefined, alice.h);
      assert.equal(list.status, 200);
      const mini = list.json.find((p: { model: string }) => p.model === 'gpt-4o-mini');
      assert.deepEqual([mini.input_usd_per_1m, mini.output_usd_per_1m, mini.source], [0.15, 0.6, 'seed']);
      assert.ok(['gpt-4o', 'gpt-4.1', 'gpt-4.1-mini', 'o3-mini', 'claude-sonnet-4'].every((m) => list.json.some((p: { model: string }) => p.model === m)));
      assert.equal((await call(otto, 'PUT', '/model-pricing/gpt-4o-mini', { input_usd_per_1m: 1, output_usd_per_1m: 2 }, alice.h)).status, 403);
      assert.equal((await call(otto, 'PUT', '/model-pricing/gpt-4o-mini', { input_usd_per_1m: -1, output_usd_per_1m: 2 }, admin.h)).status, 400);
      const set = await call(otto, 'PUT', '/model-pricing/gpt-4o-mini', { input_usd_per_1m: 1, output_usd_per_1m: 2 }, admin.h);
      assert.equal(set.status, 200, set.body);
      assert.equal(set.json.source, 'admin');
      fake.enqueue({ content: 'priced anew', usage: { prompt_tokens: 1000, completion_tokens: 1000 } });
      const chat = await call(otto, 'POST', '/chat', { bot_id: bobBot, message: 'price me' }, bob.h);
      const [log] = await logsOf(otto, { conversation_id: chat.json.conversation_id });
      assert.equal(log!.cost_nano_usd, 3_000_000);
      const first = (await logsOf(otto, { owner_id: alice.id, outcome: 'ok' }))[0]!;
      assert.equal(first.cost_nano_usd, 270_000, 'an earlier call keeps the cost of its time');
      await call(otto, 'PUT', '/model-pricing/gpt-4o-mini', { input_usd_per_1m: 0.15, output_usd_per_1m: 0.6 }, admin.h);
    });

    it('a spent user budget refuses the call with 429 BUDGET_EXCEEDED; the message stays, with the error, and no reply', async () => {
      assert.equal((await call(otto, 'PUT', `/budgets/users/${alice.id}`, { monthly_usd: 0.0003 }, alice.h)).status, 403, 'only admins set user budgets');
      const set = await call(otto, 'PUT', `/budgets/users/${alice.id}`, { monthly_usd: 0.0003 }, admin.h);
      assert.equal(set.status, 200, set.body);
      assert.deepEqual([set.json.spent_usd, set.json.exceeded, set.json.resets_at], [0.00027, false, utcMonth(new Date()).resets_at]);
      // $0.00027 < $0.0003: this call goes through and spends another $0.00027.
      fake.enqueue({ content: 'one more', usage: { prompt_tokens: 1000, completion_tokens: 200 } });
      assert.equal((await call(otto, 'POST', '/chat', { bot_id: aliceBot, message: 'one more' }, alice.h)).status, 200);
      const requestsBefore = fake.requests.length;
      const refused = await call(otto, 'POST', '/chat', { bot_id: aliceBot, message: 'and another' }, alice.h);
      assert.equal(refused.status, 429, refused.body);
      assert.equal(refused.json.error.code, 'BUDGET_EXCEEDED');
      assert.match(refused.json.error.message, new RegExp(`monthly budget of user ${alice.id} \\(\\$0\\.0003\\) is spent.*resets at ${utcMonth(new Date()).resets_at.replace(/\./g, '\\.')}`));
      assert.equal(fake.requests.length, requestsBefore, 'the provider was not called');
      const conversationId = refused.json.error.detail.conversation_id;
      const messages = await call(otto, 'GET', `/conversations/${conversationId}/messages`, undefined, alice.h);
      assert.deepEqual(messages.json.items.map((m: { role: string }) => m.role), ['user']);
      assert.equal(messages.json.items[0].agent_steps.at(-1).code, 'BUDGET_EXCEEDED');
      const [log] = await logsOf(otto, { conversation_id: conversationId });
      assert.deepEqual([log!.outcome, log!.cost_nano_usd, log!.tokens_in], ['budget_refused', 0, 0]);
      // A refusal is not a call in reports; bob is not affected.
      const report = await call(otto, 'GET', `/usage?from=${today}&to=${today}&group_by=user`, undefined, alice.h);
      assert.equal(report.json.totals.calls, 3);
      fake.enqueue({ content: 'bob is fine' });
      assert.equal((await call(otto, 'POST', '/chat', { bot_id: bobBot, message: 'hi' }, bob.h)).status, 200);
      assert.equal((await call(otto, 'DELETE', `/budgets/users/${alice.id}`, undefined, admin.h)).status, 204);
      fake.enqueue({ content: 'free again' });
      assert.equal((await call(otto, 'POST', '/chat', { bot_id: aliceBot, message: 'now?' }, alice.h)).status, 200);
    });

    it("a spent bot budget refuses its calls; only the bot's owner (or an admin) sets it", async () => {
      assert.equal((await call(otto, 'PUT', `/budgets/bots/${aliceBot}`, { monthly_usd: 0 }, bob.h)).status, 404, "another owner's bot is not found");
      assert.equal((await call(otto, 'PUT', `/budgets/bots/${aliceBot}`, { monthly_usd: 'lots' }, alice.h)).status, 400);
      const set = await call(otto, 'PUT', `/budgets/bots/${aliceBot}`, { monthly_usd: 0.0001 }, alice.h);
      assert.equal(set.status, 200, set.body);
      assert.equal(set.json.exceeded, true);
      const refused = await call(otto, 'POST', '/chat', { bot_id: aliceBot, message: 'hello?' }, alice.h);
      assert.equal(refused.status, 429);
      assert.match(refused.json.error.message, new RegExp(`monthly budget of bot ${aliceBot}`));
      assert.equal(refused.json.error.detail.budget, 'bot');
      const mine = await call(otto, 'GET', '/budgets', undefined, alice.h);
      assert.deepEqual(mine.json.map((b: { scope: string; subject_id: string }) => [b.scope, b.subject_id]), [['bot', aliceBot]]);
      assert.deepEqual((await call(otto, 'GET', '/budgets', undefined, bob.h)).json, []);
      assert.equal((await call(otto, 'GET', `/budgets/bots/${aliceBot}`, undefined, bob.h)).status, 404);
      assert.equal((await call(otto, 'GET', `/budgets/bots/${aliceBot}`, undefined, alice.h)).status, 200);
      assert.equal((await call(otto, 'DELETE', `/budgets/bots/${aliceBot}`, undefined, alice.h)).status, 204);
      assert.equal((await call(otto, 'GET', `/budgets/bots/${aliceBot}`, undefined, alice.h)).status, 404);
    });

    it('a failed recording never fails the turn: it is surfaced in /health and written with the next one', async () => {
      const logs = await otto.storage.store.collection<ActivityLog>(collections.ai_activity_logs);
      const usage = otto.services.usage as unknown as { logs: typeof logs };
      const failing = mock.method(usage.logs, 'insertMany', async () => {
        throw new Error('disk on fire');
      });
      fake.enqueue({ content: 'answered anyway', usage: { prompt_tokens: 3, completion_tokens: 4 } });
      const chat = await call(otto, 'POST', '/chat', { bot_id: bobBot, message: 'record me' }, bob.h);
      failing.mock.restore();
      assert.equal(chat.status, 200, chat.body);
      assert.equal(chat.json.reply.content, 'answered anyway');
      const health = await call(otto, 'GET', '/health');
      assert.equal(health.json.usage.pending, 1);
      assert.match(health.json.usage.last_error, /disk on fire/);
      assert.equal((await logsOf(otto, { conversation_id: chat.json.conversation_id })).length, 0);
      fake.enqueue({ content: 'next' });
      assert.equal((await call(otto, 'POST', '/chat', { conversation_id: chat.json.conversation_id, message: 'next' }, bob.h)).status, 200);
      assert.equal((await call(otto, 'GET', '/health')).json.usage.pending, 0);
      assert.deepEqual((await logsOf(otto, { conversation_id: chat.json.conversation_id })).map((l) => l.tokens_in), [3, 11]);
    });
  });
}

describe('usage of the offline provider', () => {
  let otto: Otto;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'otto-usage-offline-'));
    otto = await testOtto({ OTTO_STORAGE: 'sqlite', OTTO_DATA_DIR: dir, OTTO_SQLITE_SYNC: 'NORMAL' });
  });
  after(async () => {
    await otto.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('records one call per turn with model offline, 0 tokens and no cost, for bots and for Otto', async () => {
    const bot = (await call(otto, 'POST', '/bots', { name: 'Offline' })).json.id;
    const chat = await call(otto, 'POST', '/chat', { bot_id: bot, message: 'hello' });
    assert.equal(chat.status, 200);
    const builder = await call(otto, 'POST', '/chat', { bot_id: 'otto', message: 'list my bots' });
    assert.equal(builder.status, 200);
    const logs = await otto.storage.store.collection<ActivityLog>(collections.ai_activity_logs);
    const found = (await logs.find({ where: eq('provider', 'offline'), limit: 10 })).items;
    assert.deepEqual(found.map((l) => [l.bot_id, l.model, l.tokens_in, l.tokens_out, l.cost_nano_usd, l.outcome, l.owner_id]).sort(), [
      [bot, 'offline', 0, 0, 0, 'ok', 'local'],
      ['otto', 'offline', 0, 0, 0, 'ok', 'local'],
    ].sort());
    const today = utcDay(new Date());
    const report = await call(otto, 'GET', `/usage?from=${today}&to=${today}&group_by=model`);
    assert.deepEqual(report.json.rows, [{ key: 'offline', calls: 2, tokens_in: 0, tokens_out: 0, cost_usd: 0 }]);
  });

  it('otto usage prints the same report as GET /usage, as JSON or as a table, and refuses bad flags', async () => {
    const today = utcDay(new Date());
    const env = { OTTO_STORAGE: 'sqlite', OTTO_DATA_DIR: dir };
    const api = await call(otto, 'GET', `/usage?from=${today}&to=${today}&group_by=bot`);
    const json = await cli(['usage', '--from', today, '--to', today, '--by', 'bot', '--json'], env);
    assert.equal(json.code, 0, json.err);
    assert.deepEqual(JSON.parse(json.out), api.json);
    const table = await cli(['usage', '--from', today, '--to', today, '--by', 'model'], env);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /^offline\s+2\s+0\s+0\s+0\.000000$/m);
    assert.match(table.out, /^total\s+2\s+/m);
    assert.equal((await cli(['usage', '--by', 'week'], env)).code, 2);
    assert.equal((await cli(['usage', '--from', '2026-13-01'], env)).code, 2);
    const help = await cli(['usage', '--help'], env);
    assert.match(help.out, /--by\s+group by day/);
  });
});
