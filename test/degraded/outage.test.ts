/**
 * Degraded mode end to end: a real `otto serve` on a MongoDB-wire server (its own FerretDB, so it
 * can be stopped and started again on the same data) with a JSON-lines mirror.
 *
 * - A stream of writes over HTTP goes on while the server is killed and restarted: every write
 *   gets a 2xx (spooled while the server is down, each response with `Otto-Degraded`), reads come
 *   from the mirror, and afterwards every acknowledged write is in the primary, once.
 * - Without a mirror, writes and reads answer 503 while the server is down, and Otto recovers by
 *   itself.
 * - Through a TCP proxy (Otto cut off while the server keeps running for the test): an edit of a
 *   bot changed in the primary meanwhile is recorded as a conflict and not applied; a message
 *   whose offset was taken meanwhile is moved after the last one; `otto doctor` and
 *   `GET /admin/doctor` report the conflict.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import { createJsonlStore } from '../../src/storage/jsonl/jsonl-store.ts';
import { buildFerretDb, startFerretDb, type FerretDbServer } from '../support/mongodb-server.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { envWithoutOttoSettings } from '../support/otto-process.ts';
import { api, pollUntil, withScope, type ApiResponse } from '../e2e/harness.ts';

const TEST_TIMEOUT_MS = 240_000;
const RECOVERY_LIMIT_MS = 60_000;
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

let ferret: FerretDbServer | undefined;
let skip: string | undefined;

before(async () => {
  try {
    await buildFerretDb();
  } catch (error) {
    if (process.env.CI === 'true') throw error;
    skip = `DEGRADED-MODE TESTS SKIPPED: cannot build the FerretDB test server (${(error as Error).message.split('\n')[0]}); install Go 1.24+`;
    return;
  }
  // Its own server: these tests stop and start it.
  ferret = await startFerretDb();
});

after(async () => {
  await ferret?.stop();
});

function server(t: TestContext): FerretDbServer | undefined {
  if (skip) t.skip(skip);
  return ferret;
}

async function mongo<T>(uri: string, fn: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(uri, { directConnection: true, serverSelectionTimeoutMS: 10_000 });
  try {
    return await fn(client);
  } finally {
    await client.close().catch(() => {});
  }
}

function degradedHeader(response: ApiResponse): string | null {
  return response.headers.get('otto-degraded');
}

/** Waits until /health says the mirror has every change. */
async function mirrorCaughtUp(url: string): Promise<void> {
  const { value } = await pollUntil(RECOVERY_LIMIT_MS, async () => {
    const health = await api(url, 'GET', '/health');
    const mirror = health.json?.mirrors?.[0];
    return mirror && mirror.lag === 0 && mirror.status === 'ok' ? true : undefined;
  }, 100);
  assert.equal(value, true, 'the mirror catches up');
}

/** Waits until /health says degraded mode is over. */
async function recovered(url: string): Promise<any> {
  let last: unknown;
  const { value } = await pollUntil(RECOVERY_LIMIT_MS, async () => {
    const health = await api(url, 'GET', '/health');
    last = health.json?.degraded ?? health.text;
    return health.json?.degraded?.active === false ? health.json : undefined;
  }, 100);
  assert.ok(value, `degraded mode ends once the server is back; /health still says ${JSON.stringify(last)}`);
  return value;
}

