/**
 * A new user's first session, end to end against the real `otto serve` process: build a bot by
 * chatting with Otto, talk to it, stop the server, start it again on the same store and find
 * everything that was made. Once on the default SQLite store, once on a MongoDB-wire server.
 * Then the seed's curl flow (POST /agents, count, restart, count), also after Ctrl-C and after a crash.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import type { OttoProcess } from '../support/otto-process.ts';
import { api, expectJson, mongoTarget, stopMongoTarget, withScope, type Scope } from './harness.ts';

const TEST_TIMEOUT_MS = 120_000;
after(() => stopMongoTarget());

/** How a test reaches its store: Otto's environment and data dir. */
interface StoreSetup {
  engine: 'sqlite' | 'mongodb';
  env: Record<string, string>;
  dataDir?: string;
}

async function sqliteStore(scope: Scope): Promise<StoreSetup> {
  // No OTTO_STORAGE at all: SQLite is what a new user gets by default.
  return { engine: 'sqlite', env: {}, dataDir: await scope.tempDir('otto-e2e-sqlite-') };
}

/** A fresh database on the MongoDB-wire test server, or undefined after skipping the test loudly. */
async function mongoStore(t: TestContext, scope: Scope): Promise<StoreSetup | undefined> {
  const target = await mongoTarget();
  if ('skip' in target) {
    t.skip(target.skip);
    return undefined;
  }
  return { engine: 'mongodb', env: { OTTO_STORAGE: 'mongodb', MONGODB_URI: target.uri, MONGODB_DATABASE: scope.mongoDatabase(target.uri) } };
}

async function startOn(scope: Scope, store: StoreSetup, label: string): Promise<OttoProcess> {
  const otto = await scope.start({ env: store.env, dataDir: store.dataDir, label });
  assert.match(otto.stdout(), new RegExp(`^  storage +${store.engine} `, 'm'), otto.output());
  return otto;
}

async function stopCleanly(otto: OttoProcess, signal: 'SIGTERM' | 'SIGINT' = 'SIGTERM'): Promise<void> {
  const exit = await otto.stop(signal);
  assert.equal(exit.code, 0, `otto[${otto.label}] should exit 0 on ${signal}\n${otto.output()}`);
  assert.match(exit.stderr, new RegExp(`^${signal}: shutting down$`, 'm'), otto.output());
  assert.match(exit.stdout, /^Otto stopped$/m, otto.output());
}

function stepOf(message: { agent_steps: any[] }, predicate: (step: any) => boolean, what: string): any {
  const step = message.agent_steps.find(predicate);
  assert.ok(step, `expected a ${what} step in ${JSON.stringify(message.agent_steps)}`);
  return step;
}

