/**
 * Two real `otto serve` processes sharing one store: once a SQLite file, once a MongoDB-wire
 * server. Concurrent writers on one conversation get gap-free, duplicate-free offsets; a bot or
 * guideline made through one process is served by the other within about a second; and a live
 * event stream on one process carries messages written through the other, resuming after a
 * reconnect with Last-Event-ID without duplicates.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import type { OttoProcess } from '../support/otto-process.ts';
import { api, expectJson, mongoTarget, pollUntil, SseClient, stopMongoTarget, withScope, type Scope } from './harness.ts';

const TEST_TIMEOUT_MS = 180_000;
/** Requests each process fires at once into the same conversation. */
/** How long another process may take to see a change (OTTO_SYNC_INTERVAL_MS is 500 by default). */
const SYNC_LIMIT_MS = 2_000;
/** How long the tests wait at most before failing. */
const POLL_LIMIT_MS = 3_000;

after(() => stopMongoTarget());

interface Store {
  name: string;
  /**
   * Concurrent posts each process fires at one conversation. Lower on the MongoDB-wire test
   * server: FerretDB's SQLite backend scans for the latest offset, so racing writers are slow
   * there (correct, but tens of seconds per request on a loaded machine).
   */
  postsPerProcess: number;
  /** Otto's environment for a fresh store, or undefined after skipping the test loudly. */
  setup(t: TestContext, scope: Scope): Promise<{ env: Record<string, string>; dataDir?: string } | undefined>;
}

const stores: Store[] = [
  {
    name: 'one SQLite file',
    postsPerProcess: 25,
    async setup(_t, scope) {
      return { env: { OTTO_STORAGE: 'sqlite' }, dataDir: await scope.tempDir('otto-e2e-shared-sqlite-') };
    },
  },
  {
    name: 'one MongoDB-wire server',
    postsPerProcess: 10,
    async setup(t, scope) {
      const target = await mongoTarget();
      if ('skip' in target) {
        t.skip(target.skip);
        return undefined;
      }
      return { env: { OTTO_STORAGE: 'mongodb', MONGODB_URI: target.uri, MONGODB_DATABASE: scope.mongoDatabase(target.uri) } };
    },
  },
];

/** Starts A, then B, on the same fresh store (the default sync interval: what users run). */
async function startPair(t: TestContext, scope: Scope, store: Store): Promise<{ a: OttoProcess; b: OttoProcess } | undefined> {
  const setup = await store.setup(t, scope);
  if (!setup) return undefined;
  const a = await scope.start({ ...setup, label: 'A' });
  const b = await scope.start({ ...setup, label: 'B' });
  return { a, b };
}

/** Creates a bot through `a` and waits until `b` can chat with it. Returns the bot and how long `b` took. */
async function botOnBoth(a: OttoProcess, b: OttoProcess, name: string): Promise<{ bot: any; ms: number }> {
  const bot = await expectJson(201, a.url, 'POST', '/bots', { name, description: `made through A for ${name}` });
  const { value, ms } = await pollUntil(POLL_LIMIT_MS, async () => ((await api(b.url, 'POST', '/chat', { bot_id: bot.id, message: 'hello' })).status === 200 ? true : undefined));
  assert.equal(value, true, `B could not chat with ${name} (${bot.id}) within ${POLL_LIMIT_MS} ms`);
  return { bot, ms };
}

function hasGuideline(reply: { agent_steps: any[] }, guidelineId: string): boolean {
  return reply.agent_steps.some((s) => s.type === 'guideline_matched' && s.guideline_id === guidelineId);
}

async function readAllMessages(otto: OttoProcess, conversationId: string): Promise<any[]> {
  const out: any[] = [];
  let after = 0;
  for (let page = 0; page < 100; page++) {
    const body = await expectJson(200, otto.url, 'GET', `/conversations/${conversationId}/messages?after=${after}&limit=200`);
    out.push(...body.items);
    if (body.items.length < 200) return out;
    after = body.items.at(-1).offset;
  }
  throw new Error('more than 100 pages of messages');
}