describe('degraded mode on a MongoDB primary', { timeout: TEST_TIMEOUT_MS }, () => {
  it('keeps acknowledging a stream of writes while the server is down, and every acknowledged write is in the primary once afterwards', async (t) => {
    const db = server(t);
    if (!db) return;
    await withScope(t, async (scope) => {
      const dataDir = await scope.tempDir('otto-degraded-');
      const database = `otto_degraded_${randomBytes(5).toString('hex')}`;
      const mirrorDir = join(dataDir, 'mirror');
      const otto = await scope.start({
        dataDir,
        label: 'degraded',
        env: { OTTO_STORAGE: 'mongodb', MONGODB_URI: db.uri, MONGODB_DATABASE: database, OTTO_MIRRORS: `jsonl:${mirrorDir}`, OTTO_PRIMARY_RETRY_MS: '200', OTTO_MIRROR_INTERVAL_MS: '100' },
      });
      assert.match(otto.stdout(), /degraded\s+if the primary goes down: reads from jsonl:/);

      const acked: Array<{ kind: 'bot' | 'chat'; id: string; name?: string; degraded: string | null; phase: string }> = [];
      let n = 0;
      const write = async (phase: string) => {
        const i = n++;
        if (i % 3 === 2) {
          const response = await api(otto.url, 'POST', '/chat', { bot_id: 'otto', message: 'help' });
          assert.equal(response.status, 200, `POST /chat #${i} (${phase}) → ${response.status}: ${response.text.slice(0, 500)}`);
          acked.push({ kind: 'chat', id: response.json.conversation_id, degraded: degradedHeader(response), phase });
        } else {
          const name = `Stream ${i}`;
          const response = await api(otto.url, 'POST', '/bots', { name });
          assert.equal(response.status, 201, `POST /bots #${i} (${phase}) → ${response.status}: ${response.text.slice(0, 500)}`);
          acked.push({ kind: 'bot', id: response.json.id, name, degraded: degradedHeader(response), phase });
        }
      };

      for (let i = 0; i < 9; i++) await write('up');
      await mirrorCaughtUp(otto.url);
      const before = acked.find((a) => a.kind === 'bot')!;

      // The server dies in the middle of the stream.
      await db.kill();
      for (let i = 0; i < 12; i++) await write('down');
      const down = acked.filter((a) => a.phase === 'down');
      assert.ok(down.every((a) => a.degraded !== null), 'every response while the server is down says Otto-Degraded');
      assert.match(down[0]!.degraded!, /primary unreachable; reads from mirror, writes spooled/);

      // Reads come from the mirror, with this process's own spooled writes.
      const fromMirror = await api(otto.url, 'GET', `/bots/${before.id}`);
      assert.equal(fromMirror.status, 200);
      assert.equal(fromMirror.json.name, before.name);
      assert.ok(degradedHeader(fromMirror));
      const ownBot = down.find((a) => a.kind === 'bot')!;
      assert.equal((await api(otto.url, 'GET', `/bots/${ownBot.id}`)).json.name, ownBot.name);
      const ownChat = down.find((a) => a.kind === 'chat')!;
      const messages = await api(otto.url, 'GET', `/conversations/${ownChat.id}/messages`);
      assert.equal(messages.status, 200);
      assert.deepEqual(messages.json.items.map((m: { offset: number }) => m.offset), [1, 2]);
      const health = await api(otto.url, 'GET', '/health');
      assert.equal(health.status, 200);
      assert.equal(health.json.status, 'degraded');
      assert.equal(health.json.degraded.active, true);
      assert.equal(health.json.degraded.reads_from, `jsonl:${mirrorDir}`);
      assert.equal(health.json.degraded.writes, 'spool');
      assert.ok(health.json.degraded.spool_backlog >= down.length, `backlog ${health.json.degraded.spool_backlog}`);
      assert.equal((await api(otto.url, 'GET', '/ready')).status, 200);

      // The server comes back on the same data while writes keep coming.
      await db.restart();
      for (let i = 0; i < 6; i++) await write('back');
      const report = await recovered(otto.url);
      assert.equal(report.status, 'ok');
      assert.equal(report.degraded.spool_backlog, 0);
      assert.equal(report.degraded.conflicts, 0);
      for (let i = 0; i < 3; i++) await write('after');
      assert.ok(acked.slice(-3).every((a) => a.degraded === null), 'no header once the primary serves again');

      // Every acknowledged write is in the primary, exactly once.
      await mongo(db.uri, async (client) => {
        const d = client.db(database);
        const bots = acked.filter((a) => a.kind === 'bot');
        for (const bot of bots) {
          const found = await d.collection('bots').find({ name: { $eq: bot.name } }).toArray();
          assert.equal(found.length, 1, `${bot.name} (${bot.phase}) is in the primary once`);
          assert.equal(found[0]!._id, bot.id);
        }
        const chats = acked.filter((a) => a.kind === 'chat');
        for (const chat of chats) {
          assert.equal(await d.collection('conversations').countDocuments({ _id: { $eq: chat.id } as never }), 1, `conversation ${chat.id} (${chat.phase})`);
          const offsets = (await d.collection('messages').find({ conversation_id: { $eq: chat.id } }).sort({ offset: 1 }).toArray()).map((m) => m.offset);
          assert.deepEqual(offsets, [1, 2], `messages of ${chat.id} (${chat.phase})`);
        }
        assert.equal(await d.collection('bots').countDocuments({ name: { $regex: '^Stream ' } }), bots.length, 'no bot twice, none extra');
      });

      // After catch-up the mirror has them too.
      await mirrorCaughtUp(otto.url);
      const mirror = await createJsonlStore({ dir: mirrorDir, readOnly: true });
      try {
        const bots = await mirror.collection({ name: 'bots', schemaVersion: 1, indexes: [] });
        for (const bot of acked.filter((a) => a.kind === 'bot')) assert.ok(await bots.get({ id: bot.id }), `${bot.name} reached the mirror`);
      } finally {
        await mirror.close();
      }
      scope.passed = true;
    });
  });

  it('without a mirror answers 503 while the server is down, and recovers by itself', async (t) => {
    const db = server(t);
    if (!db) return;
    await withScope(t, async (scope) => {
      const database = `otto_degraded_${randomBytes(5).toString('hex')}`;
      const otto = await scope.start({ label: 'no-mirror', env: { OTTO_STORAGE: 'mongodb', MONGODB_URI: db.uri, MONGODB_DATABASE: database, OTTO_PRIMARY_RETRY_MS: '200' } });
      const first = await api(otto.url, 'POST', '/bots', { name: 'Before' });
      assert.equal(first.status, 201);

      await db.kill();
      const refused = await api(otto.url, 'POST', '/bots', { name: 'Refused' });
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.json.error.code, 'UNAVAILABLE');
      assert.match(degradedHeader(refused) ?? '', /no mirror, writes refused/);
      const read = await api(otto.url, 'GET', `/bots/${first.json.id}`);
      assert.equal(read.status, 503);
      assert.equal(read.json.error.code, 'UNAVAILABLE');
      const health = await api(otto.url, 'GET', '/health');
      assert.equal(health.status, 200);
      assert.equal(health.json.status, 'degraded');
      assert.equal(health.json.degraded.reads_from, null);
      assert.equal(health.json.degraded.writes, 'refused');
      assert.equal((await api(otto.url, 'GET', '/ready')).status, 503);

      await db.restart();
      await recovered(otto.url);
      const later = await api(otto.url, 'POST', '/bots', { name: 'After' });
      assert.equal(later.status, 201, later.text);
      assert.equal(degradedHeader(later), null);
      assert.equal((await api(otto.url, 'GET', `/bots/${first.json.id}`)).json.name, 'Before');
      await mongo(db.uri, async (client) => {
        const names = (await client.db(database).collection('bots').find({}).toArray()).map((b) => b.name).sort();
        assert.deepEqual(names, ['After', 'Before'], 'the refused write was never acknowledged, nor stored');
      });
      scope.passed = true;
    });
  });

  it('starts degraded when the server is down at startup, serving from the mirror, catches up when it returns, and replays a spool left by a crash', async (t) => {
    const db = server(t);
    if (!db) return;
    await withScope(t, async (scope) => {
      const dataDir = await scope.tempDir('otto-degraded-');
      const database = `otto_degraded_${randomBytes(5).toString('hex')}`;
      const env = { OTTO_STORAGE: 'mongodb', MONGODB_URI: db.uri, MONGODB_DATABASE: database, OTTO_MIRRORS: `jsonl:${join(dataDir, 'mirror')}`, OTTO_PRIMARY_RETRY_MS: '200', OTTO_MIRROR_INTERVAL_MS: '100' };
      const first = await scope.start({ dataDir, env, label: 'first' });
      const kept = (await api(first.url, 'POST', '/bots', { name: 'Kept' })).json;
      await mirrorCaughtUp(first.url);
      await first.stop();

      await db.kill();
      const second = await scope.start({ dataDir, env, label: 'second' });
      assert.match(second.stdout(), /degraded\s+ON: primary unreachable; reads from jsonl:/);
      const read = await api(second.url, 'GET', `/bots/${kept.id}`);
      assert.equal(read.status, 200, read.text);
      assert.equal(read.json.name, 'Kept');
      assert.ok(degradedHeader(read));
      const created = await api(second.url, 'POST', '/bots', { name: 'While down' });
      assert.equal(created.status, 201, created.text);
      const chat = await api(second.url, 'POST', '/chat', { bot_id: kept.id, message: 'hello' });
      assert.equal(chat.status, 200, 'a bot known from the mirror answers');
      assert.equal((await api(second.url, 'GET', '/health')).json.status, 'degraded');

      await db.restart();
      const report = await recovered(second.url);
      assert.equal(report.storage.ok, true);
      assert.equal(report.storage.migrations.pending, 0);
      await mongo(db.uri, async (client) => {
        const d = client.db(database);
        assert.equal(await d.collection('bots').countDocuments({ _id: { $eq: created.json.id } as never }), 1);
        assert.equal(await d.collection('messages').countDocuments({ conversation_id: { $eq: chat.json.conversation_id } }), 2);
      });

      // Down again, a write is spooled, and Otto itself crashes: the next Otto replays it at startup.
      await db.kill();
      const spooled = await api(second.url, 'POST', '/bots', { name: 'Spooled then crashed' });
      assert.equal(spooled.status, 201, spooled.text);
      assert.ok(degradedHeader(spooled));
      await second.kill();
      await db.restart();
      const third = await scope.start({ dataDir, env, label: 'third' });
      const health = (await api(third.url, 'GET', '/health')).json;
      assert.equal(health.degraded.active, false);
      assert.equal(health.degraded.spool_backlog, 0);
      assert.equal((await api(third.url, 'GET', `/bots/${spooled.json.id}`)).json.name, 'Spooled then crashed');
      scope.passed = true;
    });
  });

  it('without a mirror starts anyway when the server is down, answering 503 and saying so, then serves once it is reached', async (t) => {
    const db = server(t);
    if (!db) return;
    await withScope(t, async (scope) => {
      const database = `otto_degraded_${randomBytes(5).toString('hex')}`;
      const env = { OTTO_STORAGE: 'mongodb', MONGODB_URI: db.uri, MONGODB_DATABASE: database, OTTO_PRIMARY_RETRY_MS: '200' };
      // A bot made while the server was up, so rehydration after the late start has something to load.
      const first = await scope.start({ label: 'before', env });
      const made = (await api(first.url, 'POST', '/bots', { name: 'Made before' })).json;
      await first.stop();

      await db.kill();
      const otto = await scope.start({ label: 'down-at-start', env, readyTimeoutMs: 60_000 });
      assert.match(otto.stdout(), /degraded\s+ON: primary unreachable; no mirror: 503/);
      const refused = await api(otto.url, 'POST', '/bots', { name: 'Refused' });
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.json.error.code, 'UNAVAILABLE');
      assert.match(degradedHeader(refused) ?? '', /no mirror, writes refused/);
      assert.equal((await api(otto.url, 'GET', '/bots')).status, 503, 'nothing is served, not even an empty list');
      const health = await api(otto.url, 'GET', '/health');
      assert.equal(health.json.status, 'degraded');
      assert.equal(health.json.degraded.writes, 'refused');
      assert.equal((await api(otto.url, 'GET', '/ready')).status, 503);

      await db.restart();
      await recovered(otto.url);
      const bots = await api(otto.url, 'GET', '/bots');
      assert.equal(bots.status, 200, bots.text);
      assert.ok(bots.json.some((b: { id: string }) => b.id === made.id), 'the bots stored before are loaded once the server is reached');
      // Bot definitions are reloaded right after recovery is reported.
      const { value: chat } = await pollUntil(5_000, async () => {
        const reply = await api(otto.url, 'POST', '/chat', { bot_id: made.id, message: 'hello' });
        return reply.status === 200 ? reply : undefined;
      }, 100);
      assert.ok(chat, 'the bot stored before answers once the server is reached');
      assert.equal((await api(otto.url, 'POST', '/bots', { name: 'Late' })).status, 201);
      await mongo(db.uri, async (client) => {
        const names = (await client.db(database).collection('bots').find({}).toArray()).map((b) => b.name).sort();
        assert.deepEqual(names, ['Late', 'Made before']);
      });
      assert.doesNotMatch(otto.stderr(), /background: /, 'the outage is reported once, not by every background task');
      scope.passed = true;
    });
  });

  it('records an edit of a document changed in the primary meanwhile as a conflict, and moves a message whose offset was taken', async (t) => {
    const db = server(t);
    if (!db) return;
    let proxy: TcpProxy | undefined;
    try {
      proxy = await startTcpProxy({ port: db.port });
      const cutoff = proxy;
      await withScope(t, async (scope) => {
        const dataDir = await scope.tempDir('otto-degraded-');
        const database = `otto_degraded_${randomBytes(5).toString('hex')}`;
        const env = {
          OTTO_STORAGE: 'mongodb',
          MONGODB_URI: `mongodb://127.0.0.1:${cutoff.port}/`,
          MONGODB_DATABASE: database,
          OTTO_MIRRORS: `jsonl:${join(dataDir, 'mirror')}`,
          OTTO_PRIMARY_RETRY_MS: '200',
          OTTO_MIRROR_INTERVAL_MS: '100',
        };
        const otto = await scope.start({ dataDir, label: 'conflict', env });
        const bot = (await api(otto.url, 'POST', '/bots', { name: 'Shared', description: 'original' })).json;
        const chat = await api(otto.url, 'POST', '/chat', { bot_id: bot.id, message: 'hello' });
        assert.equal(chat.status, 200, chat.text);
        const conversation = chat.json.conversation_id as string;
        await mirrorCaughtUp(otto.url);

        // Otto loses the server; the server itself keeps running.
        await cutoff.cut();
        const edit = await api(otto.url, 'PATCH', `/bots/${bot.id}`, { description: 'from otto' });
        assert.equal(edit.status, 200, edit.text);
        assert.ok(degradedHeader(edit));
        const again = await api(otto.url, 'POST', '/chat', { bot_id: bot.id, conversation_id: conversation, message: 'again' });
        assert.equal(again.status, 200, again.text);
        assert.equal(again.json.message.offset, 3);

        // Meanwhile, someone else changes the bot and writes offset 3 in the primary.
        await mongo(db.uri, async (client) => {
          const d = client.db(database);
          await d.collection('bots').updateOne({ _id: bot.id }, { $set: { description: 'from elsewhere', updated_at: new Date().toISOString() }, $inc: { version: 1 } });
          const at = new Date().toISOString();
          await d.collection('messages').insertOne({ _id: `msg_elsewhere_${randomBytes(4).toString('hex')}`, owner_id: bot.owner_id, conversation_id: conversation, offset: 3, role: 'user', content: 'from elsewhere', agent_steps: [], pdf_names: [], source_citations: [], meta_data: {}, version: 1, created_at: at, updated_at: at } as never);
        });

        await cutoff.restore();
        const report = await recovered(otto.url);
        assert.equal(report.degraded.conflicts, 1);
        assert.equal(report.degraded.renumbered, 2);

        const kept = await api(otto.url, 'GET', `/bots/${bot.id}`);
        assert.equal(kept.json.description, 'from elsewhere', 'the primary’s change is not overwritten');
        const page = await api(otto.url, 'GET', `/conversations/${conversation}/messages`);
        assert.deepEqual(
          page.json.items.map((m: { offset: number; content: string; role: string }) => [m.offset, m.role === 'user' ? m.content : m.role]),
          [[1, 'hello'], [2, 'assistant'], [3, 'from elsewhere'], [4, 'again'], [5, 'assistant']],
        );
        await mongo(db.uri, async (client) => {
          const conflicts = await client.db(database).collection('_conflicts').find({ status: 'open' }).toArray();
          assert.equal(conflicts.length, 1);
          assert.equal(conflicts[0]!.collection, 'bots');
          assert.equal(conflicts[0]!.doc_id, bot.id);
          assert.equal(JSON.parse(conflicts[0]!.spooled).patch.description, 'from otto');
        });

        // The doctor reports it, on the server and from the CLI.
        const doctor = await api(otto.url, 'GET', '/admin/doctor');
        assert.equal(doctor.status, 200);
        const finding = doctor.json.findings.find((f: { check: string }) => f.check === 'conflicts');
        assert.equal(finding?.status, 'warn');
        assert.match(finding.fix, /_conflicts/);
        assert.ok(doctor.json.findings.some((f: { check: string; status: string }) => f.check === 'spool' && f.status === 'ok'));
        const cli = await runCli(['doctor'], { ...env, OTTO_DATA_DIR: dataDir, OTTO_SPOOL_DIR: join(dataDir, 'cli-spool') });
        assert.match(cli.stdout, /warn\s+conflicts\s+1 spooled write\(s\) were not applied/);
        assert.match(cli.stdout, /fix: look at them with `mongosh/);
        assert.match(cli.stdout, /ok\s+spool\s+empty/);
        scope.passed = true;
      });
    } finally {
      await proxy?.close();
    }
  });
});

/** Runs `otto <args>` and collects its output. */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'otto.js'), ...args], { cwd: repoRoot, env: envWithoutOttoSettings(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
