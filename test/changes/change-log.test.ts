/**
 * The change log on each engine: every committed write yields exactly one record, in seq order,
 * and a failed write yields none (SQLite: in the same transaction; elsewhere: a write-ahead record
 * that is aborted, and skipped by readers). Pending records hold readers back until committed or
 * recovered; seqs that never appear are settled after the recovery window.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { changeRowJson, WriteAheadChangeLog } from '../../src/storage/changes/change-log.ts';
import { attachChangeLog, CHANGES_SPEC, type ChangeRecord, type StoredChange } from '../../src/storage/changes/index.ts';
import { seqId } from '../../src/storage/changes/records.ts';

import { isStorageError, type Doc, type Store, type StorageErrorCode } from '../../src/storage/contract.ts';
import { createMemoryStore } from '../../src/storage/memory/memory-store.ts';
import { createMongoStore } from '../../src/storage/mongodb/mongodb-store.ts';
import { createSqliteStore, type SqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { storedDocEvent } from '../../src/storage/write-hooks.ts';
import { eq } from '../../src/storage/where.ts';
import { readAll } from '../support/change-log.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';

const mongo = await mongoTestTarget();
if ('skip' in mongo) process.stderr.write(`${mongo.skip}\n`);
else after(() => mongo.stop());

async function rejects(promise: Promise<unknown>, code: StorageErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isStorageError(error, code) || assert.fail(`expected ${code}, got ${String(error)}`));
}


const summary = (changes: ChangeRecord[]) => changes.map((c) => [c.op, c.collection, c.id, c.doc?.version ?? null]);

interface Engine {
  name: string;
  skip?: string;
  open(): Promise<{ raw: Store; cleanup(): Promise<void> }>;
}

const engines: Engine[] = [
  {
    name: 'sqlite (in the write transaction)',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'otto-changes-'));
      const raw = await createSqliteStore({ path: join(dir, 'otto.db') });
      return { raw, cleanup: async () => (await raw.close(), await rm(dir, { recursive: true, force: true })) };
    },
  },
  {
    name: 'memory (write-ahead)',
    async open() {
      const raw = createMemoryStore();
      return { raw, cleanup: () => raw.close() };
    },
  },
  {
    name: 'mongodb (write-ahead)',
    skip: 'skip' in mongo ? mongo.skip : undefined,
    async open() {
      if ('skip' in mongo) throw new Error(mongo.skip);
      const raw = await createMongoStore({ uri: mongo.uri, database: `otto_test_${randomBytes(6).toString('hex')}` });
      return { raw, cleanup: async () => (await raw.db.dropDatabase().catch(() => {}), await raw.close()) };
    },
  },
];

const items = (n: number) => ({ name: `items_${n}`, schemaVersion: 1, indexes: [{ name: 'name', fields: [['name', 1]] as Array<[string, 1]>, unique: true }] });

for (const engine of engines) {
  describe(`change log: ${engine.name}`, { skip: engine.skip }, () => {
    it('logs every kind of committed write once, in order, with the document or a tombstone', async () => {
      const { raw, cleanup } = await engine.open();
      try {
        const { store, log } = await attachChangeLog(raw);
        const c = await store.collection<Doc & { name?: string; n?: number }>(items(1));
        await c.insert({ doc: { id: 'a', name: 'A' } });
        await c.insertMany({ docs: [{ id: 'b', name: 'B' }, { id: 'c', name: 'C' }] });
        await c.update({ id: 'a', patch: { n: 1 } });
        assert.equal(await c.increment({ id: 'a', field: 'n', by: 2 }), 3);
        await c.increment({ id: 'counter', field: 'n' });
        await c.upsert({ doc: { id: 'b', name: 'B2' } });
        await c.upsert({ doc: { id: 'd', name: 'D' } });
        assert.equal(await c.delete({ id: 'c' }), true);
        assert.equal(await c.delete({ id: 'nope' }), false);
        await c.insertMany({ docs: [{ id: 'e', n: 9 }, { id: 'f', n: 9 }] });
        assert.equal(await c.deleteMany({ where: eq('n', 9) }), 2);
        const changes = await readAll(log);
        assert.deepEqual(summary(changes), [
          ['insert', 'items_1', 'a', 1],
          ['insert', 'items_1', 'b', 1],
          ['insert', 'items_1', 'c', 1],
          ['update', 'items_1', 'a', 2],
          ['update', 'items_1', 'a', 3],
          ['insert', 'items_1', 'counter', 1],
          ['update', 'items_1', 'b', 2],
          ['insert', 'items_1', 'd', 1],
          ['delete', 'items_1', 'c', null],
          ['insert', 'items_1', 'e', 1],
          ['insert', 'items_1', 'f', 1],
          ['delete', 'items_1', 'e', null],
          ['delete', 'items_1', 'f', null],
        ]);
        for (let i = 1; i < changes.length; i++) assert.ok(changes[i]!.seq > changes[i - 1]!.seq, 'seqs increase');
        assert.equal((changes[4]!.doc as { n?: number }).n, 3, 'the increment is logged with the value it wrote');
        assert.equal((changes[6]!.doc as { name?: string }).name, 'B2');
        assert.deepEqual(await c.get({ id: 'a' }), changes[4]!.doc, 'the logged document is the stored one');
        assert.equal(await log.lastSeq(), changes.at(-1)!.seq);
        // Reading is a cursor: from the middle, in pages.
        const tail = await log.readChanges({ after: changes[8]!.seq, limit: 2 });
        assert.deepEqual(tail.changes.map((x) => x.id), ['e', 'f']);
        assert.equal(tail.next, changes[10]!.seq);
      } finally {
        await cleanup();
      }
    });

    it('logs numbered inserts with the counter they moved', async () => {
      const { raw, cleanup } = await engine.open();
      try {
        const { store, log } = await attachChangeLog(raw);
        const conversations = await store.collection<Doc & { last?: number }>({ name: 'convs_8', schemaVersion: 1, indexes: [] });
        const messages = await store.collection<Doc & { offset?: number }>({ name: 'msgs_8', schemaVersion: 1, indexes: [{ fields: [['offset', 1]], unique: true }] });
        await conversations.insert({ doc: { id: 'conv', last: 0 } });
        const stored = await messages.insertNumbered({ docs: [{ id: 'm1' }, { id: 'm2' }], field: 'offset', counter: { collection: 'convs_8', id: 'conv', field: 'last' } });
        assert.deepEqual(stored.map((m) => m.offset), [1, 2]);
        const changes = await readAll(log);
        assert.deepEqual(summary(changes), [
          ['insert', 'convs_8', 'conv', 1],
          ['update', 'convs_8', 'conv', 2],
          ['insert', 'msgs_8', 'm1', 1],
          ['insert', 'msgs_8', 'm2', 1],
        ]);
        assert.equal((changes[1]!.doc as { last?: number }).last, 2);
        assert.equal((changes[3]!.doc as { offset?: number }).offset, 2);
      } finally {
        await cleanup();
      }
    });

    it('logs nothing for a write that fails', async () => {
      const { raw, cleanup } = await engine.open();
      try {
        const { store, log } = await attachChangeLog(raw);
        const c = await store.collection<Doc & { name?: string; n?: number }>(items(2));
        await c.insert({ doc: { id: 'a', name: 'A' } });
        const before = await readAll(log);
        await rejects(c.insert({ doc: { id: 'a', name: 'other' } }), 'DUPLICATE');
        await rejects(c.insert({ doc: { id: 'b', name: 'A' } }), 'DUPLICATE');
        await rejects(c.update({ id: 'a', patch: { n: 1 }, expectVersion: 7 }), 'CONFLICT');
        await rejects(c.update({ id: 'missing', patch: { n: 1 } }), 'NOT_FOUND');
        await rejects(c.insert({ doc: { id: 'bad', $where: 1 } as never }), 'INVALID');
        await rejects(c.delete({ id: 'a', expectVersion: 9 }), 'CONFLICT');
        await rejects(c.upsert({ doc: { id: 'z', name: 'A' } }), 'DUPLICATE');
        if (store.capabilities.transactions) await rejects(c.insertMany({ docs: [{ id: 'x' }, { id: 'a' }] }), 'DUPLICATE');
        const after = await readAll(log, before.at(-1)!.seq);
        assert.deepEqual(after, [], 'no change record for a failed write');
        assert.equal(await c.count(), 1);
        // The next committed write is the next record a reader sees.
        await c.insert({ doc: { id: 'next' } });
        assert.deepEqual(summary(await readAll(log, before.at(-1)!.seq)), [['insert', 'items_2', 'next', 1]]);
      } finally {
        await cleanup();
      }
    });
  });
}

describe('change log on SQLite: one transaction with the entity', () => {
  it('rolls the record back with the entity, and a committed entity always has its record', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-changes-tx-'));
    const raw = await createSqliteStore({ path: join(dir, 'otto.db') });
    try {
      const { store, log } = await attachChangeLog(raw);
      assert.equal(store, raw, 'SQLite is used as it is: the log is written by its write hook');
      assert.equal(log.mode, 'transactional');
      const c = await store.collection(items(3));
      // A hook after the log's one fails: the whole transaction (entity + change record) rolls back.
      let fail = true;
      const remove = raw.onWrite(() => {
        if (fail) throw new Error('boom after the change was logged');
      });
      await assert.rejects(c.insert({ doc: { id: 'a', name: 'A' } }), /boom/);
      assert.equal(await c.get({ id: 'a' }), null, 'the entity was rolled back');
      const table = (raw as SqliteStore).database.prepare('SELECT COUNT(*) AS n FROM "_changes"').get() as { n: number };
      assert.equal(Number(table.n), 0, 'the change record was rolled back with it');
      fail = false;
      remove();
      // Several writes in one explicit transaction: all records, in order, and none on rollback.
      raw.transaction(() => {
        void c.insert({ doc: { id: 'b', name: 'B' } });
        void c.insert({ doc: { id: 'c', name: 'C' } });
      });
      assert.throws(() =>
        raw.transaction(() => {
          void c.insert({ doc: { id: 'd', name: 'D' } });
          throw new Error('abandon');
        }),
      );
      assert.deepEqual(summary(await readAll(log)), [
        ['insert', 'items_3', 'b', 1],
        ['insert', 'items_3', 'c', 1],
      ]);
      // Every stored entity has a record, and every record an entity state.
      const ids = (await c.find({})).items.map((d) => d.id).sort();
      assert.deepEqual(ids, ['b', 'c']);
    } finally {
      await raw.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('numbers the writes of two handles on one file in commit order, without gaps', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-changes-two-'));
    const a = await createSqliteStore({ path: join(dir, 'otto.db') });
    const b = await createSqliteStore({ path: join(dir, 'otto.db') });
    try {
      const la = await attachChangeLog(a);
      const lb = await attachChangeLog(b);
      const ca = await la.store.collection(items(4));
      const cb = await lb.store.collection(items(4));
      for (let i = 0; i < 20; i++) await (i % 2 ? ca : cb).insert({ doc: { id: `d${String(i).padStart(2, '0')}` } });
      const changes = await readAll(la.log);
      assert.deepEqual(changes.map((c) => c.seq), Array.from({ length: 20 }, (_, i) => i + 1));
      assert.deepEqual(changes.map((c) => c.id), Array.from({ length: 20 }, (_, i) => `d${String(i).padStart(2, '0')}`));
    } finally {
      await a.close();
      await b.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

for (const engine of engines.slice(1)) {
  describe(`write-ahead records: ${engine.name}`, { skip: engine.skip }, () => {
    it('holds readers at a pending record and recovers it from the entity after the window', async () => {
      const { raw, cleanup } = await engine.open();
      try {
        const { store, log } = await attachChangeLog(raw, { recoveryMs: 300 });
        const wal = log as WriteAheadChangeLog;
        const c = await store.collection(items(5));
        const rawItems = await raw.collection(items(5));
        await c.insert({ doc: { id: 'first' } });
        // A writer allocated seq 2 and wrote its entity, then died before committing.
        const stalled = await wal.allocate({ collection: 'items_5', op: 'insert', doc_id: 'orphan' });
        await rawItems.insert({ doc: { id: 'orphan', name: 'written' } });
        // Another writer, later, committed seq 3.
        await c.insert({ doc: { id: 'later' } });
        // A second stalled writer whose entity write never happened (seq 4).
        const never = await wal.allocate({ collection: 'items_5', op: 'update', doc_id: 'ghost' });
        await c.insert({ doc: { id: 'last' } });

        const early = await log.readChanges({ after: 0 });
        assert.deepEqual(early.changes.map((x) => x.id), ['first'], 'a reader never passes a pending record');
        assert.equal(early.next, 1);
        assert.equal(early.waiting?.seq, stalled);
        await sleep(350);
        const recovered = await log.readChanges({ after: early.next });
        assert.deepEqual(summary(recovered.changes), [
          ['insert', 'items_5', 'orphan', 1],
          ['insert', 'items_5', 'later', 1],
        ]);
        assert.equal(recovered.waiting?.seq, never, 'the next pending one holds it again');
        await sleep(350);
        const rest = await log.readChanges({ after: recovered.next });
        assert.deepEqual(summary(rest.changes), [
          ['delete', 'items_5', 'ghost', null],
          ['insert', 'items_5', 'last', 1],
        ]);
        assert.equal(rest.waiting, undefined);
        const changes = await raw.collection<StoredChange>(CHANGES_SPEC);
        assert.equal((await changes.get({ id: seqId(stalled) }))?.recovered, true);
        // The late writer's commit loses to the recovery, which already shows its write: nothing more.
        await wal.commit(stalled, { collection: 'items_5', op: 'insert', doc_id: 'orphan' }, { op: 'insert', doc: (await rawItems.get({ id: 'orphan' }))! });
        assert.deepEqual((await log.readChanges({ after: rest.next })).changes, []);
        // Recovery is idempotent: reading again gives the same records.
        assert.deepEqual(summary(await readAll(log)), summary([...early.changes, ...recovered.changes, ...rest.changes]));
      } finally {
        await cleanup();
      }
    });

    it('a writer that commits after its record was recovered logs its write again', async () => {
      const { raw, cleanup } = await engine.open();
      try {
        const { log } = await attachChangeLog(raw, { recoveryMs: 100 });
        const wal = log as WriteAheadChangeLog;
        const rawItems = await raw.collection(items(6));
        const seq = await wal.allocate({ collection: 'items_6', op: 'insert', doc_id: 'slow' });
        await log.readChanges({ after: 0 });
        await sleep(150);
        // The reader recovers it before the (stalled) writer wrote anything: a tombstone.
        const first = await log.readChanges({ after: 0 });
        assert.deepEqual(summary(first.changes), [['delete', 'items_6', 'slow', null]]);
        // Now the writer wakes up, writes, and commits: its write must not be lost.
        const doc = await rawItems.insert({ doc: { id: 'slow' } });
        await wal.commit(seq, { collection: 'items_6', op: 'insert', doc_id: 'slow' }, { op: 'insert', doc });
        const again = await log.readChanges({ after: first.next });
        assert.deepEqual(summary(again.changes), [['insert', 'items_6', 'slow', 1]]);
      } finally {
        await cleanup();
      }
    });

    it('hands out dense seqs to concurrent writers sharing the log, and readers skip aborted ones', async () => {
      const { raw, cleanup } = await engine.open();
      try {
        // Two logs on one store: what two processes see.
        const one = (await attachChangeLog(raw)).log as WriteAheadChangeLog;
        const two = (await attachChangeLog(raw)).log as WriteAheadChangeLog;
        const intent = (i: number) => ({ collection: 'items_7', op: 'insert' as const, doc_id: `d${i}` });
        const seqs = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? one : two).allocate(intent(i))));
        assert.deepEqual([...seqs].sort((a, b) => a - b), Array.from({ length: 60 }, (_, i) => i + 1), 'every seq once, none skipped');
        assert.equal(await one.lastSeq(), 60);
        assert.equal(await two.lastSeq(), 60);
        // Settle them: even ones committed, odd ones aborted (their writes failed).
        await Promise.all(seqs.map((seq, i) => (seq % 2 ? one.abort(seq, intent(i)) : one.commit(seq, intent(i), { op: 'insert', doc: null }))));
        const read = await two.readChanges({ after: 0 });
        assert.deepEqual(read.changes.map((c) => c.seq), Array.from({ length: 30 }, (_, i) => 2 * (i + 1)));
        assert.equal(read.next, 60);
        assert.equal(read.waiting, undefined);
      } finally {
        await cleanup();
      }
    });
  });
}

describe('a SQLite change row', () => {
  const at = '2026-12-04T10:00:00.000Z';
  const record = (doc: Doc | null, op: 'insert' | 'delete'): StoredChange => ({
    id: seqId(7), version: 1, created_at: at, updated_at: at, seq: 7, collection: 'messages', op, doc_id: 'msg_1', doc, at, state: 'committed',
  });
  const doc: Doc = { id: 'msg_1', version: 1, created_at: at, updated_at: at, content: 'quote " backslash \\ \u2028 ☃', meta_data: { nested: [1, null, { a: true }] } };

  it('is the JSON of its record, with the document spliced in from the text the engine stored', () => {
    const row = changeRowJson({ id: seqId(7), seq: 7, at, event: storedDocEvent({ collection: 'messages', op: 'insert', id: 'msg_1', json: JSON.stringify(doc) }) });
    assert.equal(row, JSON.stringify(record(doc, 'insert')));
  });

  it('serializes the document itself when the event carries no text, and a delete as null', () => {
    assert.equal(changeRowJson({ id: seqId(7), seq: 7, at, event: { collection: 'messages', op: 'insert', id: 'msg_1', doc } }), JSON.stringify(record(doc, 'insert')));
    assert.equal(changeRowJson({ id: seqId(7), seq: 7, at, event: { collection: 'messages', op: 'delete', id: 'msg_1', doc: null } }), JSON.stringify(record(null, 'delete')));
  });

  it('parses an event\'s document from its text only when a hook reads it, as a copy', () => {
    const json = JSON.stringify(doc);
    const event = storedDocEvent({ collection: 'messages', op: 'insert', id: 'msg_1', json });
    assert.equal(event.json, json);
    assert.deepEqual(event.doc, doc);
    assert.notEqual(event.doc, doc);
    assert.equal(event.doc, event.doc, 'parsed once');
  });
});
