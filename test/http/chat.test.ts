import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Otto } from '../../src/http/otto.ts';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fake-openai.ts';
import { call, testOtto } from '../support/otto.ts';

describe('chat through the API (offline provider)', () => {
  let otto: Otto;
  before(async () => (otto = await testOtto()));
  after(async () => otto.close());

  it('builds a bot by chatting with Otto, then talks to it', async () => {
    const created = await call(otto, 'POST', '/chat', { bot_id: 'otto', message: 'Create a bot called TestBot for testing' });
    assert.equal(created.status, 200);
    assert.match(created.json.reply.content, /Created \*\*TestBot\*\*/);
    assert.ok(created.json.reply.agent_steps.some((s: { type: string; ok: boolean }) => s.type === 'builder_action' && s.ok));
    const guideline = await call(otto, 'POST', '/chat', { bot_id: 'otto', conversation_id: created.json.conversation_id, message: 'Add a guideline to TestBot: when the user asks about refunds, explain the 30-day policy' });
    assert.equal(guideline.json.reply.offset, 4, 'the builder conversation continues');
    const bot = (await call(otto, 'GET', '/bots')).json.find((b: { name: string }) => b.name === 'TestBot');
    assert.ok(bot, 'the bot the builder made is listed');

    const answer = await call(otto, 'POST', '/chat', { bot_id: bot.id, message: 'can I get my money back?' });
    assert.equal(answer.status, 200);
    assert.equal(answer.json.message.offset, 1);
    assert.equal(answer.json.reply.offset, 2);
    assert.equal(answer.json.reply.role, 'assistant');
    assert.match(answer.json.reply.content, /30-day policy/);
    const step = answer.json.reply.agent_steps.find((s: { type: string }) => s.type === 'guideline_matched');
    assert.equal(step.condition, 'the user asks about refunds');

    const follow = await call(otto, 'POST', `/conversations/${answer.json.conversation_id}/messages`, { content: 'thanks, and what about shipping?' });
    assert.equal(follow.status, 201);
    assert.deepEqual([follow.json.message.offset, follow.json.reply.offset], [3, 4]);
    const conversation = await call(otto, 'GET', `/conversations/${answer.json.conversation_id}`);
    assert.equal(conversation.json.conversation.bot_id, bot.id);
    assert.deepEqual(conversation.json.messages.items.map((m: { offset: number }) => m.offset), [1, 2, 3, 4]);
  });

  it('pages messages by offset and conversations by cursor, filtered by bot and user', async () => {
    const bot = (await call(otto, 'POST', '/bots', { name: 'Pager' })).json;
    const first = await call(otto, 'POST', '/chat', { bot_id: bot.id, message: 'hello 0', user_id: 'u1' });
    const id = first.json.conversation_id;
    for (let i = 1; i < 6; i++) await call(otto, 'POST', '/chat', { conversation_id: id, message: `hello ${i}` });
    const latest = await call(otto, 'GET', `/conversations/${id}/messages?limit=4`);
    assert.deepEqual(latest.json.items.map((m: { offset: number }) => m.offset), [9, 10, 11, 12]);
    assert.equal(latest.json.older_before, 9);
    const older = await call(otto, 'GET', `/conversations/${id}/messages?limit=4&before=9`);
    assert.deepEqual(older.json.items.map((m: { offset: number }) => m.offset), [5, 6, 7, 8]);
    const start = await call(otto, 'GET', `/conversations/${id}/messages?limit=4&before=5`);
    assert.deepEqual(start.json.items.map((m: { offset: number }) => m.offset), [1, 2, 3, 4]);
    assert.equal(start.json.older_before, null);
    const after = await call(otto, 'GET', `/conversations/${id}/messages?after=10`);
    assert.deepEqual(after.json.items.map((m: { offset: number }) => m.offset), [11, 12]);
    assert.equal((await call(otto, 'GET', `/conversations/${id}/messages?after=1&before=3`)).status, 400);

    for (let i = 0; i < 4; i++) await call(otto, 'POST', '/conversations', { bot_id: bot.id, user_id: i % 2 ? 'u1' : 'u2' });
    const byBot = await call(otto, 'GET', `/conversations?bot_id=${bot.id}&limit=2`);
    assert.equal(byBot.json.items.length, 2);
    const rest = await call(otto, 'GET', `/conversations?bot_id=${bot.id}&limit=10&after=${byBot.json.next}`);
    assert.equal(byBot.json.items.length + rest.json.items.length, 5);
    assert.equal(rest.json.next, null);
    const byUser = await call(otto, 'GET', `/conversations?bot_id=${bot.id}&user_id=u1`);
    assert.equal(byUser.json.items.length, 3);
    assert.ok(byUser.json.items.every((c: { user_id: string }) => c.user_id === 'u1'));
  });

  it('rejects chat without a bot, with a bot that is not the conversation\'s, and with an unknown bot', async () => {
    assert.equal((await call(otto, 'POST', '/chat', { message: 'hi' })).json.error.field, 'bot_id');
    assert.equal((await call(otto, 'POST', '/chat', { bot_id: 'bot_nope', message: 'hi' })).status, 404);
    const c = (await call(otto, 'POST', '/chat', { bot_id: 'otto', message: 'help' })).json;
    const bot = (await call(otto, 'POST', '/bots', { name: 'Other' })).json;
    assert.equal((await call(otto, 'POST', '/chat', { bot_id: bot.id, conversation_id: c.conversation_id, message: 'hi' })).status, 400);
    assert.equal((await call(otto, 'POST', '/chat', { bot_id: 'otto', message: '   ' })).json.error.field, 'message');
  });
});

