import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { createOtto, type Otto } from '../../src/http/otto.ts';
import type { Doc } from '../../src/storage/contract.ts';
import { call } from '../support/otto.ts';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack.ts';
import { startFakeTelegram, type FakeTelegram } from '../support/fake-telegram.ts';

const SECRET_KEY = Buffer.alloc(32, 7).toString('base64');
const TG_TOKEN = '123456:AAFakeTelegramTokenForOtto';
const SLACK_TOKEN = 'xoxb-fake-slack-bot-token-1';
const SIGNING = 'fake-signing-secret-0123456789';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function counts(otto: Otto): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of ['conversations', 'messages', 'channel_updates', 'channel_conversations']) {
    out[name] = await (await otto.storage.store.collection({ name, indexes: [], schemaVersion: 1 })).count();
  }
  return out;
}

describe('channels: Telegram and Slack against fake servers on loopback (SQLite)', () => {
  let dir: string;
  let otto: Otto;
  let telegram: FakeTelegram;
  let slack: FakeSlack;
  let url: string;
  let botId: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'otto-channels-'));
    telegram = await startFakeTelegram();
    slack = await startFakeSlack();
    telegram.addBot(TG_TOKEN, { id: 4242, username: 'otto_test_bot' });
    slack.addBot(SLACK_TOKEN, { user_id: 'UOTTO', bot_id: 'BOTTO', team_id: 'T1' });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    otto = await createOtto({
      config: loadConfig({
        OTTO_STORAGE: 'sqlite',
        OTTO_DATA_DIR: dir,
        OTTO_SYNC_INTERVAL_MS: '50',
        OTTO_SECRET_KEY: SECRET_KEY,
        OTTO_PUBLIC_URL: url,
        OTTO_TELEGRAM_API_BASE: telegram.base,
        OTTO_SLACK_API_BASE: slack.base,
      }),
    });
    await otto.app.listen({ port, host: '127.0.0.1' });
    const bot = await call(otto, 'POST', '/bots', { name: 'Helper', description: 'helps with orders' });
    assert.equal(bot.status, 201, bot.body);
    botId = bot.json.id;
    await call(otto, 'POST', `/bots/${botId}/guidelines`, { condition: 'the user asks about refunds', action: 'explain the 30-day refund policy' });
  });

  after(async () => {
    await otto?.close();
    await telegram?.close();
    await slack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('Telegram: connect registers the webhook; an update is answered once, redeliveries are not', async () => {
    const connected = await call(otto, 'POST', '/channels', { bot_id: botId, platform: 'telegram', bot_token: TG_TOKEN });
    assert.equal(connected.status, 201, connected.body);
    assert.equal(connected.json.bot_token_masked, '123…Otto');
    assert.ok(!connected.body.includes(TG_TOKEN), 'the token is never returned');
    const hook = telegram.webhooks.get(TG_TOKEN);
    assert.equal(hook?.url, `${url}/channels/telegram/${connected.json.id}`);
    assert.match(hook!.secret_token, /^[0-9a-f]{64}$/);

    const update = { update_id: 1001, message: { message_id: 5, date: 1, text: 'can I get a refund?', chat: { id: 777, type: 'private' }, from: { id: 99, is_bot: false, first_name: 'Ann' } } };
    const first = await telegram.deliver(TG_TOKEN, update);
    assert.deepEqual([first.status, first.json.status], [200, 'accepted']);
    const again = await telegram.deliver(TG_TOKEN, update);
    assert.deepEqual([again.status, again.json.status], [200, 'duplicate']);
    await otto.integrations.channels.idle();
    const sent = telegram.sent();
    assert.equal(sent.length, 1, 'one reply for two deliveries of one update');
    assert.equal(sent[0]!.chat_id, 777);
    assert.match(sent[0]!.text, /refund|30-day/i);

    // The same chat continues the same conversation.
    await telegram.deliver(TG_TOKEN, { ...update, update_id: 1002, message: { ...update.message, message_id: 6, text: 'thanks' } });
    await otto.integrations.channels.idle();
    assert.equal(telegram.sent().length, 2);
    const conversations = await call(otto, 'GET', `/conversations?bot_id=${botId}`);
    assert.equal(conversations.json.items.length, 1);
    assert.equal(conversations.json.items[0].last_offset, 4);
  });

  test('answered updates are pruned once platforms no longer redeliver them; unanswered ones stay', async () => {
    const updates = await otto.storage.store.collection<Doc & { status: string }>({ name: 'channel_updates', indexes: [], schemaVersion: 1 });
    const answered = (await updates.find({ limit: 100 })).items.filter((u) => u.status === 'replied').length;
    assert.ok(answered >= 2, 'the updates answered above');
    await updates.insert({ doc: { id: 'upd_pending_test', account_id: 'acc_none', update_id: 'x1', status: 'received', lease_until: new Date(Date.now() + 60_000).toISOString() } as never });
    const channels = otto.integrations.channels;
    assert.equal(await channels.pruneSettled(), 0, 'a week is kept by default');
    assert.equal(await channels.pruneSettled({ now: Date.now() + 8 * 86_400_000 }), answered);
    assert.deepEqual((await updates.find({ limit: 100 })).items.map((u) => u.id), ['upd_pending_test'], 'a claim still being answered stays');
    await updates.delete({ id: 'upd_pending_test' });
  });

  test('Telegram: a redelivery to another Otto process sharing the store is not answered again', async () => {
    const second = await createOtto({
      config: loadConfig({ OTTO_STORAGE: 'sqlite', OTTO_DATA_DIR: dir, OTTO_SYNC_INTERVAL_MS: '50', OTTO_SECRET_KEY: SECRET_KEY, OTTO_PUBLIC_URL: url, OTTO_TELEGRAM_API_BASE: telegram.base, OTTO_SLACK_API_BASE: slack.base }),
    });
    try {
      const id = (await call(otto, 'GET', '/channels')).json.items.find((c: any) => c.platform === 'telegram').id;
      const secret = telegram.webhooks.get(TG_TOKEN)!.secret_token;
      const update = { update_id: 1500, message: { message_id: 9, text: 'hello from two', chat: { id: 778 }, from: { id: 98, is_bot: false } } };
      const sentBefore = telegram.sent().length;
      const answers = await Promise.all(
        [otto, second].map((o) =>
          o.app.inject({ method: 'POST', url: `/channels/telegram/${id}`, headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret }, payload: JSON.stringify(update) }),
        ),
      );
      assert.deepEqual(answers.map((a) => a.statusCode), [200, 200]);
      assert.deepEqual(answers.map((a) => a.json().status).sort(), ['accepted', 'duplicate']);
      await otto.integrations.channels.idle();
      await second.integrations.channels.idle();
      assert.equal(telegram.sent().length, sentBefore + 1);
    } finally {
      await second.close();
    }
  });

  test('Telegram: a reply that could not be sent, or an update acknowledged by a process that died, is answered by recovery, once', async () => {
    const id = (await call(otto, 'GET', '/channels')).json.items.find((c: any) => c.platform === 'telegram').id;
    const updates = await otto.storage.store.collection<any>({ name: 'channel_updates', indexes: [], schemaVersion: 1 });
    const expire = async (updateId: string) => {
      const claim = (await updates.find({ limit: 1000 })).items.find((u: any) => u.update_id === updateId);
      await updates.update({ id: claim.id, patch: { lease_until: new Date(Date.now() - 1000).toISOString() } });
      return claim.id as string;
    };
    // 1. Telegram fails the sendMessage: the claim stays received with the reply; recovery sends it, without a second turn.
    telegram.failNext('sendMessage', 1);
    const sentBefore = telegram.sent().length;
    await telegram.deliver(TG_TOKEN, { update_id: 3001, message: { message_id: 1, text: 'refund please', chat: { id: 901 }, from: { id: 5, is_bot: false } } });
    await otto.integrations.channels.idle();
    const claimId = await expire('3001');
    let claim = await updates.get({ id: claimId });
    assert.deepEqual([claim.status, typeof claim.reply_text], ['received', 'string']);
    assert.equal(await otto.integrations.channels.recover(), 1);
    await otto.integrations.channels.idle();
    claim = await updates.get({ id: claimId });
    assert.equal(claim.status, 'replied');
    assert.equal(telegram.sent().length, sentBefore + 1);
    const conversation = (await call(otto, 'GET', `/conversations/${claim.conversation_id}`)).json;
    assert.equal(conversation.conversation.last_offset, 2, 'the turn ran once');

    // 2. A claim left by a process that died before the turn: recovery runs it.
    await updates.insert({
      doc: { id: 'upd_crashed0000000000000000', account_id: id, owner_id: 'local', update_id: '3002', status: 'received', chat_key: 'chat:902', user_id: null, text: 'hello?', reply: { chat_id: 902 }, reply_text: null, lease_until: new Date(Date.now() - 1000).toISOString(), attempts: 1, conversation_id: null, error: null },
    });
    assert.equal(await otto.integrations.channels.recover(), 1);
    await otto.integrations.channels.idle();
    assert.equal((await updates.get({ id: 'upd_crashed0000000000000000' })).status, 'replied');
    assert.equal(telegram.sent().at(-1)!.chat_id, 902);
    assert.equal(await otto.integrations.channels.recover(), 0, 'nothing left to recover');
  });

  test('Telegram: wrong or missing secret token, malformed and unknown updates, huge payloads → 4xx and no data change', async () => {
    const id = (await call(otto, 'GET', '/channels')).json.items.find((c: any) => c.platform === 'telegram').id;
    const before = await counts(otto);
    const update = { update_id: 2001, message: { message_id: 1, text: 'hi', chat: { id: 1 }, from: { id: 1, is_bot: false } } };
    assert.equal((await telegram.deliver(TG_TOKEN, update, { secret: 'f'.repeat(64) })).status, 401);
    assert.equal((await telegram.deliver(TG_TOKEN, update, { secret: null })).status, 401);
    const unknown = await telegram.deliver(TG_TOKEN, { update_id: 2002, galactic_event: {} });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error.code, 'INVALID');
    assert.equal((await telegram.deliver(TG_TOKEN, { message: {} })).status, 400);
    assert.equal((await telegram.deliver(TG_TOKEN, null, { raw: '{"update_id": 3,' })).status, 400);
    const huge = await telegram.deliver(TG_TOKEN, { update_id: 2003, message: { message_id: 1, text: 'x'.repeat(400_000), chat: { id: 1 } } });
    assert.equal(huge.status, 413);
    const other = await fetch(`${url}/channels/telegram/chn_unknown000000000000`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': 'x' }, body: '{"update_id":1}' });
    assert.equal(other.status, 404);
    // A known kind Otto does not answer is acknowledged (so Telegram does not resend it), and stores nothing.
    const ignored = await telegram.deliver(TG_TOKEN, { update_id: 2004, my_chat_member: { chat: { id: 1 } } });
    assert.deepEqual([ignored.status, ignored.json.status], [200, 'ignored']);
    await otto.integrations.channels.idle();
    assert.deepEqual(await counts(otto), before);
    assert.ok(id);
  });

  test('Slack: signature, stale timestamps, url_verification, retries, bot messages', async () => {
    const connected = await call(otto, 'POST', '/channels', { bot_id: botId, platform: 'slack', bot_token: SLACK_TOKEN, signing_secret: SIGNING });
    assert.equal(connected.status, 201, connected.body);
    assert.equal(connected.json.platform_bot.user_id, 'UOTTO');
    assert.ok(!connected.body.includes(SIGNING) && !connected.body.includes(SLACK_TOKEN));
    const inbound = `${url}/channels/slack/${connected.json.id}`;
    assert.equal(connected.json.inbound_url, inbound);

    const challenge = await slack.sendEvent(inbound, SIGNING, { type: 'url_verification', token: 'x', challenge: 'ch4ll3nge' });
    assert.deepEqual([challenge.status, challenge.json.challenge], [200, 'ch4ll3nge']);

    const before = await counts(otto);
    const event = { type: 'event_callback', team_id: 'T1', event_id: 'Ev001', event_time: 1, event: { type: 'message', channel: 'C1', channel_type: 'channel', user: 'U1', text: 'can I get a refund?', ts: '1.1' } };
    assert.equal((await slack.sendEvent(inbound, 'wrong-signing-secret-000000', event)).status, 401, 'forged signature');
    assert.equal((await slack.sendEvent(inbound, SIGNING, event, { timestamp: Math.floor(Date.now() / 1000) - 600 })).status, 401, 'stale timestamp');
    assert.equal((await slack.sendEvent(inbound, SIGNING, { type: 'app_rate_limited' })).status, 400, 'unknown request type');
    assert.equal((await slack.sendEvent(inbound, SIGNING, null, { raw: 'not json' })).status, 400);
    const botMessage = await slack.sendEvent(inbound, SIGNING, { ...event, event_id: 'Ev002', event: { ...event.event, user: 'UOTTO', bot_id: 'BOTTO', text: 'my own reply' } });
    assert.deepEqual([botMessage.status, botMessage.json.status], [200, 'ignored']);
    await otto.integrations.channels.idle();
    assert.deepEqual(await counts(otto), before, 'rejected and ignored requests change nothing');

    const first = await slack.sendEvent(inbound, SIGNING, event);
    assert.deepEqual([first.status, first.json.status], [200, 'accepted']);
    const retry = await slack.sendEvent(inbound, SIGNING, event, { retryNum: 1 });
    assert.deepEqual([retry.status, retry.json.status], [200, 'duplicate']);
    await otto.integrations.channels.idle();
    const posted = slack.posted();
    assert.equal(posted.length, 1);
    assert.equal(posted[0]!.channel, 'C1');
    assert.match(posted[0]!.text, /refund|30-day/i);
    const slackToken = slack.calls.find((c) => c.method === 'chat.postMessage')!.token;
    assert.equal(slackToken, SLACK_TOKEN);
  });

  test('channels are owner-scoped and masked; connecting needs a valid token', async () => {
    const refused = await call(otto, 'POST', '/channels', { bot_id: botId, platform: 'telegram', bot_token: '999:NotARealTokenAtAll' });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.field, 'bot_token');
    const slackNoSecret = await call(otto, 'POST', '/channels', { bot_id: botId, platform: 'slack', bot_token: SLACK_TOKEN });
    assert.equal(slackNoSecret.status, 400);
    const list = await call(otto, 'GET', '/channels');
    assert.equal(list.status, 200);
    for (const c of list.json.items) assert.equal(c.bot_token, undefined);
    const tg = list.json.items.find((c: any) => c.platform === 'telegram');
    const removed = await call(otto, 'DELETE', `/channels/${tg.id}`);
    assert.deepEqual([removed.status, removed.json.webhook_removed], [200, true]);
    assert.equal(telegram.webhooks.has(TG_TOKEN), false);
    assert.equal((await call(otto, 'GET', `/channels/${tg.id}`)).status, 404);
  });

  test('inbound routes are public and tagged channels-inbound in the OpenAPI document', async () => {
    const doc = (await call(otto, 'GET', '/openapi.json')).json;
    for (const path of ['/channels/telegram/{account_id}', '/channels/slack/{account_id}']) {
      assert.deepEqual(doc.paths[path].post.tags, ['channels-inbound']);
      assert.deepEqual(doc.paths[path].post.security, []);
    }
  });
});
