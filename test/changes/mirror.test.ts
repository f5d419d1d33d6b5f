/**
 * Mirrors follow the change log from their own cursor: SQLite primary → MongoDB mirror (the Otto
 * seed) through a mirror outage, MongoDB primary → JSONL folder (the Normo seed), a first sync
 * that copies data written before the log existed, and a replay after a lost cursor that would
 * otherwise trip a unique index. Every test ends by comparing the mirror with the primary.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { collections } from '../../src/domain/collections.ts';
import { attachChangeLog, Mirror, MirrorSet, MIRRORS_SPEC, isMirrored, type MirrorCursor, type MirrorStatus } from '../../src/storage/changes/index.ts';
import type { Doc, Store } from '../../src/storage/contract.ts';
import { createJsonlStore } from '../../src/storage/jsonl/jsonl-store.ts';
import { createMongoStore } from '../../src/storage/mongodb/mongodb-store.ts';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { buildFerretDb, mongoTestTarget, startFerretDb } from '../support/mongodb-server.ts';
import { waitFor } from '../support/wait.ts';

const mongo = await mongoTestTarget();
if ('skip' in mongo) process.stderr.write(`${mongo.skip}\n`);
else after(() => mongo.stop());
const skipMongo = 'skip' in mongo ? mongo.skip : undefined;
/** A private FerretDB server (for kill/restart) needs the Go build even when a shared server is given. */
const ferretSkip = await buildFerretDb({ log: () => {} }).then(
  () => undefined,
  (error: Error) => {
    if (process.env.CI === 'true') throw error;
    return `MONGODB OUTAGE TEST SKIPPED: ${error.message.split('\n')[0]}`;
  },
);

const temps: string[] = [];
after(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}


/** Every document of every collection the primary has (except the log's own), by collection, sorted by id. */
async function dump(store: Store, names?: string[]): Promise<Record<string, Doc[]>> {
  const out: Record<string, Doc[]> = {};
  for (const name of names ?? (await store.listCollections())) {
    if (!isMirrored(name)) continue;
    const collection = await store.collection({ name, schemaVersion: 1, indexes: [] });
    const docs: Doc[] = [];
    for await (const batch of collection.scan()) docs.push(...batch);
    out[name] = docs.sort((a, b) => (a.id < b.id ? -1 : 1));
  }
  return out;
}

async function assertSameData(primary: Store, mirror: Store): Promise<number> {
  const expected = await dump(primary);
  const actual = await dump(mirror, Object.keys(expected));
  assert.deepEqual(actual, expected);
  return Object.values(expected).reduce((n, docs) => n + docs.length, 0);
}