async function newUserFlow(scope: Scope, store: StoreSetup): Promise<void> {
  // ---- first run: an empty store
  const first = await startOn(scope, store, 'first run');
  assert.match(first.stdout(), /Rehydrated 0 bot\(s\)/, first.output());
  if (store.dataDir) assert.ok(existsSync(join(store.dataDir, 'otto.db')), 'the SQLite file is created in OTTO_DATA_DIR');

  // Create a bot by chatting with Otto.
  const created = await expectJson(200, first.url, 'POST', '/chat', { bot_id: 'otto', message: 'Create a bot called TestBot for testing' });
  assert.equal(created.message.offset, 1);
  assert.equal(created.reply.offset, 2);
  const createStep = stepOf(created.reply, (s) => s.type === 'builder_action' && s.action === 'create_bot', 'create_bot');
  assert.equal(createStep.ok, true, created.reply.content);
  assert.match(created.reply.content, /Created \*\*TestBot\*\*/);
  const builderConversation: string = created.conversation_id;

  // Add a guideline, continuing the conversation with Otto.
  const added = await expectJson(200, first.url, 'POST', '/chat', {
    conversation_id: builderConversation,
    message: 'Add a guideline to TestBot: when the user asks about refunds, explain the 30-day policy',
  });
  assert.equal(added.conversation_id, builderConversation);
  assert.deepEqual([added.message.offset, added.reply.offset], [3, 4]);
  const addStep = stepOf(added.reply, (s) => s.type === 'builder_action' && s.action === 'add_guideline', 'add_guideline');
  assert.equal(addStep.ok, true, added.reply.content);
  assert.match(added.reply.content, /Added guideline 1 to TestBot/);

  // Find the bot's id the way a user would: GET /bots.
  const bots = await expectJson<any[]>(200, first.url, 'GET', '/bots');
  assert.equal(bots[0]?.id, 'otto', 'Otto (built-in) is listed first');
  const testBots = bots.filter((b) => b.name === 'TestBot');
  assert.equal(testBots.length, 1, JSON.stringify(bots));
  const botId: string = testBots[0].id;
  assert.equal(createStep.target, botId, 'the create_bot step names the new bot');
  assert.equal(testBots[0].description, 'A bot for testing.');
  const guidelines = await expectJson(200, first.url, 'GET', `/bots/${botId}/guidelines`);
  assert.equal(guidelines.items.length, 1, JSON.stringify(guidelines));
  const guideline = guidelines.items[0];
  assert.equal(guideline.condition, 'the user asks about refunds');
  assert.equal(guideline.action, 'explain the 30-day policy');

  // Talk to the new bot: the refund guideline matches.
  const chat = await expectJson(200, first.url, 'POST', '/chat', { bot_id: botId, message: 'can I get my money back?' });
  const matched = stepOf(chat.reply, (s) => s.type === 'guideline_matched', 'guideline_matched');
  assert.equal(matched.guideline_id, guideline.id);
  assert.equal(matched.action, 'explain the 30-day policy');
  assert.match(chat.reply.content, /30-day policy/);
  const conversationId: string = chat.conversation_id;
  assert.deepEqual([chat.message.offset, chat.reply.offset], [1, 2]);

  await stopCleanly(first);

  // ---- second run on the same store
  const second = await startOn(scope, store, 'second run');
  assert.match(second.stdout(), /Rehydrated 1 bot\(s\)/, second.output());
  const health = await expectJson(200, second.url, 'GET', '/health');
  assert.equal(health.storage.engine, store.engine);
  assert.deepEqual(health.bots, { rehydrated: 1, loaded: 1 });

  const botsAgain = await expectJson<any[]>(200, second.url, 'GET', '/bots');
  assert.deepEqual(botsAgain.map((b) => [b.id, b.name]), [['otto', 'Otto'], [botId, 'TestBot']]);
  const bot = await expectJson(200, second.url, 'GET', `/bots/${botId}`);
  assert.equal(bot.name, 'TestBot');
  assert.equal(bot.description, 'A bot for testing.');
  const guidelinesAgain = await expectJson(200, second.url, 'GET', `/bots/${botId}/guidelines`);
  assert.deepEqual(guidelinesAgain.items.map((g: any) => [g.id, g.condition, g.action]), [[guideline.id, guideline.condition, guideline.action]]);

  // The conversation with the bot, with both messages exactly as they were.
  const conversation = await expectJson(200, second.url, 'GET', `/conversations/${conversationId}`);
  assert.equal(conversation.conversation.bot_id, botId);
  const messages = conversation.messages.items;
  assert.deepEqual(
    messages.map((m: any) => [m.offset, m.role, m.id, m.content]),
    [
      [1, 'user', chat.message.id, 'can I get my money back?'],
      [2, 'assistant', chat.reply.id, chat.reply.content],
    ],
  );
  assert.deepEqual(messages[1].agent_steps, chat.reply.agent_steps);
  assert.equal(conversation.messages.last_offset, 2);
  const listed = await expectJson(200, second.url, 'GET', `/conversations?bot_id=${botId}`);
  assert.deepEqual(listed.items.map((c: any) => c.id), [conversationId]);
  // And the conversation with Otto that built it.
  const built = await expectJson(200, second.url, 'GET', `/conversations/${builderConversation}/messages?after=0`);
  assert.deepEqual(built.items.map((m: any) => [m.offset, m.role]), [[1, 'user'], [2, 'assistant'], [3, 'user'], [4, 'assistant']]);

  // The rehydrated bot still answers with its guideline, continuing the same conversation.
  const again = await expectJson(201, second.url, 'POST', `/conversations/${conversationId}/messages`, { content: 'can I get my money back?' });
  assert.deepEqual([again.message.offset, again.reply.offset], [3, 4]);
  assert.equal(stepOf(again.reply, (s) => s.type === 'guideline_matched', 'guideline_matched').guideline_id, guideline.id);
  // Otto still knows the bot by name.
  const described = await expectJson(200, second.url, 'POST', '/chat', { conversation_id: builderConversation, message: 'describe TestBot' });
  assert.match(described.reply.content, /30-day policy/);

  await stopCleanly(second);
}

