/**
 * Degraded mode, unit level: the spool (fsync before acknowledging, torn lines, progress), and
 * the resilient store over a primary whose outages a wrapper simulates (a memory store behind
 * `flakyStore`) with a real JSON-lines mirror: reads from the mirror with the spool laid over
 * it, replay in order and idempotently after a crash mid-replay, conflicts, offsets taken
 * meanwhile, and no mirror at all.
 */
import assert from 'node:assert/strict';
import fs, { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { collections } from '../../src/domain/collections.ts';
import { and, eq, isStorageError, type CollectionSpec, type Doc, type Store } from '../../src/storage/index.ts';
import { createJsonlStore } from '../../src/storage/jsonl/jsonl-store.ts';
import { createMemoryStore } from '../../src/storage/memory/memory-store.ts';
import { CONFLICTS_SPEC, createResilientStore, readSpoolSummary, Spool, type ConflictRecord, type ResilientStore } from '../../src/storage/degraded/index.ts';
import { translateMongoError } from '../../src/storage/mongodb/mongodb-errors.ts';
import { flakyStore, type Outage } from './flaky-store.ts';

const THINGS = { name: 'things', schemaVersion: 1, indexes: [{ name: 'code', fields: [['code', 1]] as Array<[string, 1 | -1]>, unique: true }] };
const MESSAGES = collections.messages;
const CONVERSATIONS = collections.conversations;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otto-degraded-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes documents into a JSONL folder, as a mirror would have them. */
async function seedMirror(path: string, docs: Record<string, Doc[]>): Promise<void> {
  const mirror = await createJsonlStore({ dir: path });
  const specs: Record<string, CollectionSpec> = { things: THINGS, messages: MESSAGES, conversations: CONVERSATIONS };
  for (const [name, list] of Object.entries(docs)) {
    const c = await mirror.collection(specs[name] ?? { name, schemaVersion: 1, indexes: [] });
    for (const doc of list) await c.upsert({ doc, verbatim: true });
  }
  await mirror.close();
}

interface Harness {
  primary: Store;
  outage: Outage;
  open(options?: { mirror?: boolean }): Promise<ResilientStore>;
}

function harness(): Harness {
  const primary = createMemoryStore();
  const outage: Outage = { down: false, writes: 0 };
  return {
    primary,
    outage,
    open: (options = {}) =>
      createResilientStore({
        connect: async () => {
          const store = flakyStore(primary, outage);
          await store.collection(CONFLICTS_SPEC); // as the migration does
          return store;
        },
        describe: { engine: 'memory', location: 'test' },
        mirror: options.mirror === false ? undefined : `jsonl:${join(dir, 'mirror')}`,
        spoolDir: join(dir, 'spool'),
        retryMs: 60_000, // the tests probe by hand
      }),
  };
}

describe('spool', () => {
  it('fsyncs each entry before append returns, and drops a torn last line on open', () => {
    const spool = Spool.open({ dir: join(dir, 'spool') });
    const synced: number[] = [];
    const original = fs.fsyncSync;
    fs.fsyncSync = (fd: number) => {
      synced.push(readFileSync(join(dir, 'spool', 'spool.jsonl'), 'utf8').split('\n').filter(Boolean).length);
      original(fd);
    };
    syncBuiltinESMExports();
    try {
      spool.append({ write: { op: 'increment', spec: THINGS, id: 'a', field: 'n', by: 1 }, results: [] });
      spool.append({ write: { op: 'increment', spec: THINGS, id: 'a', field: 'n', by: 2 }, results: [] });
    } finally {
      fs.fsyncSync = original;
      syncBuiltinESMExports();
    }
    // Each append was fsynced once its line was in the file (1, then 2 lines).
    assert.deepEqual(synced, [1, 2]);
    spool.close();
    appendFileSync(join(dir, 'spool', 'spool.jsonl'), '{"seq":3,"at":"2026'); // a crash mid-append
    const reopened = Spool.open({ dir: join(dir, 'spool') });
    assert.deepEqual(reopened.pending().map((e) => e.seq), [1, 2]);
    assert.equal(readFileSync(join(dir, 'spool', 'spool.jsonl'), 'utf8').split('\n').filter(Boolean).length, 2, 'the torn line is cut off');
    reopened.markReplayed({ seq: 1 });
    const entry = reopened.append({ write: { op: 'increment', spec: THINGS, id: 'a', field: 'n', by: 3 }, results: [] });
    assert.equal(entry.seq, 3, 'numbers keep counting');
    reopened.close();
    assert.deepEqual(readSpoolSummary({ dir: join(dir, 'spool') }).backlog, 2);
  });

  it('refuses a corrupt line that is not the last, naming it', () => {
    const path = join(dir, 'spool');
    Spool.open({ dir: path }).close();
    writeFileSync(join(path, 'spool.jsonl'), 'not json\n{"seq":2,"at":"x","write":{"op":"increment"},"results":[]}\n');
    assert.throws(() => Spool.open({ dir: path }), (error: unknown) => isStorageError(error, 'INVALID') && /line 1/.test((error as Error).message));
  });

  it('belongs to its primary while it holds writes: another primary is refused, not replayed into', () => {
    const path = join(dir, 'spool');
    const spool = Spool.open({ dir: path, primary: 'db1:27017/otto' });
    const entry = spool.append({ write: { op: 'increment', spec: THINGS, id: 'a', field: 'n', by: 1 }, results: [] });
    spool.close();
    assert.throws(() => Spool.open({ dir: path, primary: 'db2:27017/otto' }), (error: unknown) => isStorageError(error, 'INVALID') && /1 write\(s\) for the primary db1:27017\/otto/.test((error as Error).message));
    const again = Spool.open({ dir: path, primary: 'db1:27017/otto' });
    again.markReplayed({ seq: entry.seq });
    again.close();
    Spool.open({ dir: path, primary: 'db2:27017/otto' }).close(); // empty: it may serve another primary
  });

  it('is held by one process at a time', () => {
    const path = join(dir, 'spool');
    const spool = Spool.open({ dir: path });
    writeFileSync(join(path, 'spool.lock'), `${process.ppid}\n`); // a live process that is not this one
    assert.throws(() => Spool.open({ dir: path }), (error: unknown) => isStorageError(error, 'UNAVAILABLE') && /in use by process/.test((error as Error).message));
    writeFileSync(join(path, 'spool.lock'), `${process.pid}\n`);
    spool.close();
  });
});

describe("the MongoDB engine's errors when the server goes away", () => {
  it('translates socket errors the driver passes through unwrapped to UNAVAILABLE', () => {
    const ended = Object.assign(new Error('This socket has been ended by the other party'), { code: 'EPIPE' });
    assert.equal(translateMongoError(ended, 'read').code, 'UNAVAILABLE');
    assert.equal(translateMongoError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'read').code, 'UNAVAILABLE');
    assert.equal(translateMongoError(new Error('something else'), 'read').code, 'INTERNAL');
  });
});

