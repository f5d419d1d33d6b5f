/**
 * `POST /admin/sync` over real HTTP: an Otto on a SQLite file with a JSONL mirror writes bots,
 * guidelines and a conversation; then the primary loses a guideline and moves a bot ahead while
 * the backup gets a newer guideline and a same-version edit (none of it through the change log).
 * The sync restores what is missing, takes the newer backup version, never touches a newer
 * primary document, reports the conflict, changes nothing when run again, and is for admins only.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config.ts';
import { collections } from '../../src/domain/collections.ts';
import { createOtto, type Otto } from '../../src/http/otto.ts';
import type { Doc } from '../../src/storage/contract.ts';
import { createJsonlStore } from '../../src/storage/jsonl/jsonl-store.ts';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { chooseBackup } from '../../src/http/routes/admin-sync.ts';

const temps: string[] = [];
after(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

async function start(env: Record<string, string>): Promise<{ otto: Otto; base: string }> {
  const otto = await createOtto({ config: loadConfig({ OTTO_SYNC_INTERVAL_MS: '50', OTTO_MIRROR_INTERVAL_MS: '50', ...env }) });
  const address = await otto.app.listen({ host: '127.0.0.1', port: 0 });
  return { otto, base: address };
}

async function http(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

/** Waits until every mirror has every change (the background loop feeds them). */
async function caughtUp(otto: Otto): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const statuses = await otto.mirrors.status();
    if (statuses.every((s) => s.lag === 0 && s.status === 'ok')) return;
    if (Date.now() > deadline) assert.fail(`mirrors did not catch up: ${JSON.stringify(statuses)}`);
    await sleep(50);
  }
}

