import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signWebhook, verifyWebhookSignature, retryDelay } from '../../src/webhooks/index.ts';
import { call, testOtto } from '../support/otto.ts';
import type { Otto } from '../../src/http/otto.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';

const SECRET_KEY = Buffer.alloc(32, 3).toString('hex');

describe('signatures', () => {
  test('verify accepts the signed body, and rejects another body, another secret, an old timestamp', () => {
    const t = Math.floor(Date.now() / 1000);
    const header = signWebhook({ secret: 'whsec_abc', timestamp: t, body: '{"a":1}' });
    assert.match(header, /^t=\d+,v1=[0-9a-f]{64}$/);
    assert.equal(verifyWebhookSignature({ secret: 'whsec_abc', header, body: '{"a":1}' }), true);
    assert.equal(verifyWebhookSignature({ secret: 'whsec_abc', header, body: '{"a":2}' }), false);
    assert.equal(verifyWebhookSignature({ secret: 'whsec_xyz', header, body: '{"a":1}' }), false);
    const old = signWebhook({ secret: 'whsec_abc', timestamp: t - 3600, body: '{"a":1}' });
    assert.equal(verifyWebhookSignature({ secret: 'whsec_abc', header: old, body: '{"a":1}' }), false);
    assert.equal(verifyWebhookSignature({ secret: 'whsec_abc', header: 'garbage', body: '{"a":1}' }), false);
  });

  test('retries back off exponentially, capped', () => {
    assert.deepEqual([1, 2, 3, 4].map((n) => retryDelay(100, n)), [100, 200, 400, 800]);
    assert.equal(retryDelay(1000, 40), 3_600_000);
  });
});

describe('outgoing webhooks (in-process, real HTTP receiver)', () => {
  let otto: Otto;
  let receiver: WebhookReceiver;
  let botId: string;

  before(async () => {
    receiver = await startWebhookReceiver();
    otto = await testOtto({ OTTO_SECRET_KEY: SECRET_KEY, OTTO_WEBHOOK_BACKOFF_MS: '20', OTTO_WEBHOOK_INTERVAL_MS: '20', OTTO_WEBHOOK_MAX_ATTEMPTS: '4', OTTO_WEBHOOK_TIMEOUT_MS: '2000' });
    botId = (await call(otto, 'POST', '/bots', { name: 'Hooked' })).json.id;
  });
  after(async () => {
    await otto?.close();
    await receiver?.close();
  });

  test('bad input gets 4xx; the secret is shown once, then masked', async () => {
    assert.equal((await call(otto, 'POST', '/webhooks', { bot_id: botId, url: 'ftp://example.com' })).status, 400);
    assert.equal((await call(otto, 'POST', '/webhooks', { bot_id: botId, url: receiver.url, events: ['nope'] })).status, 400);
    assert.equal((await call(otto, 'POST', '/webhooks', { bot_id: 'bot_unknown', url: receiver.url })).status, 404);
    const created = await call(otto, 'POST', '/webhooks', { bot_id: botId, url: receiver.url });
    assert.equal(created.status, 201, created.body);
    assert.match(created.json.secret, /^whsec_/);
    receiver.secret = created.json.secret;
    const shown = await call(otto, 'GET', `/webhooks/${created.json.id}`);
    assert.equal(shown.json.secret, undefined);
    assert.ok(!shown.body.includes(created.json.secret));
    assert.equal(shown.json.secret_masked, `whs…${created.json.secret.slice(-4)}`);
  });

  test('conversation.created, message.created and bot.updated arrive signed; a failing receiver gets retries', async () => {
    receiver.respond = (n) => (n <= 2 ? 500 : 200);
    const chat = await call(otto, 'POST', '/chat', { bot_id: botId, message: 'hello' });
    assert.equal(chat.status, 200, chat.body);
    const renamed = await call(otto, 'PATCH', `/bots/${botId}`, { description: 'now hooked' });
    assert.equal(renamed.status, 200, renamed.body);
    const expected = [`conversation.created:${chat.json.conversation_id}`, `message.created:${chat.json.message.id}`, `message.created:${chat.json.reply.id}`, `bot.updated:${botId}:${renamed.json.version}`];
    await receiver.waitFor(() => expected.every((id) => receiver.eventIds().has(id)));
    for (const r of receiver.received) {
      assert.equal(r.signed, true, 'every delivery verifies');
      assert.equal(r.json.id, r.headers['otto-event-id']);
      assert.ok(String(r.headers['otto-delivery-id']).startsWith('whd_'));
    }
    const message = receiver.received.find((r) => r.json.id === `message.created:${chat.json.reply.id}`)!;
    assert.equal(message.json.type, 'message.created');
    assert.equal(message.json.data.role, 'assistant');
    assert.equal(message.json.bot_id, botId);

    const webhookId = (await call(otto, 'GET', '/webhooks')).json.items[0].id;
    // The receiver has answered 200; wait until Otto has recorded every outcome.
    let deliveries = await call(otto, 'GET', `/webhooks/${webhookId}/deliveries?limit=50`);
    for (const deadline = Date.now() + 10_000; deliveries.json.items.some((d: any) => d.status !== 'delivered') && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 20));
      deliveries = await call(otto, 'GET', `/webhooks/${webhookId}/deliveries?limit=50`);
    }
    assert.equal(deliveries.status, 200);
    assert.deepEqual(deliveries.json.items.map((d: any) => d.event_id).sort(), [...expected].sort());
    const retried = deliveries.json.items.filter((d: any) => d.attempts.some((a: any) => a.status_code === 500));
    assert.ok(retried.length >= 1, 'the failed attempts are recorded');
    for (const d of retried) {
      assert.equal(d.status, 'delivered');
      assert.ok(d.attempt_count >= 2);
    }
  });

  test('a receiver that keeps failing is given up after the configured attempts', async () => {
    receiver.respond = () => 503;
    const before = receiver.received.length;
    const renamed = await call(otto, 'PATCH', `/bots/${botId}`, { description: 'again' });
    const eventId = `bot.updated:${botId}:${renamed.json.version}`;
    await receiver.waitFor((all) => all.slice(before).filter((r) => r.json.id === eventId).length >= 4);
    const webhookId = (await call(otto, 'GET', '/webhooks')).json.items[0].id;
    const deadline = Date.now() + 10_000;
    let delivery: any;
    while (Date.now() < deadline) {
      delivery = (await call(otto, 'GET', `/webhooks/${webhookId}/deliveries?limit=50`)).json.items.find((d: any) => d.event_id === eventId);
      if (delivery?.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(delivery.status, 'failed');
    assert.equal(delivery.attempt_count, 4);
    assert.equal(delivery.last_error, 'HTTP 503');
    receiver.respond = () => 200;
  });
});