/** How the first run ends: a clean stop (SIGTERM, or SIGINT as Ctrl-C sends) or a crash (SIGKILL). */
type Ending = 'SIGTERM' | 'SIGINT' | 'SIGKILL';

async function curlFlow(scope: Scope, store: StoreSetup, ending: Ending = 'SIGTERM'): Promise<void> {
  const first = await startOn(scope, store, 'first run');
  const agent = await expectJson(201, first.url, 'POST', '/agents', { name: 'PersistenceTest', description: 'Testing persistence' });
  assert.equal(agent.name, 'PersistenceTest');
  assert.equal(agent.description, 'Testing persistence');
  const agents = await expectJson<any[]>(200, first.url, 'GET', '/agents');
  assert.equal(agents.length, 2, JSON.stringify(agents));
  assert.deepEqual(agents.map((a) => a.name), ['Otto', 'PersistenceTest']);
  if (ending === 'SIGKILL') await first.kill();
  else await stopCleanly(first, ending);

  const second = await startOn(scope, store, 'second run');
  assert.match(second.stdout(), /Rehydrated 1 bot\(s\)/, second.output());
  const again = await expectJson<any[]>(200, second.url, 'GET', '/agents');
  assert.equal(again.length, 2, JSON.stringify(again));
  assert.deepEqual(again.map((a) => [a.id, a.name]), agents.map((a) => [a.id, a.name]));
  // The same name again is refused: it really is the stored bot, not a fresh one.
  const duplicate = await api(second.url, 'POST', '/agents', { name: 'PersistenceTest' });
  assert.equal(duplicate.status, 409, duplicate.text);
  await stopCleanly(second);
}

describe('a new user, end to end (real otto serve processes)', () => {
  it('SQLite (default): builds TestBot by chatting with Otto, uses it, restarts, finds everything', { timeout: TEST_TIMEOUT_MS }, (t) =>
    withScope(t, async (scope) => newUserFlow(scope, await sqliteStore(scope))),
  );

  it('MongoDB: builds TestBot by chatting with Otto, uses it, restarts, finds everything', { timeout: TEST_TIMEOUT_MS }, (t) =>
    withScope(t, async (scope) => {
      const store = await mongoStore(t, scope);
      if (store) await newUserFlow(scope, store);
    }),
  );

  it("SQLite: the seed's curl flow — POST /agents, GET /agents counts 2, still 2 after a restart", { timeout: TEST_TIMEOUT_MS }, (t) =>
    withScope(t, async (scope) => curlFlow(scope, await sqliteStore(scope))),
  );

  it("MongoDB: the seed's curl flow — POST /agents, GET /agents counts 2, still 2 after a restart", { timeout: TEST_TIMEOUT_MS }, (t) =>
    withScope(t, async (scope) => {
      const store = await mongoStore(t, scope);
      if (store) await curlFlow(scope, store);
    }),
  );

  it('SQLite: stopped with Ctrl-C (SIGINT), Otto exits 0 and keeps the agent', { timeout: TEST_TIMEOUT_MS }, (t) =>
    withScope(t, async (scope) => curlFlow(scope, await sqliteStore(scope), 'SIGINT')),
  );

  it('SQLite: after a crash (SIGKILL), the acknowledged agent is still there', { timeout: TEST_TIMEOUT_MS }, (t) =>
    withScope(t, async (scope) => curlFlow(scope, await sqliteStore(scope), 'SIGKILL')),
  );

  it('MongoDB: after a crash (SIGKILL), the acknowledged agent is still there', { timeout: TEST_TIMEOUT_MS }, (t) =>
    withScope(t, async (scope) => {
      const store = await mongoStore(t, scope);
      if (store) await curlFlow(scope, store, 'SIGKILL');
    }),
  );
});
