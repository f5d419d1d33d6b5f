/** JSONL-engine specifics: what survives a reopen, torn lines, compaction, fsync policies, the lock. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isStorageError, type Doc, type Store } from '../../src/storage/contract.ts';
import { createJsonlStore, type FsyncPolicy } from '../../src/storage/jsonl/jsonl-store.ts';

const spec = { name: 'items', schemaVersion: 1, indexes: [{ name: 'by_name', fields: [['name', 1]] as Array<[string, 1 | -1]>, unique: true }] };

/** Every document of every collection, by collection then id. */
async function dump(store: Store): Promise<Record<string, Doc[]>> {
  const out: Record<string, Doc[]> = {};
  for (const name of await store.listCollections()) {
    const collection = await store.collection({ name, schemaVersion: 1, indexes: [] });
    out[name] = [];
    for await (const batch of collection.scan({ batchSize: 7 })) out[name].push(...batch);
  }
  return out;
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isStorageError(error), String(error));
    return error.code;
  }
  return 'no error';
}

describe('jsonl engine', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'otto-jsonl-engine-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function seed(): Promise<Record<string, Doc[]>> {
    const store = await createJsonlStore({ dir });
    const items = await store.collection(spec);
    for (let i = 0; i < 30; i++) await items.insert({ doc: { id: `i${String(i).padStart(2, '0')}`, name: `n${i}`, payload: { text: `ünï ${i}\n"q"`, list: [i, null, true] } } });
    await items.update({ id: 'i03', patch: { name: 'renamed' } });
    await items.delete({ id: 'i04' });
    await items.upsert({ doc: { id: 'i05', name: 'replaced' } });
    await items.increment({ id: 'i06', field: 'n', by: 5 });
    const counters = await store.collection({ name: '_counters', schemaVersion: 1, indexes: [] });
    await counters.increment({ id: 'messages', field: 'value' });
    const state = await dump(store);
    await store.close();
    return state;
  }

  it('keeps every write across a reopen, one line per write, with unique indexes enforced after it', async () => {
    const before = await seed();
    const lines = readFileSync(join(dir, 'items.jsonl'), 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 34);
    assert.deepEqual(JSON.parse(lines.at(-3)!), { op: 'delete', id: 'i04', doc: null });
    assert.equal(JSON.parse(lines[0]!).op, 'put');
    const store = await createJsonlStore({ dir });
    try {
      assert.deepEqual(await dump(store), before);
      assert.deepEqual(store.warnings, []);
      assert.deepEqual(await store.listIndexes({ collection: 'items' }), ['_id_', 'by_name']);
      const items = await store.collection(spec);
      assert.equal(await code(items.insert({ doc: { id: 'x', name: 'renamed' } })), 'DUPLICATE');
      assert.equal(store.engine, 'jsonl');
      assert.equal(store.location, dir);
    } finally {
      await store.close();
    }
  });

  it('ignores and reports a torn last line, and cuts it off before the next append', async () => {
    const before = await seed();
    const file = join(dir, 'items.jsonl');
    const intact = readFileSync(file);
    appendFileSync(file, '{"op":"put","id":"i99","doc":{"id":"i99","na');
    const store = await createJsonlStore({ dir });
    try {
      assert.deepEqual(await dump(store), before);
      assert.equal(store.warnings.length, 1);
      assert.match(store.warnings[0]!, /items\.jsonl:35: ignored a torn last line .*offset \d+/);
      const items = await store.collection(spec);
      await items.insert({ doc: { id: 'i98', name: 'after the crash' } });
    } finally {
      await store.close();
    }
    const repaired = readFileSync(file, 'utf8');
    assert.ok(repaired.startsWith(intact.toString('utf8')));
    assert.ok(!repaired.includes('"i99"'), 'the torn bytes are gone');
    const again = await createJsonlStore({ dir });
    try {
      assert.deepEqual(again.warnings, []);
      assert.equal((await (await again.collection(spec)).get({ id: 'i98' }))?.name, 'after the crash');
    } finally {
      await again.close();
    }
  });

  it('keeps a complete last line that lost only its newline', async () => {
    await seed();
    appendFileSync(join(dir, 'items.jsonl'), JSON.stringify({ op: 'put', id: 'z', doc: { id: 'z', version: 1, created_at: 'a', updated_at: 'a' } }));
    const store = await createJsonlStore({ dir });
    const items = await store.collection(spec);
    assert.equal((await items.get({ id: 'z' }))?.id, 'z');
    await items.insert({ doc: { id: 'zz' } });
    await store.close();
    const reopened = await createJsonlStore({ dir });
    assert.deepEqual((await (await reopened.collection(spec)).find({ where: { op: 'in', field: 'id', values: ['z', 'zz'] } })).items.map((d) => d.id).sort(), ['z', 'zz']);
    await reopened.close();
  });

  it('refuses a damaged line that is not the last, naming file and line', async () => {
    await seed();
    const file = join(dir, 'items.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[9] = '{"op":"put","id":"broken"';
    writeFileSync(file, lines.join('\n'));
    const error = await createJsonlStore({ dir }).catch((e: unknown) => e);
    assert.ok(isStorageError(error, 'INVALID'));
    assert.match(error.message, /items\.jsonl:10: .*not the last line/);
    assert.ok(!existsSync(join(dir, 'otto-jsonl.lock')), 'a refused open leaves no lock behind');
  });

  it('compacts into a snapshot and an empty tail; reopening gives the same state', async () => {
    const before = await seed();
    const store = await createJsonlStore({ dir });
    const results = await store.compact();
    assert.deepEqual(results.map((r) => [r.collection, r.documents]), [['_counters', 1], ['items', 29]]);
    assert.equal(readFileSync(join(dir, 'items.jsonl'), 'utf8'), '');
    const snapshot = readFileSync(join(dir, 'items.snapshot.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { op: string; id: string });
    assert.deepEqual(snapshot.map((r) => r.id), before.items!.map((d) => d.id), 'one put per document, by id');
    await (await store.collection(spec)).update({ id: 'i07', patch: { name: 'after compaction' } });
    const expected = await dump(store);
    await store.close();
    const reopened = await createJsonlStore({ dir });
    assert.deepEqual(await dump(reopened), expected);
    assert.equal(await code(reopened.compact({ collection: 'nope' })), 'NOT_FOUND');
    await reopened.close();
  });

  it('is safe against a crash at any point of a compaction', async () => {
    const before = await seed();
    const tail = join(dir, 'items.jsonl');
    const oldTail = join(dir, 'old-tail.bak');
    copyFileSync(tail, oldTail);
    // Crash before the rename: a half-written temp file next to the old snapshot and full tail.
    writeFileSync(join(dir, 'items.snapshot.jsonl.tmp'), '{"op":"put","id":"ghost","doc":{"id":"gh');
    let store = await createJsonlStore({ dir });
    assert.deepEqual(await dump(store), before);
    assert.ok(!existsSync(join(dir, 'items.snapshot.jsonl.tmp')), 'the leftover temp file is removed');
    // Crash after the rename, before the tail was emptied: new snapshot + the old tail.
    await store.compact({ collection: 'items' });
    await store.close();
    copyFileSync(oldTail, tail);
    store = await createJsonlStore({ dir });
    assert.deepEqual(await dump(store), before);
    await store.close();
  });

  for (const policy of ['always', 'batch', 'never'] as FsyncPolicy[]) {
    it(`accepts fsync: ${policy} and keeps what was written`, async () => {
      const store = await createJsonlStore({ dir, fsync: policy });
      assert.equal(store.fsync, policy);
      assert.equal(store.capabilities.durable, policy !== 'never');
      assert.equal(store.capabilities.transactions, false);
      assert.equal(store.capabilities.multiProcess, false);
      const items = await store.collection(spec);
      for (let i = 0; i < 50; i++) await items.insert({ doc: { id: `p${i}`, name: `p${i}` } });
      await store.flush();
      await store.close();
      const reopened = await createJsonlStore({ dir, fsync: policy });
      assert.equal(await (await reopened.collection(spec)).count(), 50);
      await reopened.close();
    });
  }

  it('rejects an unknown fsync policy', async () => {
    assert.equal(await code(createJsonlStore({ dir, fsync: 'sometimes' as FsyncPolicy })), 'INVALID');
  });

  it('is opened for writing by one store at a time; a lock left by a dead process is taken over', async () => {
    const store = await createJsonlStore({ dir });
    const error = await createJsonlStore({ dir }).catch((e: unknown) => e);
    assert.ok(isStorageError(error, 'UNAVAILABLE'));
    assert.match(error.message, /open for writing by this process/);
    const reader = await createJsonlStore({ dir, readOnly: true });
    await reader.close();
    await store.close();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(join(dir, 'otto-jsonl.lock'), `${dead}\n`);
    const next = await createJsonlStore({ dir });
    await next.close();
    assert.ok(!existsSync(join(dir, 'otto-jsonl.lock')));
  });

  it('read-only: changes no file (not even a torn line), and refuses writes', async () => {
    await seed();
    appendFileSync(join(dir, 'items.jsonl'), '{"op":"pu');
    const files = Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
    const store = await createJsonlStore({ dir, readOnly: true });
    const items = await store.collection(spec);
    assert.equal(await code(items.insert({ doc: { id: 'new' } })), 'UNSUPPORTED');
    assert.equal(await code(store.compact()), 'UNSUPPORTED');
    await store.close();
    assert.deepEqual(Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')])), files);
    assert.equal(await code(createJsonlStore({ dir: join(dir, 'missing'), readOnly: true })), 'UNAVAILABLE');
    assert.ok(!existsSync(join(dir, 'missing')));
  });

  it('loads a folder written by hand (no manifest, no metadata file)', async () => {
    writeFileSync(
      join(dir, 'bots.jsonl'),
      [
        { op: 'put', id: 'b1', doc: { id: 'b1', name: 'one', version: 1, created_at: '2024-01-01T00:00:00.000Z', updated_at: '2024-01-01T00:00:00.000Z' } },
        { op: 'put', id: 'b2', doc: { id: 'b2', name: 'two', version: 1, created_at: '2024-01-01T00:00:00.000Z', updated_at: '2024-01-01T00:00:00.000Z' } },
        { op: 'delete', id: 'b1', doc: null },
      ].map((r) => `${JSON.stringify(r)}\n`).join(''),
    );
    const store = await createJsonlStore({ dir, readOnly: true });
    assert.deepEqual(await store.listCollections(), ['bots']);
    assert.deepEqual((await dump(store)).bots!.map((d) => d.name), ['two']);
    await store.close();
  });
});