describe('resilient store', () => {
  it('serves reads from the mirror with its own spooled writes laid over them', async () => {
    await seedMirror(join(dir, 'mirror'), {
      things: [1, 2, 3, 4].map((i) => ({ id: `t${i}`, code: `c${i}`, n: i, version: 1, created_at: `2026-01-0${i}T00:00:00.000Z`, updated_at: `2026-01-0${i}T00:00:00.000Z` })),
    });
    const h = harness();
    h.outage.down = true;
    const store = await h.open();
    try {
      assert.equal(store.degradedStatus().active, true);
      const things = await store.collection(THINGS);
      await things.insert({ doc: { id: 't5', code: 'c5', n: 5 } });
      await things.update({ id: 't2', patch: { n: 20 } });
      assert.equal(await things.delete({ id: 't3' }), true);
      assert.equal((await things.get({ id: 't2' }))?.n, 20);
      assert.equal(await things.get({ id: 't3' }), null);
      assert.equal(await things.count(), 4);
      assert.equal(await things.count({ where: eq('n', 20) }), 1);
      // Pages in sort order across mirror and spool, with cursors.
      const first = await things.find({ sort: [{ field: 'n', direction: 'desc' }], limit: 2 });
      assert.deepEqual(first.items.map((d) => d.id), ['t2', 't5']);
      const second = await things.find({ sort: [{ field: 'n', direction: 'desc' }], limit: 2, after: first.next });
      assert.deepEqual(second.items.map((d) => d.id), ['t4', 't1']);
      assert.equal(second.next, null);
      const scanned: string[] = [];
      for await (const batch of things.scan({ batchSize: 2 })) scanned.push(...batch.map((d) => d.id));
      assert.deepEqual(scanned, ['t1', 't2', 't4', 't5']);
      // The view enforces ids, unique indexes and versions.
      await assert.rejects(things.insert({ doc: { id: 't6', code: 'c1' } }), (e: unknown) => isStorageError(e, 'DUPLICATE'));
      await assert.rejects(things.insert({ doc: { id: 't1', code: 'zz' } }), (e: unknown) => isStorageError(e, 'DUPLICATE'));
      await assert.rejects(things.update({ id: 't2', patch: { n: 1 }, expectVersion: 1 }), (e: unknown) => isStorageError(e, 'CONFLICT'));
      assert.equal(store.degradedStatus().spool_backlog, 3);
    } finally {
      await store.close();
    }
  });

  for (const crashAfter of [0, 1, 2, 3, 4, 5, 6, 7]) {
    it(`replays in order and idempotently when a crash follows write ${crashAfter + 1} of the replay`, async () => {
      const t1 = { id: 't1', code: 'c1', n: 1, version: 1, created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-01T00:00:00.000Z' };
      await seedMirror(join(dir, 'mirror'), { things: [t1] });
      const h = harness();
      const seed = await h.primary.collection(THINGS);
      await seed.upsert({ doc: t1, verbatim: true });
      h.outage.down = true;
      let store = await h.open();
      const things = await store.collection(THINGS);
      await things.insert({ doc: { id: 't2', code: 'c2', n: 2 } });
      await things.update({ id: 't1', patch: { n: 10 } });
      await things.update({ id: 't1', patch: { n: 11 } });
      await things.insertMany({ docs: [{ id: 't3', code: 'c3', n: 3 }, { id: 't4', code: 'c4', n: 4 }] });
      await things.delete({ id: 't2' });
      await things.upsert({ doc: { id: 't5', code: 'c5', n: 5 } });
      await things.update({ id: 't5', patch: { n: 50 } });
      assert.equal(store.degradedStatus().spool_backlog, 7);
      // The primary returns, and the replay "crashes" right after one of its writes has been applied
      // (before its progress was recorded).
      h.outage.down = false;
      h.outage.crashAfterWrites = crashAfter;
      assert.equal(await store.probe(), false);
      assert.equal(h.outage.writes, crashAfter + 1);
      await store.close();
      // A new process on the same spool replays the rest, the interrupted entry again, harmlessly.
      h.outage.down = false;
      h.outage.crashAfterWrites = undefined;
      store = await h.open();
      try {
        assert.equal(store.degradedStatus().active, false, 'the spool was replayed at startup');
        assert.equal(store.degradedStatus().spool_backlog, 0);
        assert.equal(store.degradedStatus().conflicts, 0);
        const all: Doc[] = [];
        for await (const batch of seed.scan()) all.push(...batch);
        assert.deepEqual(all.map((d) => [d.id, d.n, d.version]), [['t1', 11, 3], ['t3', 3, 1], ['t4', 4, 1], ['t5', 50, 2]]);
        assert.equal(await (await h.primary.collection<ConflictRecord>(CONFLICTS_SPEC)).count(), 0);
      } finally {
        await store.close();
      }
    });
  }

  it('spools a write whose reply was lost when the server went away, and replays it without a duplicate or a conflict', async () => {
    await seedMirror(join(dir, 'mirror'), {});
    const h = harness();
    const store = await h.open();
    try {
      const things = await store.collection(THINGS);
      h.outage.crashAfterWrites = 0; // the insert reaches the primary, then the connection drops
      const doc = await things.insert({ doc: { id: 't1', code: 'c1', n: 1 } });
      assert.equal(doc.id, 't1');
      assert.equal(store.degradedStatus().active, true);
      assert.equal(store.degradedStatus().spool_backlog, 1);
      h.outage.down = false;
      h.outage.crashAfterWrites = undefined;
      assert.equal(await store.probe(), true);
      assert.equal(await things.count(), 1);
      assert.equal(store.degradedStatus().conflicts, 0);
    } finally {
      await store.close();
    }
  });

  it('records a write whose document changed in the primary meanwhile as a conflict, never overwriting it', async () => {
    const base = { id: 't1', code: 'c1', n: 1, version: 1, created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-01T00:00:00.000Z' };
    await seedMirror(join(dir, 'mirror'), { things: [base] });
    const h = harness();
    const primaryThings = await h.primary.collection(THINGS);
    await primaryThings.upsert({ doc: base, verbatim: true });
    const store = await h.open();
    try {
      const things = await store.collection(THINGS);
      h.outage.down = true;
      await things.update({ id: 't1', patch: { n: 100 } }); // fails over: spooled, based on version 1
      assert.equal(store.degradedStatus().active, true);
      assert.equal((await things.get({ id: 't1' }))?.n, 100, 'the process reads its own write');
      // Meanwhile someone else changes it in the primary.
      await primaryThings.update({ id: 't1', patch: { n: 7 } });
      h.outage.down = false;
      assert.equal(await store.probe(), true);
      assert.equal((await things.get({ id: 't1' }))?.n, 7, 'the primary keeps its version');
      const conflicts = await (await h.primary.collection<ConflictRecord>(CONFLICTS_SPEC)).find({ where: eq('status', 'open') });
      assert.equal(conflicts.items.length, 1);
      const [conflict] = conflicts.items;
      assert.equal(conflict!.collection, 'things');
      assert.equal(conflict!.doc_id, 't1');
      assert.equal(conflict!.base_version, 1);
      assert.equal(conflict!.primary_version, 2);
      assert.deepEqual(JSON.parse(conflict!.spooled).patch, { n: 100 });
      assert.equal(store.degradedStatus().conflicts, 1);
    } finally {
      await store.close();
    }
  });

  it('moves a spooled message whose offset was taken meanwhile after the last one, keeping offsets unique and in order', async () => {
    const at = '2026-01-01T00:00:00.000Z';
    const conversation = { id: 'conv1', owner_id: 'o', bot_id: 'b', user_id: null, title: '', context: {}, last_offset: 2, version: 1, created_at: at, updated_at: at };
    const message = (offset: number) => ({ id: `m${offset}`, owner_id: 'o', conversation_id: 'conv1', offset, role: 'user', content: `m${offset}`, version: 1, created_at: at, updated_at: at });
    await seedMirror(join(dir, 'mirror'), { conversations: [conversation], messages: [message(1), message(2)] });
    const h = harness();
    const pm = await h.primary.collection(MESSAGES);
    await (await h.primary.collection(CONVERSATIONS)).upsert({ doc: conversation, verbatim: true });
    for (const m of [message(1), message(2)]) await pm.upsert({ doc: m, verbatim: true });
    h.outage.down = true;
    const store = await h.open();
    try {
      const messages = await store.collection(MESSAGES);
      const last = async () => (await messages.find({ where: eq('conversation_id', 'conv1'), sort: [{ field: 'offset', direction: 'desc' }], limit: 1 })).items[0]?.offset as number;
      for (const text of ['a', 'b']) {
        const offset = (await last()) + 1;
        await messages.insert({ doc: { id: `mine_${text}`, owner_id: 'o', conversation_id: 'conv1', offset, role: 'user', content: text } });
      }
      assert.equal(await last(), 4);
      // Another process wrote offset 3 in the primary meanwhile.
      await pm.insert({ doc: { id: 'theirs', owner_id: 'o', conversation_id: 'conv1', offset: 3, role: 'user', content: 'theirs' } });
      h.outage.down = false;
      assert.equal(await store.probe(), true);
      const all = await pm.find({ where: eq('conversation_id', 'conv1'), sort: [{ field: 'offset', direction: 'asc' }] });
      assert.deepEqual(all.items.map((m) => [m.offset, m.content]), [[1, 'm1'], [2, 'm2'], [3, 'theirs'], [4, 'a'], [5, 'b']]);
      assert.equal(store.degradedStatus().renumbered, 2);
      assert.equal(store.degradedStatus().conflicts, 0);
    } finally {
      await store.close();
    }
  });

  it('without a mirror it refuses reads and writes with UNAVAILABLE, and recovers by itself', async () => {
    const h = harness();
    const store = await h.open({ mirror: false });
    try {
      const things = await store.collection(THINGS);
      await things.insert({ doc: { id: 't1', code: 'c1' } });
      h.outage.down = true;
      await assert.rejects(things.insert({ doc: { id: 't2', code: 'c2' } }), (e: unknown) => isStorageError(e, 'UNAVAILABLE'));
      assert.equal(store.degradedStatus().active, true);
      assert.equal(store.degradedStatus().writes, 'refused');
      assert.equal(store.serving(), false);
      await assert.rejects(things.get({ id: 't1' }), (e: unknown) => isStorageError(e, 'UNAVAILABLE'));
      assert.equal(await store.probe(), false);
      h.outage.down = false;
      assert.equal(await store.probe(), true);
      await things.insert({ doc: { id: 't2', code: 'c2' } });
      assert.equal(await things.count({ where: and(eq('code', 'c2')) }), 1);
      assert.equal(store.degradedStatus().spool_backlog, 0);
    } finally {
      await store.close();
    }
  });

  it('keeps counters and numbered inserts consistent through an outage', async () => {
    await seedMirror(join(dir, 'mirror'), {});
    const h = harness();
    const store = await h.open();
    try {
      const counters = await store.collection(collections.counters);
      const things = await store.collection(THINGS);
      assert.equal(await counters.increment({ id: 'k', field: 'value' }), 1);
      h.outage.down = true;
      // The mirror has no counter yet: the view starts from what the mirror holds.
      const numbered = await things.insertNumbered({ docs: [{ id: 'n1', code: 'x1' }, { id: 'n2', code: 'x2' }] as never, field: 'n', counter: { collection: '_counters', id: 'seq', field: 'value' } });
      assert.deepEqual(numbered.map((d) => d.n), [1, 2]);
      assert.equal(await counters.increment({ id: 'k', field: 'value' }), 1);
      h.outage.down = false;
      assert.equal(await store.probe(), true);
      assert.equal((await counters.get({ id: 'k' }))?.value, 2, 'increments add up on replay');
      assert.deepEqual((await things.find({ sort: [{ field: 'n', direction: 'asc' }] })).items.map((d) => d.n), [1, 2]);
    } finally {
      await store.close();
    }
  });
});