describe('POST /admin/sync (backup → primary)', () => {
  let dir: string;
  let env: Record<string, string>;
  let bot: Doc;
  let kept: Doc;
  let lost: Doc;
  let conversation: Doc;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'otto-admin-sync-'));
    temps.push(dir);
    env = { OTTO_DATA_DIR: dir, OTTO_MIRRORS: `jsonl:${join(dir, 'backup')}` };
    const { otto, base } = await start(env);
    try {
      bot = (await http(base, 'POST', '/bots', { name: 'Refunds' })).json;
      kept = (await http(base, 'POST', `/bots/${bot.id}/guidelines`, { condition: 'the user asks about refunds', action: 'explain the 30-day policy' })).json;
      lost = (await http(base, 'POST', `/bots/${bot.id}/guidelines`, { condition: 'the user is angry', action: 'apologise' })).json;
      conversation = (await http(base, 'POST', '/conversations', { bot_id: bot.id, title: 'first' })).json;
      for (const message of ['hello', 'can I get my money back?']) {
        assert.equal((await http(base, 'POST', `/conversations/${conversation.id}/messages`, { content: message })).status, 201);
      }
      await caughtUp(otto);
    } finally {
      await otto.close();
    }
    // Behind the change log's back: the primary loses a guideline and moves the bot ahead …
    const primary = await createSqliteStore({ path: join(dir, 'otto.db') });
    await (await primary.collection(collections.guidelines)).delete({ id: lost.id });
    await (await primary.collection(collections.bots)).update({ id: bot.id, patch: { description: 'edited in the primary' } });
    await primary.close();
    // … while the backup holds a newer version of a guideline and a same-version edit of the conversation.
    const backup = await createJsonlStore({ dir: join(dir, 'backup') });
    const guidelines = await backup.collection(collections.guidelines);
    const current = (await guidelines.get({ id: kept.id }))!;
    await guidelines.upsert({ doc: { ...current, action: 'explain the 60-day policy', version: current.version + 1 }, verbatim: true });
    const conversations = await backup.collection(collections.conversations);
    const conv = (await conversations.get({ id: conversation.id }))!;
    await conversations.upsert({ doc: { ...conv, title: 'edited in the backup' }, verbatim: true });
    await backup.close();
  });

  it('restores what is missing, takes newer backup versions, keeps newer primary ones, reports conflicts; a second run changes nothing', async () => {
    const { otto, base } = await start(env);
    try {
      const dry = await http(base, 'POST', '/admin/sync', { dry_run: true });
      assert.equal(dry.status, 200, JSON.stringify(dry.json));
      assert.equal(dry.json.dry_run, true);
      assert.equal((await http(base, 'GET', `/bots/${bot.id}/guidelines`)).json.items.length, 1, 'a dry run writes nothing');

      const first = await http(base, 'POST', '/admin/sync');
      assert.equal(first.status, 200, JSON.stringify(first.json));
      assert.equal(first.json.backup, `jsonl:${join(dir, 'backup')}`);
      const by = Object.fromEntries(first.json.collections.map((c: { collection: string }) => [c.collection, c]));
      assert.deepEqual(by.guidelines, { collection: 'guidelines', read: 2, inserted: 1, updated: 1, unchanged: 0, skipped_newer: 0, conflicts: 0, conflict_ids: [] });
      assert.equal(by.bots.skipped_newer, 1);
      assert.equal(by.bots.updated + by.bots.inserted, 0);
      assert.deepEqual([by.conversations.conflicts, by.conversations.conflict_ids], [1, [conversation.id]]);
      assert.equal(by.messages.read, 4);
      assert.equal(by.messages.unchanged, 4);
      assert.deepEqual(dry.json.totals, first.json.totals, 'the dry run predicted the real one');
      assert.deepEqual(first.json.changed_bots, [bot.id]);

      const guidelines = (await http(base, 'GET', `/bots/${bot.id}/guidelines`)).json.items;
      assert.deepEqual(guidelines.map((g: Doc) => g.id).sort(), [kept.id, lost.id].sort());
      assert.equal(guidelines.find((g: Doc) => g.id === kept.id).action, 'explain the 60-day policy');
      assert.equal((await http(base, 'GET', `/bots/${bot.id}`)).json.description, 'edited in the primary', 'the newer primary bot is kept');
      assert.equal((await http(base, 'GET', `/conversations/${conversation.id}`)).json.conversation.title, 'first', 'a conflict keeps the primary');
      // The running bot uses the restored guideline at once.
      assert.equal(otto.services.registry.get(bot.id)?.guidelines.length, 2);

      await caughtUp(otto);
      const second = await http(base, 'POST', '/admin/sync', { backup: 1 });
      assert.equal(second.status, 200);
      assert.equal(second.json.totals.inserted, 0);
      assert.equal(second.json.totals.updated, 0);
      assert.equal(second.json.totals.conflicts, 1, 'the same-version edit in the backup is still reported, never applied');
      assert.equal(second.json.totals.read, second.json.totals.unchanged + second.json.totals.skipped_newer + 1);
    } finally {
      await otto.close();
    }
  });

  it('names the backup only among the configured mirrors, and rejects bad bodies with 400', async () => {
    const { otto, base } = await start(env);
    try {
      const byUrl = await http(base, 'POST', '/admin/sync', { backup: `jsonl:${join(dir, 'backup')}`, collections: ['bots'], dry_run: true });
      assert.equal(byUrl.status, 200);
      assert.deepEqual(byUrl.json.collections.map((c: { collection: string }) => c.collection), ['bots']);
      const other = await http(base, 'POST', '/admin/sync', { backup: `jsonl:${join(dir, 'elsewhere')}` });
      assert.equal(other.status, 400);
      assert.equal(other.json.error.field, 'backup');
      assert.match(other.json.error.message, /is not one of the configured mirrors \(1: jsonl:/);
      assert.equal((await http(base, 'POST', '/admin/sync', { backup: 2 })).status, 400);
      assert.equal((await http(base, 'POST', '/admin/sync', { backup: '/etc' })).json.error.field, 'backup');
      assert.equal((await http(base, 'POST', '/admin/sync', { collections: ['_changes'] })).status, 400);
      assert.equal((await http(base, 'POST', '/admin/sync', { collections: ['nope'] })).status, 400);
      assert.equal((await http(base, 'POST', '/admin/sync', { backup: { $gt: '' } })).status, 400);
      assert.equal((await http(base, 'POST', '/admin/sync', { force: true })).status, 400);
      const spec = (await http(base, 'GET', '/openapi.json')).json;
      assert.ok(spec.paths['/admin/sync'].post, '/admin/sync is in the OpenAPI document');
    } finally {
      await otto.close();
    }
  });

  it('is refused to a caller who is not an admin, and answers 409 when no backup is configured', async () => {
    const otto = await createOtto({ config: loadConfig({ OTTO_STORAGE: 'memory', OTTO_MIRRORS: `jsonl:${join(dir, 'other-backup')}` }) });
    // Test seam: the caller the auth hook resolved, replaced by an owner who is not an admin.
    otto.app.addHook('preHandler', async (request) => {
      if (request.headers['x-test-owner']) request.caller = { owner_id: String(request.headers['x-test-owner']), admin: false };
    });
    const base = await otto.app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const refused = await http(base, 'POST', '/admin/sync', {}, { 'x-test-owner': 'alice' });
      assert.equal(refused.status, 403, JSON.stringify(refused.json));
      assert.equal(refused.json.error.code, 'FORBIDDEN');
      assert.equal((await http(base, 'POST', '/admin/sync', {})).status, 200, 'the local admin may');
    } finally {
      await otto.close();
    }
    const bare = await start({ OTTO_STORAGE: 'memory' });
    try {
      const none = await http(bare.base, 'POST', '/admin/sync', {});
      assert.equal(none.status, 409);
      assert.match(none.json.error.message, /set OTTO_MIRRORS/);
    } finally {
      await bare.otto.close();
    }
  });

  it('chooses the first jsonl mirror by default and never quotes a requested URL', () => {
    const urls = ['mongodb://u:secret@db:27017/copy', 'jsonl:/srv/a', 'jsonl:/srv/b'];
    assert.equal(chooseBackup(urls, undefined).display, 'jsonl:/srv/a');
    assert.equal(chooseBackup(urls, 3).display, 'jsonl:/srv/b');
    assert.equal(chooseBackup(urls, 'mongodb://other:pw@db/copy').position, 1);
    assert.throws(() => chooseBackup(urls, 'mongodb://x:hunter2@elsewhere/copy'), (e: Error) => !e.message.includes('hunter2') && !e.message.includes('secret'));
  });
});