for (const store of stores) {
  describe(`two Otto processes on ${store.name}`, () => {
    it('both start at the same moment on a fresh store (as replicas booting together do), three times', { timeout: TEST_TIMEOUT_MS }, (t) =>
      withScope(t, async (scope) => {
        for (let round = 1; round <= 3; round++) {
          const setup = await store.setup(t, scope);
          if (!setup) return;
          const [a, b] = await Promise.all([scope.start({ ...setup, label: `A${round}` }), scope.start({ ...setup, label: `B${round}` })]);
          for (const otto of [a, b]) {
            const health = await expectJson(200, otto.url, 'GET', '/health');
            assert.equal(health.status, 'ok');
            assert.equal(health.storage.migrations.pending, 0, `${otto.label}: ${JSON.stringify(health.storage.migrations)}`);
          }
          // Each serves what the other writes.
          const bot = await expectJson(201, a.url, 'POST', '/bots', { name: `Round${round}` });
          await expectJson(200, b.url, 'GET', `/bots/${bot.id}`);
          await Promise.all([a.stop(), b.stop()]);
        }
      }),
    );

    it(`${2 * store.postsPerProcess} concurrent posts to one conversation through both get offsets 1..N, no gaps, no duplicates`, { timeout: TEST_TIMEOUT_MS }, (t) =>
      withScope(t, async (scope) => {
        const pair = await startPair(t, scope, store);
        if (!pair) return;
        const { a, b } = pair;
        const { bot } = await botOnBoth(a, b, 'Counter');
        const conversation = await expectJson(201, a.url, 'POST', '/conversations', { bot_id: bot.id });

        const started = performance.now();
        const fire = (otto: OttoProcess) =>
          Array.from({ length: store.postsPerProcess }, (_, i) => {
            const content = `${otto.label}-${i}`;
            // Generous: on FerretDB, 50 writers racing for one conversation take seconds each.
            return api(otto.url, 'POST', `/conversations/${conversation.id}/messages`, { content }, {}, 90_000).then((response) => ({ content, response }));
          });
        const results = await Promise.all([...fire(a), ...fire(b)]);
        const elapsed = performance.now() - started;

        const ok = results.filter((r) => r.response.status >= 200 && r.response.status < 300);
        const failed = results.filter((r) => !(r.response.status >= 200 && r.response.status < 300));
        t.diagnostic(`${results.length} posts in ${Math.round(elapsed)} ms: ${ok.length} answered, ${failed.length} refused ${JSON.stringify(failed.map((f) => [f.content, f.response.status, f.response.json?.error?.code]))}`);
        // A refusal may only be the documented "too many concurrent writers" 503, never a 500.
        for (const f of failed) {
          assert.equal(f.response.status, 503, `${f.content}: ${f.response.status} ${f.response.text}`);
          assert.equal(f.response.json?.error?.code, 'UNAVAILABLE', f.response.text);
        }
        assert.ok(ok.length > 0, 'at least some posts must succeed');

        for (const otto of [a, b]) {
          const messages = await readAllMessages(otto, conversation.id);
          const n = messages.length;
          assert.deepEqual(
            messages.map((m) => m.offset),
            Array.from({ length: n }, (_, i) => i + 1),
            `${otto.label}: offsets must be exactly 1..${n}`,
          );
          assert.equal(new Set(messages.map((m) => m.id)).size, n, `${otto.label}: duplicate message ids`);
          const byOffset = new Map(messages.map((m) => [m.offset, m]));
          for (const { content, response } of ok) {
            const { message, reply } = response.json;
            assert.equal(byOffset.get(message.offset)?.id, message.id, `${otto.label}: ${content}'s message at offset ${message.offset}`);
            assert.equal(byOffset.get(message.offset)?.content, content);
            assert.equal(byOffset.get(reply.offset)?.id, reply.id, `${otto.label}: ${content}'s reply at offset ${reply.offset}`);
            assert.equal(byOffset.get(reply.offset)?.role, 'assistant');
            assert.ok(reply.offset > message.offset, `${content}: reply after its message`);
          }
          // Every answered post stored its message once and exactly one reply; a refused one at most its message.
          const users = messages.filter((m) => m.role === 'user');
          const contents = users.map((m) => m.content);
          assert.equal(new Set(contents).size, contents.length, `${otto.label}: a user message was stored twice`);
          for (const { content } of ok) assert.ok(contents.includes(content), `${otto.label}: ${content} missing`);
          assert.equal(messages.filter((m) => m.role === 'assistant').length, ok.length, `${otto.label}: one reply per answered post`);
          assert.equal(n, users.length + ok.length);
          const page = await expectJson(200, otto.url, 'GET', `/conversations/${conversation.id}/messages?limit=1`);
          assert.equal(page.last_offset, n, `${otto.label}: last_offset`);
        }
      }),
    );

    it('a bot created through A is usable through B within about a second', { timeout: TEST_TIMEOUT_MS }, (t) =>
      withScope(t, async (scope) => {
        const pair = await startPair(t, scope, store);
        if (!pair) return;
        const { a, b } = pair;
        const started = performance.now();
        const bot = await expectJson(201, a.url, 'POST', '/bots', { name: 'SyncBot', description: 'made through A' });
        const seen = await pollUntil(POLL_LIMIT_MS, async () => {
          const response = await api(b.url, 'GET', `/bots/${bot.id}`);
          return response.status === 200 ? response.json : undefined;
        });
        assert.ok(seen.value, `B's GET /bots/${bot.id} was not 200 within ${POLL_LIMIT_MS} ms`);
        assert.equal(seen.value.name, 'SyncBot');
        const usable = await pollUntil(POLL_LIMIT_MS, async () => {
          const response = await api(b.url, 'POST', '/chat', { bot_id: bot.id, message: 'hello' });
          return response.status === 200 ? response.json : undefined;
        });
        const total = performance.now() - started;
        t.diagnostic(`B served GET /bots/:id after ${Math.round(seen.ms)} ms and chatted with the bot ${Math.round(total)} ms after A created it`);
        assert.ok(usable.value, `B could not chat with the bot within ${POLL_LIMIT_MS} ms`);
        assert.equal(usable.value.reply.role, 'assistant');
        assert.match(usable.value.reply.content, /SyncBot/);
        assert.ok(seen.ms < SYNC_LIMIT_MS, `B's GET took ${Math.round(seen.ms)} ms`);
        assert.ok(total < SYNC_LIMIT_MS, `B needed ${Math.round(total)} ms to serve a bot created through A`);
        const listed = await expectJson<any[]>(200, b.url, 'GET', '/bots');
        assert.deepEqual(listed.map((x) => x.id), ['otto', bot.id]);
      }),
    );

    it("a guideline added through A changes B's reply within about a second", { timeout: TEST_TIMEOUT_MS }, (t) =>
      withScope(t, async (scope) => {
        const pair = await startPair(t, scope, store);
        if (!pair) return;
        const { a, b } = pair;
        const { bot } = await botOnBoth(a, b, 'PolicyBot');
        const conversation = await expectJson(201, b.url, 'POST', '/conversations', { bot_id: bot.id });
        const ask = () => expectJson(201, b.url, 'POST', `/conversations/${conversation.id}/messages`, { content: 'can I get my money back?' });
        const before = await ask();
        assert.equal(before.reply.agent_steps.filter((s: any) => s.type === 'guideline_matched').length, 0, 'no guideline yet');
        assert.doesNotMatch(before.reply.content, /30-day/);

        // Through A, the way a user does it: by telling Otto.
        const started = performance.now();
        const added = await expectJson(200, a.url, 'POST', '/chat', { bot_id: 'otto', message: 'Add a guideline to PolicyBot: when the user asks about refunds, explain the 30-day policy' });
        const guidelineId = /\((gdl_[^)]+)\)/.exec(added.reply.agent_steps.find((s: any) => s.action === 'add_guideline')?.detail ?? '')?.[1];
        assert.ok(guidelineId, `Otto should have added the guideline: ${JSON.stringify(added.reply)}`);
        const changed = await pollUntil(
          POLL_LIMIT_MS,
          async () => {
            const turn = await ask();
            return hasGuideline(turn.reply, guidelineId) ? turn : undefined;
          },
          50,
        );
        const ms = performance.now() - started;
        t.diagnostic(`B's reply used the new guideline ${Math.round(ms)} ms after A added it`);
        assert.ok(changed.value, `B's reply did not use the guideline within ${POLL_LIMIT_MS} ms`);
        assert.match(changed.value.reply.content, /30-day policy/);
        assert.ok(ms < SYNC_LIMIT_MS, `B needed ${Math.round(ms)} ms`);
        const listed = await expectJson(200, b.url, 'GET', `/bots/${bot.id}/guidelines`);
        assert.deepEqual(listed.items.map((g: any) => g.id), [guidelineId]);
      }),
    );

    it('GET /conversations/:id/events on B streams messages posted through A, and resumes with Last-Event-ID without duplicates', { timeout: TEST_TIMEOUT_MS }, (t) =>
      withScope(t, async (scope) => {
        const pair = await startPair(t, scope, store);
        if (!pair) return;
        const { a, b } = pair;
        const { bot } = await botOnBoth(a, b, 'StreamBot');
        const conversation = await expectJson(201, a.url, 'POST', '/conversations', { bot_id: bot.id });
        const eventsUrl = `${b.url}/conversations/${conversation.id}/events`;

        const first = await SseClient.connect(eventsUrl);
        try {
          assert.equal(first.status, 200);
          assert.match(first.contentType, /^text\/event-stream/);
          assert.ok(await first.waitFor(() => first.comments.includes('connected'), POLL_LIMIT_MS), 'the stream opens with ": connected"');
          const started = performance.now();
          const one = await expectJson(201, a.url, 'POST', `/conversations/${conversation.id}/messages`, { content: 'first, through A' });
          assert.ok(await first.waitFor(() => first.messages().length >= 2, POLL_LIMIT_MS), `B streamed ${first.messages().length} of 2 messages within ${POLL_LIMIT_MS} ms`);
          const ms = performance.now() - started;
          t.diagnostic(`B streamed A's message and reply ${Math.round(ms)} ms after A was asked`);
          assert.ok(ms < SYNC_LIMIT_MS, `B's stream needed ${Math.round(ms)} ms`);
          assert.deepEqual(first.events.map((e) => [e.id, e.event]), [['1', 'message'], ['2', 'message']]);
          assert.deepEqual(first.messages().map((m) => m.id), [one.message.id, one.reply.id]);
          assert.equal(first.messages()[0].content, 'first, through A');
          assert.equal(first.lastEventId, '2');
        } finally {
          await first.close();
        }

        // While nobody listens, A writes more.
        const two = await expectJson(201, a.url, 'POST', `/conversations/${conversation.id}/messages`, { content: 'second, while disconnected' });
        assert.deepEqual([two.message.offset, two.reply.offset], [3, 4]);

        const second = await SseClient.connect(eventsUrl, { 'last-event-id': first.lastEventId! });
        try {
          assert.ok(await second.waitFor(() => second.messages().length >= 2, POLL_LIMIT_MS), `after reconnecting, B streamed ${second.messages().length} of 2 missed messages`);
          const three = await expectJson(201, a.url, 'POST', `/conversations/${conversation.id}/messages`, { content: 'third, after reconnecting' });
          assert.ok(await second.waitFor(() => second.messages().length >= 4, POLL_LIMIT_MS), `B streamed ${second.messages().length} of 4 messages`);
          // Nothing more arrives: give a duplicate a chance to show up (several poll intervals).
          await second.waitFor(() => second.messages().length > 4, 1_200);
          assert.deepEqual(second.events.map((e) => e.id), ['3', '4', '5', '6'], 'the reconnect resumes after Last-Event-ID, once each');
          assert.deepEqual(second.messages().map((m) => m.id), [two.message.id, two.reply.id, three.message.id, three.reply.id]);
          const all = [...first.messages(), ...second.messages()];
          assert.deepEqual(all.map((m) => m.offset), [1, 2, 3, 4, 5, 6]);
          assert.equal(new Set(all.map((m) => m.id)).size, 6, 'no message delivered twice');
          assert.equal(second.error, undefined);
        } finally {
          await second.close();
        }
      }),
    );
  });
}