describe('chat with an OpenAI-compatible provider that fails', () => {
  let fake: FakeOpenAi;
  let otto: Otto;
  before(async () => {
    fake = await startFakeOpenAi();
    otto = await testOtto({ OTTO_LLM_PROVIDER: 'openai', OTTO_LLM_BASE_URL: fake.baseUrl, OTTO_LLM_API_KEY: 'sk-test-secret-key-123456', OTTO_LLM_MODEL: 'fake-model', OTTO_LLM_TIMEOUT_MS: '300' });
  });
  after(async () => {
    await otto.close();
    await fake.close();
  });

  it('keeps the user message with the error recorded, stores no reply, and continues without gaps', async () => {
    const bot = (await call(otto, 'POST', '/bots', { name: 'Fragile' })).json;
    fake.enqueue({ status: 500, body: { error: { message: 'upstream exploded' } } });
    const failed = await call(otto, 'POST', '/chat', { bot_id: bot.id, message: 'first question' });
    assert.equal(failed.status, 502);
    assert.equal(failed.json.error.code, 'PROVIDER_FAILED');
    assert.ok(!failed.body.includes('sk-test-secret-key-123456'), 'the key never reaches the client');
    const { conversation_id, offset } = failed.json.error.detail;
    assert.equal(offset, 1);
    const stored = (await call(otto, 'GET', `/conversations/${conversation_id}/messages`)).json.items;
    assert.equal(stored.length, 1, 'no half turn: only the user message');
    assert.equal(stored[0].content, 'first question');
    assert.equal(stored[0].agent_steps.at(-1).type, 'error');
    assert.equal(stored[0].agent_steps.at(-1).code, 'PROVIDER_FAILED');

    fake.enqueue({ content: 'too late', delayMs: 2000 });
    const slow = await call(otto, 'POST', '/chat', { conversation_id, message: 'second question' });
    assert.equal(slow.status, 504);
    assert.equal(slow.json.error.code, 'PROVIDER_TIMEOUT');

    fake.enqueue({ content: 'Here is the answer.' });
    const ok = await call(otto, 'POST', '/chat', { conversation_id, message: 'third question' });
    assert.equal(ok.status, 200);
    assert.deepEqual([ok.json.message.offset, ok.json.reply.offset], [3, 4]);
    assert.equal(ok.json.reply.content, 'Here is the answer.');
    assert.equal(ok.json.reply.meta_data.usage.model, 'fake-model');
    const last = fake.requests.at(-1)!;
    assert.equal(last.headers.authorization, 'Bearer sk-test-secret-key-123456');
    assert.ok(JSON.stringify(last.body.messages).includes('second question'), 'the window includes the stored earlier messages');
  });
});
