import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs, { fstatSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { collections } from '../../src/domain/collections.ts';
import { isStorageError, type Doc } from '../../src/storage/contract.ts';
import { createSqliteStore, type SqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { eq } from '../../src/storage/where.ts';
import { waitFor } from '../support/wait.ts';

const run = promisify(execFile);

describe('sqlite engine specifics', () => {
  let dir: string;
  let store: SqliteStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'otto-sqlite-engine-'));
    store = await createSqliteStore({ path: join(dir, 'nested', 'otto.db') });
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the file and its folder, in WAL mode; FULL sync is done by the store, off the event loop', () => {
    const mode = store.database.prepare('PRAGMA journal_mode').get() as { journal_mode: string };
    assert.equal(mode.journal_mode, 'wal');
    const sync = store.database.prepare('PRAGMA synchronous').get() as { synchronous: number };
    assert.equal(sync.synchronous, 1, 'SQLite commits at NORMAL: the store fsyncs the WAL itself');
    const checkpoint = store.database.prepare('PRAGMA wal_autocheckpoint').get() as { wal_autocheckpoint: number };
    assert.equal(checkpoint.wal_autocheckpoint, 8000, 'checkpoints every ~32 MB of WAL');
    assert.equal(store.location, join(dir, 'nested', 'otto.db'));
  });

  it('acknowledges writes only after the WAL file holding their commit is synced off the event loop (FULL)', async () => {
    const items = await store.collection({ name: 'durable', schemaVersion: 1, indexes: [] });
    const held: Array<{ fd: number; done: SyncCallback }> = [];
    await withWalSync({ fdatasync: (fd, done) => void held.push({ fd, done }) }, async () => {
      let acknowledged = 0;
      // Two writes queued together: one commit, one fsync on the thread pool.
      const first = Promise.all(['a1', 'a2'].map((id) => items.insert({ doc: { id } }).then(() => acknowledged++)));
      await waitFor('the first commit to be synced', () => held.length === 1);
      // Committed (another reader sees it) but not yet acknowledged, and nothing else commits meanwhile.
      assert.equal(new DatabaseSync(store.location, { readOnly: true }).prepare(`SELECT count(*) AS n FROM "durable"`).get()?.n, 2);
      const second = ['b1', 'b2'].map((id) => items.insert({ doc: { id } }).catch((e: unknown) => e));
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal(acknowledged, 0, 'not acknowledged before the fsync');
      assert.equal(held.length, 1, 'the next batch waits for the fsync');
      assert.equal(fstatSync(held[0]!.fd).ino, statSync(`${store.location}-wal`).ino, 'the WAL file is what gets synced');
      held[0]!.done(null);
      await first;
      assert.equal(acknowledged, 2);
      await waitFor('the second commit to be synced', () => held.length === 2);
      // A failed fsync is reported, never swallowed.
      held[1]!.done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      for (const failure of await Promise.all(second)) {
        assert.ok(isStorageError(failure, 'UNAVAILABLE'), String(failure));
        assert.match(failure.message, /could not make them durable/);
      }
    });
    // Writes go on once the disk answers again.
    await items.insert({ doc: { id: 'c' } });
    assert.equal(await items.count(), 5);
  });

  it('syncs inline once writes come one at a time, and reports a failed sync', async () => {
    const serial = await createSqliteStore({ path: join(dir, 'serial.db') });
    const items = await serial.collection({ name: 'lone', schemaVersion: 1, indexes: [] });
    const calls = { inline: [] as number[], pool: 0 };
    let fail = false;
    const { fdatasync, fdatasyncSync } = fs;
    const pool = (fd: number, done: SyncCallback) => (calls.pool++, fdatasync(fd, done));
    const inline = (fd: number) => {
      calls.inline.push(fd);
      if (fail) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      fdatasyncSync(fd);
    };
    await withWalSync({ fdatasync: pool, fdatasyncSync: inline }, async () => {
      for (let i = 0; i < 20; i++) await items.insert({ doc: { id: `warm-${i}` } });
      calls.inline.length = 0;
      calls.pool = 0;
      for (let i = 0; i < 10; i++) await items.insert({ doc: { id: `one-${i}` } });
      assert.equal(calls.pool, 0, 'no hand-off to the thread pool');
      assert.equal(calls.inline.length, 10, 'each write synced before it was acknowledged');
      assert.equal(fstatSync(calls.inline[0]!).ino, statSync(`${serial.location}-wal`).ino);
      fail = true;
      const failure = await items.insert({ doc: { id: 'lost' } }).catch((e: unknown) => e);
      assert.ok(isStorageError(failure, 'UNAVAILABLE'), String(failure));
      assert.match(failure.message, /could not make them durable/);
      fail = false;
      // Many writes at once go back to the thread pool.
      for (let round = 0; round < 20; round++) await Promise.all(Array.from({ length: 20 }, (_, i) => items.insert({ doc: { id: `many-${round}-${i}` } })));
      assert.ok(calls.pool > 0, 'concurrent writes are synced off the event loop');
    }).finally(() => serial.close());
  });

  it('leaves syncing to SQLite settings when opened with synchronous NORMAL (no fsync per commit)', async () => {
    const normal = await createSqliteStore({ path: join(dir, 'normal.db'), synchronous: 'NORMAL' });
    const calls: number[] = [];
    const { fdatasync, fdatasyncSync } = fs;
    const record = { fdatasync: (fd: number, done: SyncCallback) => (calls.push(fd), fdatasync(fd, done)), fdatasyncSync: (fd: number) => (calls.push(fd), fdatasyncSync(fd)) };
    await withWalSync(record, async () => {
      const items = await normal.collection({ name: 'fast', schemaVersion: 1, indexes: [] });
      await items.insert({ doc: { id: 'a' } });
      await Promise.all(['b', 'c'].map((id) => items.insert({ doc: { id } })));
      assert.equal(calls.length, 0);
      assert.equal((normal.database.prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous, 1);
      assert.equal(normal.synchronous, 'NORMAL');
      assert.equal(store.synchronous, 'FULL');
    }).finally(() => normal.close());
  });

  it('keeps one table per collection holding the JSON document, with declared indexes as real indexes', async () => {
    await store.collection(collections.messages);
    const columns = (store.database.prepare(`PRAGMA table_xinfo("messages")`).all() as Array<{ name: string; hidden: number }>).map((c) => c.name);
    assert.deepEqual(columns.slice(0, 2), ['id', 'doc']);
    assert.ok(columns.includes('f_conversation_id') && columns.includes('f_offset'));
    const index = store.database.prepare(`SELECT sql FROM sqlite_master WHERE name = 'messages__conversation_offset'`).get() as { sql: string };
    assert.match(index.sql, /CREATE UNIQUE INDEX/);
  });

  it('serves the latest page of a conversation from its index, without sorting', async () => {
    const messages = await store.collection<Doc & { conversation_id: string; offset: number }>(collections.messages);
    const docs = [];
    for (let c = 0; c < 20; c++) for (let o = 0; o < 30; o++) docs.push({ id: `m-${c}-${o}`, conversation_id: `c${c}`, offset: o });
    await messages.insertMany({ docs });
    const options = { where: eq('conversation_id', 'c7'), sort: [{ field: 'offset', direction: 'desc' as const }], limit: 10 };
    const { sql, params } = (messages as unknown as { findQuery(o: unknown): { sql: string; params: Array<string | number | null> } }).findQuery(options);
    const plan = (store.database.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail).join('\n');
    assert.match(plan, /USING INDEX messages__conversation_offset/, plan);
    assert.doesNotMatch(plan, /TEMP B-TREE/, `no sort step expected:\n${plan}`);
    assert.doesNotMatch(plan, /^SCAN messages$/m, plan);
    const page = await messages.find(options);
    assert.deepEqual(page.items.map((m) => m.offset), [29, 28, 27, 26, 25, 24, 23, 22, 21, 20]);
    const next = await messages.find({ ...options, after: page.next });
    assert.deepEqual(next.items.map((m) => m.offset), [19, 18, 17, 16, 15, 14, 13, 12, 11, 10]);
  });

  it('runs write hooks inside the write transaction: a failing hook rolls the write back', async () => {
    const items = await store.collection({ name: 'hooked', schemaVersion: 1, indexes: [] });
    const log = await store.collection({ name: 'hook_log', schemaVersion: 1, indexes: [] });
    let fail = false;
    const remove = store.onWrite((event) => {
      if (event.collection !== 'hooked') return;
      if (fail) throw new Error('hook failed');
      // A synchronous write made inside the hook joins the same transaction.
      store.database.prepare(`INSERT INTO "hook_log" (id, doc) VALUES (?, ?)`).run(`${event.id}:${event.doc?.version ?? 'x'}`, '{}');
    });
    try {
      await items.insert({ doc: { id: 'ok' } });
      fail = true;
      await assert.rejects(items.insert({ doc: { id: 'rolled-back' } }));
      await assert.rejects(items.update({ id: 'ok', patch: { n: 1 } }));
    } finally {
      remove();
    }
    assert.equal(await items.get({ id: 'rolled-back' }), null);
    assert.equal((await items.get({ id: 'ok' }))?.version, 1);
    assert.equal(await log.count(), 1);
  });

  it('commits writes queued together as if run one after the other: a failing write leaves nothing, the others commit', async () => {
    const items = await store.collection({ name: 'grouped', schemaVersion: 1, indexes: [] });
    await store.collection({ name: 'hook_log', schemaVersion: 1, indexes: [] });
    const logged: string[] = [];
    const remove = store.onWrite((event) => {
      if (event.collection !== 'grouped') return;
      // A row written by the hook in the write's transaction: it must share the write's fate.
      store.database.prepare(`INSERT INTO "hook_log" (id, doc) VALUES (?, ?)`).run(`grouped:${event.id}:${event.doc?.version ?? 'x'}`, '{}');
      logged.push(event.id);
    });
    try {
      // Queued in the same tick, so they commit in one group.
      const results = await Promise.allSettled([
        items.insert({ doc: { id: 'a' } }),
        items.insertMany({ docs: [{ id: 'b' }, { id: 'a' }, { id: 'c' }] }), // fails at its second document
        items.update({ id: 'a', patch: { n: 1 } }), // sees the first write
        items.update({ id: 'missing', patch: { n: 1 } }), // NOT_FOUND
        items.insert({ doc: { id: 'd' } }),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
      assert.ok(isStorageError((results[1] as PromiseRejectedResult).reason, 'DUPLICATE'));
      assert.ok(isStorageError((results[3] as PromiseRejectedResult).reason, 'NOT_FOUND'));
    } finally {
      remove();
    }
    assert.deepEqual((await items.find({})).items.map((d) => [d.id, d.version]), [['a', 2], ['d', 1]]);
    const hookRows = store.database.prepare(`SELECT id FROM "hook_log" WHERE id LIKE 'grouped:%' ORDER BY id`).all() as Array<{ id: string }>;
    assert.deepEqual(hookRows.map((r) => r.id), ['grouped:a:1', 'grouped:a:2', 'grouped:d:1']);
    assert.ok(logged.includes('b'), 'the failing write ran its hook before it failed, and that row was rolled back with it');
    assert.equal(logged.filter((id) => id === 'b').length, 1, 'the write that failed is not run a second time');
  });

  it('translates a unique violation into DUPLICATE naming the field', async () => {
    const tools = await store.collection(collections.tools);
    await tools.insert({ doc: { id: 't1', bot_id: 'b', name: 'lookup' } });
    const error = await tools.insert({ doc: { id: 't2', bot_id: 'b', name: 'lookup' } }).catch((e: unknown) => e);
    assert.ok(isStorageError(error, 'DUPLICATE'));
    assert.equal(error.field, 'bot_id,name');
    assert.ok(error.cause, 'keeps the driver error as cause');
  });

  it('gives 100 distinct counter values to two processes incrementing concurrently', async () => {
    const file = join(dir, 'shared.db');
    const first = await createSqliteStore({ path: file });
    await first.collection(collections.counters);
    await first.close();
    const script = `
      import { createSqliteStore } from ${JSON.stringify(new URL('../../src/storage/sqlite/sqlite-store.ts', import.meta.url).href)};
      const store = await createSqliteStore({ path: ${JSON.stringify(file)} });
      const counters = await store.collection({ name: '_counters', schemaVersion: 1, indexes: [] });
      const values = [];
      for (let i = 0; i < 50; i++) values.push(await counters.increment({ id: 'offsets', field: 'value' }));
      await store.close();
      console.log(JSON.stringify(values));`;
    const outputs = await Promise.all([0, 1].map(() => run(process.execPath, ['--input-type=module', '-e', script])));
    const values = outputs.flatMap((o) => JSON.parse(o.stdout) as number[]);
    assert.equal(values.length, 100);
    assert.deepEqual([...values].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it('reports UNAVAILABLE for a path it cannot open', async () => {
    const blocker = join(dir, 'a-file');
    await writeFile(blocker, 'not a folder');
    const error = await createSqliteStore({ path: join(blocker, 'otto.db') }).catch((e: unknown) => e);
    assert.ok(isStorageError(error, 'UNAVAILABLE'), String(error));
  });
});

type SyncCallback = (error: NodeJS.ErrnoException | null) => void;

/** Runs `fn` with node:fs's fdatasync / fdatasyncSync replaced (as the store imports them), restoring them after. */
async function withWalSync(replace: { fdatasync?: (fd: number, done: SyncCallback) => void; fdatasyncSync?: (fd: number) => void }, fn: () => Promise<void>): Promise<void> {
  const original = { fdatasync: fs.fdatasync, fdatasyncSync: fs.fdatasyncSync };
  if (replace.fdatasync) fs.fdatasync = replace.fdatasync as unknown as typeof fs.fdatasync;
  if (replace.fdatasyncSync) fs.fdatasyncSync = replace.fdatasyncSync;
  syncBuiltinESMExports();
  try {
    await fn();
  } finally {
    Object.assign(fs, original);
    syncBuiltinESMExports();
  }
}
