import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { collections } from '../../src/domain/collections.ts';
import { isStorageError, type Store, type WriteEvent } from '../../src/storage/contract.ts';
import { createJsonlStore } from '../../src/storage/jsonl/jsonl-store.ts';
import { createMemoryStore } from '../../src/storage/memory/memory-store.ts';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { openStoreUrlMigrated } from '../../src/storage/store-url.ts';
import { canonicalJson, defaultCollections, transfer, transferKey, verify, type TransferProgress } from '../../src/storage/transfer/index.ts';
import { contents, copiedCollections, seed, tempDir } from './fixtures.ts';

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isStorageError(error), String(error));
    return error.code;
  }
  return 'no error';
}

/** Records every write a store reports, to prove a source is never written. */
function watchWrites(store: Store): WriteEvent[] {
  const events: WriteEvent[] = [];
  store.onWrite((e) => events.push(e));
  return events;
}

describe('transfer and verify', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const open: Store[] = [];
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('otto-transfer-'));
  });
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    await cleanup();
  });
  const keep = <T extends Store>(store: T): T => (open.push(store), store);

  it('SQLite → JSONL → SQLite: every copied collection is equal at each step, system collections stay behind', async () => {
    const source = keep(await createSqliteStore({ path: join(dir, 'source.db') }));
    const counts = await seed(source, { messages: 1234 });
    const writes = watchWrites(source);
    const jsonl = keep(await openStoreUrlMigrated(`jsonl:${join(dir, 'backup')}`, { fsync: 'batch' }));
    const first = await transfer({ from: source, to: jsonl, batchSize: 100 });
    assert.deepEqual(Object.fromEntries(first.collections.map((c) => [c.collection, c.copied])), counts);
    assert.equal(first.resumed, false);
    const back = keep(await openStoreUrlMigrated(`sqlite:${join(dir, 'restored.db')}`));
    await transfer({ from: jsonl, to: back, batchSize: 7 });
    for (const [a, b] of [[source, jsonl], [jsonl, back], [source, back]] as const) {
      const report = await verify({ a, b });
      assert.equal(report.equal, true, JSON.stringify(report.collections.filter((c) => !c.equal)));
      assert.deepEqual(report.collections.map((c) => c.collection), copiedCollections);
    }
    assert.deepEqual(await contents(back, copiedCollections), await contents(source, copiedCollections), 'documents arrive verbatim (versions, timestamps)');
    assert.ok(!(await back.listCollections()).includes('_scratch'));
    assert.deepEqual(writes, [], 'nothing was written to the source');
    // The copy is a working Otto store: unique indexes hold there.
    const bots = await back.collection(collections.bots);
    const taken = (await bots.get({ id: 'bot_001' }))!;
    assert.equal(await code(bots.insert({ doc: { id: 'bot_new', owner_id: taken.owner_id, name_key: taken.name_key } })), 'DUPLICATE');
  });

  it('is idempotent: a second run copies again and changes nothing', async () => {
    const source = keep(await createSqliteStore({ path: join(dir, 'source.db') }));
    await seed(source);
    const target = keep(await openStoreUrlMigrated(`sqlite:${join(dir, 'target.db')}`));
    await transfer({ from: source, to: target });
    const before = await contents(target, copiedCollections);
    const again = await transfer({ from: source, to: target });
    assert.equal(again.resumed, false, 'a finished run starts over');
    assert.ok(again.collections.every((c) => c.target_before === c.copied));
    assert.deepEqual(await contents(target, copiedCollections), before);
    assert.equal((await verify({ a: source, b: target })).equal, true);
  });

  it('resumes an interrupted run after its checkpoint, copying nothing twice in the target', async () => {
    const source = keep(await createSqliteStore({ path: join(dir, 'source.db') }));
    const counts = await seed(source, { messages: 1000 });
    const target = keep(await openStoreUrlMigrated(`jsonl:${join(dir, 'target')}`));
    const controller = new AbortController();
    const seen: TransferProgress[] = [];
    const stopped = await transfer({
      from: source,
      to: target,
      batchSize: 50,
      signal: controller.signal,
      onProgress: (p) => {
        seen.push(p);
        if (p.collection === 'messages' && p.done >= 300) controller.abort(new Error('stop here'));
      },
    }).catch((e: unknown) => e);
    assert.equal((stopped as Error).message, 'stop here');
    const checkpoints = await target.collection({ name: '_transfers', schemaVersion: 1, indexes: [] });
    const key = transferKey(`sqlite:${join(dir, 'source.db')}`);
    assert.equal((await checkpoints.get({ id: key }))?.state, 'running');
    assert.equal((await checkpoints.get({ id: `${key}:messages` }))?.last_id, 'msg_0000299');
    const progress = seen.find((p) => p.collection === 'messages' && !p.finished)!;
    assert.equal(progress.total, 1000);
    assert.ok(progress.docs_per_s >= 0 && (progress.eta_s === null || progress.eta_s >= 0));

    const resumed = await transfer({ from: source, to: target, batchSize: 50 });
    assert.equal(resumed.resumed, true);
    const messages = resumed.collections.find((c) => c.collection === 'messages')!;
    assert.equal(messages.resumed_after, 'msg_0000299');
    assert.equal(messages.copied, 700);
    assert.equal(messages.skipped, 300);
    assert.ok(resumed.collections.filter((c) => domainBefore(c.collection)).every((c) => c.copied === 0), 'finished collections are not copied again');
    assert.equal((await verify({ a: source, b: target })).equal, true);
    for (const [name, n] of Object.entries(counts)) assert.equal(await (await target.collection({ name, schemaVersion: 1, indexes: [] })).count(), n, name);
    assert.equal((await checkpoints.get({ id: key }))?.state, 'done');
  });

  it('copies only the requested collections, and refuses what it must not copy', async () => {
    const source = keep(await createSqliteStore({ path: join(dir, 'source.db') }));
    await seed(source);
    const target = keep(createMemoryStore());
    const summary = await transfer({ from: source, to: target, collections: ['bots', 'guidelines'] });
    assert.deepEqual(summary.collections.map((c) => c.collection), ['bots', 'guidelines']);
    assert.equal(await code(transfer({ from: source, to: target, collections: ['_migrations'] })), 'INVALID');
    assert.equal(await code(transfer({ from: source, to: target, collections: ['nope'] })), 'INVALID');
    assert.equal(await code(transfer({ from: source, to: source })), 'INVALID');
    assert.equal(await code(transfer({ from: source, to: target, batchSize: 0 })), 'INVALID');
    const same = keep(await createSqliteStore({ path: join(dir, 'source.db') }));
    assert.equal(await code(transfer({ from: source, to: same })), 'INVALID', 'the same file opened twice is the same store');
  });

  it('verify names missing, extra and changed documents per collection, with checksums and counts', async () => {
    const a = keep(await createSqliteStore({ path: join(dir, 'a.db') }));
    await seed(a);
    const b = keep(await createJsonlStore({ dir: join(dir, 'b') }));
    await transfer({ from: a, to: b });
    const bots = await b.collection(collections.bots);
    await bots.update({ id: 'bot_003', patch: { name: 'changed' } });
    const messages = await b.collection(collections.messages);
    await messages.delete({ id: 'msg_0000042' });
    await messages.insert({ doc: { id: 'msg_9999999', conversation_id: 'conv_x', offset: 1, role: 'user', content: 'extra' } });
    const report = await verify({ a, b, verbose: true });
    assert.equal(report.equal, false);
    const byName = Object.fromEntries(report.collections.map((c) => [c.collection, c]));
    assert.deepEqual(byName.bots!.different, ['bot_003']);
    assert.notEqual(byName.bots!.checksum_a, byName.bots!.checksum_b);
    assert.equal(byName.bots!.count_a, byName.bots!.count_b);
    assert.deepEqual(byName.messages!.missing_in_b, ['msg_0000042']);
    assert.deepEqual(byName.messages!.missing_in_a, ['msg_9999999']);
    assert.equal(byName.messages!.count_a, byName.messages!.count_b, 'same count, different documents');
    assert.ok(byName.guidelines!.equal);
    assert.equal(byName.guidelines!.checksum_a, byName.guidelines!.checksum_b);
    const capped = await verify({ a: createMemoryStore(), b: a, collections: ['messages'], limit: 3 });
    assert.equal(capped.collections[0]!.missing_in_a.length, 3);
    assert.equal(capped.collections[0]!.missing_in_a_count, 100);
    assert.equal(capped.collections[0]!.count_a, 0);
  });

  it('checksums ignore field order and engine, and ids order by code point on every engine', async () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}');
    const ids = ['a', 'a\uffff', 'a😀', 'b', 'Z', '\ue000', '😀'];
    const sqlite = keep(await createSqliteStore({ path: join(dir, 'ids.db') }));
    const memory = keep(createMemoryStore());
    const jsonl = keep(await createJsonlStore({ dir: join(dir, 'ids') }));
    const order: string[][] = [];
    for (const store of [sqlite, memory, jsonl]) {
      const items = await store.collection({ name: 'items', schemaVersion: 1, indexes: [] });
      for (const id of ids) await items.upsert({ doc: { id, version: 1, created_at: 'x', updated_at: 'x' }, verbatim: true });
      const seen: string[] = [];
      for await (const batch of items.scan({ batchSize: 2 })) seen.push(...batch.map((d) => d.id));
      order.push(seen);
    }
    assert.deepEqual(order[1], order[0], 'memory scans in the order SQLite does');
    assert.deepEqual(order[2], order[0], 'jsonl scans in the order SQLite does');
    const report = await verify({ a: sqlite, b: memory, collections: ['items'] });
    assert.equal(report.equal, true);
  });

  it('picks domain collections, _counters and other non-system collections by default', () => {
    assert.deepEqual(defaultCollections(['_migrations', '_changes', '_mirrors', '_transfers', 'zebra', 'bots', '_counters', 'messages']), ['bots', 'messages', '_counters', 'zebra']);
  });
});

/** Collections the default order copies before messages. */
function domainBefore(name: string): boolean {
  return ['bots', 'guidelines', 'journeys', 'tools', 'tool_mappings', 'conversations'].includes(name);
}
