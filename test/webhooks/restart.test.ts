import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { startOttoProcess } from '../support/otto-process.ts';
import { startWebhookReceiver } from '../support/webhook-receiver.ts';

const env = {
  OTTO_SECRET_KEY: Buffer.alloc(32, 9).toString('base64'),
  OTTO_WEBHOOK_BACKOFF_MS: '100',
  OTTO_WEBHOOK_INTERVAL_MS: '50',
  OTTO_WEBHOOK_MAX_ATTEMPTS: '50',
  OTTO_WEBHOOK_TIMEOUT_MS: '2000',
};

const dir = mkdtempSync(join(tmpdir(), 'otto-webhook-restart-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function json(url: string, method: string, body?: unknown): Promise<any> {
  const response = await fetch(url, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const parsed = await response.json();
  assert.ok(response.status < 300, `${method} ${url}: ${response.status} ${JSON.stringify(parsed)}`);
  return parsed;
}

test('a killed otto delivers its whole backlog after a restart, each event id once per webhook (receivers dedupe retries by Otto-Event-Id)', async () => {
  const receiver = await startWebhookReceiver();
  try {
    receiver.respond = () => 500; // the backlog builds while the receiver is failing
    const first = await startOttoProcess({ dataDir: dir, env, label: 'first' });
    const bot = await json(`${first.url}/bots`, 'POST', { name: 'Restarted' });
    const hook = await json(`${first.url}/webhooks`, 'POST', { bot_id: bot.id, url: receiver.url, events: ['conversation.created', 'message.created'] });
    receiver.secret = hook.secret;
    const expected = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const chat = await json(`${first.url}/chat`, 'POST', { bot_id: bot.id, message: `hello ${i}` });
      expected.add(`conversation.created:${chat.conversation_id}`);
      expected.add(`message.created:${chat.message.id}`);
      expected.add(`message.created:${chat.reply.id}`);
    }
    await receiver.waitFor((all) => all.length >= 5); // some attempts failed already
    await first.kill();
    const before = receiver.eventIds();
    assert.equal(before.size, 0, 'nothing was accepted before the crash');

    receiver.respond = () => 200;
    const second = await startOttoProcess({ dataDir: dir, env, label: 'second' });
    try {
      await receiver.waitFor(() => [...expected].every((id) => receiver.eventIds().has(id)), 30_000);
      // Give stragglers a moment: nothing beyond the expected events may arrive.
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual([...receiver.eventIds()].sort(), [...expected].sort());
      assert.ok(receiver.received.every((r) => r.signed), 'every request verifies');
      const deliveries = await json(`${second.url}/webhooks/${hook.id}/deliveries?limit=200`, 'GET');
      assert.equal(deliveries.items.length, expected.size, 'one delivery record per event id');
      assert.equal(new Set(deliveries.items.map((d: any) => d.event_id)).size, expected.size);
    } finally {
      await second.stop();
    }
    // `otto webhooks deliveries` shows them, with their attempts.
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l), env: { OTTO_DATA_DIR: dir, ...env }, cwd: dir };
    assert.equal(await main(['webhooks', 'deliveries', '--limit', '5', '--webhook', hook.id], io), 0, out.join('\n'));
    assert.equal(out.length, 6, out.join('\n'));
    assert.match(out[0]!, /^created_at\tdelivery\twebhook\tevent\tevent_id\tstatus\tattempts\tlast_error$/);
    for (const line of out.slice(1)) assert.match(line, new RegExp(`\\t${hook.id}\\t(conversation|message)\\.created\\t\\S+\\tdelivered\\t\\d+\\t`));
    out.length = 0;
    assert.equal(await main(['webhooks', 'deliveries', '--limit', 'lots'], io), 2);
    assert.equal(await main(['webhooks', '--help'], io), 0);
  } finally {
    await receiver.close();
  }
});