describe('outgoing webhooks on MongoDB (write-ahead change log)', () => {
  test('events reach the receiver once per event id, signed', async (t) => {
    const target = await mongoTestTarget();
    if ('skip' in target) return t.skip(target.skip);
    const receiver = await startWebhookReceiver();
    const database = `otto_hooks_${randomBytes(5).toString('hex')}`;
    const otto = await testOtto({
      OTTO_STORAGE: 'mongodb',
      MONGODB_URI: target.uri,
      MONGODB_DATABASE: database,
      OTTO_SECRET_KEY: SECRET_KEY,
      OTTO_WEBHOOK_BACKOFF_MS: '20',
      OTTO_WEBHOOK_INTERVAL_MS: '20',
      OTTO_CHANGES_RECOVERY_MS: '200',
    });
    try {
      const botId = (await call(otto, 'POST', '/bots', { name: 'Mongo hooked' })).json.id;
      const hook = await call(otto, 'POST', '/webhooks', { bot_id: botId, url: receiver.url, events: ['conversation.created', 'message.created'] });
      receiver.secret = hook.json.secret;
      receiver.respond = (n) => (n === 1 ? 500 : 200);
      const expected = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const chat = await call(otto, 'POST', '/chat', { bot_id: botId, message: `hi ${i}` });
        assert.equal(chat.status, 200, chat.body);
        expected.add(`conversation.created:${chat.json.conversation_id}`);
        expected.add(`message.created:${chat.json.message.id}`);
        expected.add(`message.created:${chat.json.reply.id}`);
      }
      await receiver.waitFor(() => [...expected].every((id) => receiver.eventIds().has(id)));
      assert.deepEqual([...receiver.eventIds()].sort(), [...expected].sort());
      assert.ok(receiver.received.every((r) => r.signed));
      const deliveries = await call(otto, 'GET', `/webhooks/${hook.json.id}/deliveries?limit=100`);
      assert.equal(deliveries.json.items.length, expected.size);
    } finally {
      await otto.close();
      const client = new MongoClient(target.uri);
      await client.db(database).dropDatabase().catch(() => {});
      await client.close();
      await receiver.close();
      await target.stop();
    }
  });
});