/** Bots with the real spec (unique owner + name), written in a mix of inserts, updates and deletes. */
async function writeBots(store: Store, prefix: string, count: number): Promise<void> {
  const bots = await store.collection(collections.bots);
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${String(i).padStart(3, '0')}`;
    await bots.insert({ doc: { id, owner_id: 'o', name: `Bot ${id}`, name_key: `bot ${id}`, metadata: { i } } });
    if (i % 3 === 0) await bots.update({ id, patch: { description: `updated ${i}` } });
    if (i % 7 === 0) await bots.delete({ id });
  }
  const counters = await store.collection(collections.counters);
  await counters.increment({ id: `${prefix}-revision`, field: 'value', by: count });
}

async function caughtUp(mirrors: MirrorSet): Promise<MirrorStatus[] | undefined> {
  const statuses = await mirrors.status();
  return statuses.every((s) => s.lag === 0 && s.status === 'ok') ? statuses : undefined;
}

describe('mirrors', () => {
  it('SQLite primary → MongoDB mirror: keeps writing while the mirror is down, then catches up', { skip: ferretSkip }, async (t) => {
    const server = await startFerretDb();
    const dir = await tempDir('otto-mirror-sqlite-');
    const primary = await createSqliteStore({ path: join(dir, 'otto.db') });
    const { store, log } = await attachChangeLog(primary);
    const events: string[] = [];
    const mirrors = new MirrorSet([`${server.uri}mirror`], log, { intervalMs: 50, probeMs: 200, maxBackoffMs: 300, onEvent: (line) => events.push(line) });
    let mirror: Store | undefined;
    try {
      mirrors.start();
      await writeBots(store, 'before', 30);
      await waitFor('the mirror to catch up', () => caughtUp(mirrors));

      await server.kill();
      const started = performance.now();
      await writeBots(store, 'during', 60); // every write succeeds: nothing in the write path waits for the mirror
      const bots = await store.collection(collections.bots);
      await bots.update({ id: 'before-001', patch: { description: 'changed during the outage' } });
      await bots.delete({ id: 'before-002' });
      t.diagnostic(`${60 + 2} writes during the outage took ${Math.round(performance.now() - started)} ms`);
      const down = await waitFor('the mirror to be reported down', async () => (await mirrors.status()).find((s) => s.status === 'down'));
      assert.ok(down.lag > 0, 'it is behind');
      assert.match(down.last_error ?? '', /./);
      assert.equal(down.url, `${server.uri}mirror`);

      await server.restart();
      const statuses = await waitFor('the mirror to catch up after the outage', () => caughtUp(mirrors), { timeoutMs: 60_000 });
      assert.equal(statuses[0]!.seq, await log.lastSeq());
      assert.ok(events.some((e) => /is down/.test(e)) && events.some((e) => /is back/.test(e)), events.join('\n'));

      await mirrors.stop();
      mirror = await createMongoStore({ uri: server.uri, database: 'mirror' });
      const n = await assertSameData(store, mirror);
      t.diagnostic(`${n} documents identical on the primary and the mirror`);
      const cursor = await (await primary.collection<MirrorCursor>(MIRRORS_SPEC)).get({ id: mirrors.mirrors[0]!.id });
      assert.equal(cursor?.seq, await log.lastSeq(), 'the cursor is durable in the primary');
      assert.equal(cursor?.url, `${server.uri}mirror`);
    } finally {
      await mirrors.stop();
      await mirror?.close();
      await store.close();
      await server.stop();
    }
  });

  it('MongoDB primary → JSONL mirror: concurrent writers, every document there', { skip: skipMongo }, async (t) => {
    if ('skip' in mongo) return;
    const dir = await tempDir('otto-mirror-jsonl-');
    const primary = await createMongoStore({ uri: mongo.uri, database: `otto_test_${randomBytes(6).toString('hex')}` });
    const { store, log } = await attachChangeLog(primary);
    const mirrors = new MirrorSet([`jsonl:${join(dir, 'backup')}`], log, { intervalMs: 50, batchSize: 40 });
    try {
      mirrors.start();
      await Promise.all([writeBots(store, 'a', 40), writeBots(store, 'b', 40), writeBots(store, 'c', 40)]);
      const statuses = await waitFor('the JSONL mirror to catch up', () => caughtUp(mirrors));
      assert.equal(statuses[0]!.url, `jsonl:${join(dir, 'backup')}`);
      await mirrors.stop(); // releases the folder
      const mirror = await createJsonlStore({ dir: join(dir, 'backup'), readOnly: true });
      try {
        t.diagnostic(`${await assertSameData(store, mirror)} documents identical`);
      } finally {
        await mirror.close();
      }
    } finally {
      await mirrors.stop();
      await primary.db.dropDatabase().catch(() => {});
      await store.close();
    }
  });

  it('a new mirror first copies what the primary had before the log, then follows it', async () => {
    const dir = await tempDir('otto-mirror-first-');
    const primary = await createSqliteStore({ path: join(dir, 'otto.db') });
    try {
      await writeBots(primary, 'old', 20); // written before any change log existed
      const { store, log } = await attachChangeLog(primary);
      await writeBots(store, 'new', 10);
      const mirror = new Mirror(`sqlite:${join(dir, 'mirror.db')}`, log);
      const first = await mirror.syncOnce();
      assert.deepEqual({ lag: first.lag, status: first.status }, { lag: 0, status: 'ok' });
      await writeBots(store, 'later', 10);
      await mirror.syncOnce();
      await mirror.stop();
      const copy = await createSqliteStore({ path: join(dir, 'mirror.db') });
      try {
        await assertSameData(primary, copy);
      } finally {
        await copy.close();
      }
    } finally {
      await primary.close();
    }
  });

  it('moves past changes unread while skipWhen says the target wants none, and reads those after', async () => {
    const dir = await tempDir('otto-mirror-skip-');
    const primary = await createSqliteStore({ path: join(dir, 'otto.db') });
    try {
      const { store, log } = await attachChangeLog(primary);
      const read: string[] = [];
      const readChanges = log.readChanges.bind(log);
      log.readChanges = async (args) => {
        const result = await readChanges(args);
        read.push(...result.changes.map((c) => c.id));
        return result;
      };
      let skipping = false;
      const mirror = new Mirror(`sqlite:${join(dir, 'mirror.db')}`, log, { skipWhen: async () => skipping });
      await writeBots(store, 'first', 5);
      await mirror.syncOnce();
      skipping = true;
      await writeBots(store, 'unwanted', 5);
      const skipped = await mirror.syncOnce();
      assert.deepEqual({ lag: skipped.lag, seq: skipped.seq }, { lag: 0, seq: await log.lastSeq() });
      skipping = false;
      await writeBots(store, 'wanted', 5);
      await mirror.syncOnce();
      await mirror.stop();
      assert.ok(!read.some((id) => id.startsWith('unwanted')), `read ${read.join(' ')}`);
      assert.ok(read.some((id) => id.startsWith('wanted')));
      const copy = await createSqliteStore({ path: join(dir, 'mirror.db') });
      try {
        const names = Object.values(await dump(copy, [collections.bots.name])).flat().map((b) => b.id.split('-')[0]);
        assert.deepEqual([...new Set(names)].sort(), ['first', 'wanted']);
      } finally {
        await copy.close();
      }
    } finally {
      await primary.close();
    }
  });

  it('replays after a lost cursor without tripping unique indexes, and converges', async () => {
    const dir = await tempDir('otto-mirror-replay-');
    const primary = await createSqliteStore({ path: join(dir, 'otto.db') });
    try {
      const { store, log } = await attachChangeLog(primary);
      const bots = await store.collection(collections.bots);
      const bot = (id: string, name: string) => ({ id, owner_id: 'o', name, name_key: name });
      // A takes the name x, gives it up, B takes it; then A and B swap names twice.
      await bots.insert({ doc: bot('a', 'x') });
      await bots.update({ id: 'a', patch: { name: 'z', name_key: 'z' } });
      await bots.insert({ doc: bot('b', 'x') });
      await bots.update({ id: 'b', patch: { name: 'tmp', name_key: 'tmp' } });
      await bots.update({ id: 'a', patch: { name: 'x', name_key: 'x' } });
      await bots.update({ id: 'b', patch: { name: 'z', name_key: 'z' } });
      await bots.delete({ id: 'a' });
      await bots.insert({ doc: bot('c', 'x') });
      const url = `sqlite:${join(dir, 'mirror.db')}`;
      const mirror = new Mirror(url, log, { batchSize: 1 });
      await mirror.syncOnce();
      // The cursor is lost (a crash after applying, before saving it): everything is replayed one by one.
      const cursors = await primary.collection<MirrorCursor>(MIRRORS_SPEC);
      const cursor = (await cursors.get({ id: mirror.id }))!;
      await cursors.update({ id: mirror.id, patch: { seq: 0, lease_owner: null, lease_until: null }, expectVersion: cursor.version });
      await mirror.stop();
      const again = new Mirror(url, log, { batchSize: 1 });
      const status = await again.syncOnce();
      assert.deepEqual({ lag: status.lag, status: status.status }, { lag: 0, status: 'ok' });
      await again.stop();
      const copy = await createSqliteStore({ path: join(dir, 'mirror.db') });
      try {
        await assertSameData(primary, copy);
      } finally {
        await copy.close();
      }
    } finally {
      await primary.close();
    }
  });

  it('lets one process feed a mirror while another stands by, and takes over when it stops', async () => {
    const dir = await tempDir('otto-mirror-lease-');
    const primary = await createSqliteStore({ path: join(dir, 'otto.db') });
    try {
      const { store, log } = await attachChangeLog(primary);
      const url = `sqlite:${join(dir, 'mirror.db')}`;
      const one = new MirrorSet([url], log, { intervalMs: 50 });
      const two = new MirrorSet([url], log, { intervalMs: 50 });
      one.start();
      await waitFor('the first to take the mirror', async () => (await one.status())[0]!.active);
      two.start();
      await writeBots(store, 'x', 10);
      await waitFor('catch-up', () => caughtUp(one));
      assert.equal((await two.status())[0]!.active, false, 'the second stands by');
      assert.equal((await two.status())[0]!.lag, 0, 'and reports the mirror from the shared cursor');
      await one.stop(); // releases the lease
      await writeBots(store, 'y', 10);
      await waitFor('the second to take over and catch up', async () => {
        const [s] = await two.status();
        return s!.active && s!.lag === 0;
      });
      await two.stop();
      const copy = await createSqliteStore({ path: join(dir, 'mirror.db') });
      try {
        await assertSameData(primary, copy);
      } finally {
        await copy.close();
      }
    } finally {
      await primary.close();
    }
  });
});
