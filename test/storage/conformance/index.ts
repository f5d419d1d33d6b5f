/**
 * The storage conformance suite: every engine's test file runs it in a few lines.
 * It proves each method of the contract in `src/storage/contract.ts`, including the
 * edge cases that lose data in practice (cursor ties, deleted cursor documents,
 * concurrent counters, operator-looking input).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isStorageError, type Collection, type CollectionSpec, type Doc, type StoredMeta, type Store, type StorageErrorCode, type WriteEvent } from '../../../src/storage/contract.ts';
import { and, eq, gt, gte, isIn, lt, lte } from '../../../src/storage/where.ts';

/** What an engine's test file hands the suite: a fresh, empty store and how to dispose of it. */
export interface ConformanceTarget {
  store: Store;
  cleanup(): Promise<void>;
}

/** Options for engines with known, declared limits (none today). */
export interface ConformanceOptions {
  /** Skip the whole suite with this reason (e.g. no server available outside CI). */
  skip?: string;
}

type Item = Doc & { name?: string; n?: number; group?: string; tag?: string | null; payload?: unknown };

let counter = 0;
function spec(indexes: CollectionSpec['indexes'] = []): CollectionSpec {
  counter += 1;
  return { name: `conf_${process.pid}_${counter}`, schemaVersion: 1, indexes };
}

async function rejects(promise: Promise<unknown>, code: StorageErrorCode, message?: string): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isStorageError(error), `expected a StorageError, got ${String(error)}`);
    assert.equal(error.code, code, `${message ?? ''} expected ${code}, got ${error.code}: ${error.message}`);
    return error;
  }
  assert.fail(`${message ?? 'operation'} should have thrown ${code}`);
}

async function all<T extends StoredMeta>(collection: Collection<T>, options: Parameters<Collection<T>['find']>[0] = {}): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: Awaited<ReturnType<Collection<T>['find']>> = await collection.find({ ...options, after: cursor });
    items.push(...page.items);
    cursor = page.next;
    pages += 1;
    assert.ok(pages < 10_000, 'paging did not terminate');
  } while (cursor);
  return { items, pages };
}

/** Registers the conformance tests for one engine. `open` is called once; the suite uses fresh collections per test. */
export function runConformanceSuite(engine: string, open: () => Promise<ConformanceTarget>, options: ConformanceOptions = {}): void {
  describe(`storage conformance: ${engine}`, { skip: options.skip }, () => {
    let target: ConformanceTarget;
    let store: Store;
    before(async () => {
      target = await open();
      store = target.store;
    });
    after(async () => {
      await target?.cleanup();
    });

    describe('insert and get', () => {
      it('stamps version 1 and timestamps, and reads the document back', async () => {
        const items = await store.collection<Item>(spec());
        const stored = await items.insert({ doc: { id: 'a', name: 'Ada', n: 1 } });
        assert.equal(stored.version, 1);
        assert.match(stored.created_at, /^\d{4}-\d\d-\d\dT/);
        assert.equal(stored.updated_at, stored.created_at);
        assert.deepEqual(await items.get({ id: 'a' }), stored);
        assert.equal(await items.get({ id: 'missing' }), null);
      });

      it('keeps given timestamps', async () => {
        const items = await store.collection<Item>(spec());
        const stored = await items.insert({ doc: { id: 'a', created_at: '2020-01-02T03:04:05.000Z' } });
        assert.equal(stored.created_at, '2020-01-02T03:04:05.000Z');
      });

      it('rejects a second document with the same id as DUPLICATE', async () => {
        const items = await store.collection<Item>(spec());
        await items.insert({ doc: { id: 'a', name: 'first' } });
        await rejects(items.insert({ doc: { id: 'a', name: 'second' } }), 'DUPLICATE');
        assert.equal((await items.get({ id: 'a' }))?.name, 'first');
      });

      it('enforces unique and compound unique indexes as DUPLICATE', async () => {
        const items = await store.collection<Item>(spec([
          { fields: [['name', 1]], unique: true },
          { fields: [['group', 1], ['n', 1]], unique: true },
        ]));
        await items.insert({ doc: { id: 'a', name: 'x', group: 'g', n: 1 } });
        await rejects(items.insert({ doc: { id: 'b', name: 'x', group: 'g', n: 2 } }), 'DUPLICATE', 'unique name');
        await rejects(items.insert({ doc: { id: 'c', name: 'y', group: 'g', n: 1 } }), 'DUPLICATE', 'compound unique');
        await items.insert({ doc: { id: 'd', name: 'z', group: 'h', n: 1 } });
        assert.equal(await items.count(), 2);
      });

      it('rejects a missing or empty id as INVALID', async () => {
        const items = await store.collection<Item>(spec());
        await rejects(items.insert({ doc: { id: '' } }), 'INVALID');
        await rejects(items.insert({ doc: {} as Item }), 'INVALID');
        await rejects(items.get({ id: 42 as unknown as string }), 'INVALID');
      });

      it('insertMany writes in order, and on a collision leaves no partial batch where transactions exist', async () => {
        const items = await store.collection<Item>(spec());
        const stored = await items.insertMany({ docs: [{ id: 'a', n: 1 }, { id: 'b', n: 2 }] });
        assert.deepEqual(stored.map((d) => [d.id, d.version]), [['a', 1], ['b', 1]]);
        await rejects(items.insertMany({ docs: [{ id: 'c', n: 3 }, { id: 'a', n: 4 }] }), 'DUPLICATE');
        if (store.capabilities.transactions) assert.equal(await items.get({ id: 'c' }), null);
        assert.equal((await items.get({ id: 'a' }))?.n, 1);
      });

      it('insertMany with verbatim keeps the given versions and timestamps (bulk transfer)', async () => {
        const items = await store.collection<Item>(spec());
        const docs = [
          { id: 'v1', n: 1, version: 7, created_at: '2024-01-02T03:04:05.000Z', updated_at: '2024-02-03T04:05:06.000Z' },
          { id: 'v2', n: 2, version: 1, created_at: '2024-01-02T03:04:05.000Z', updated_at: '2024-01-02T03:04:05.000Z' },
        ];
        await items.insertMany({ docs, verbatim: true });
        assert.deepEqual(await items.get({ id: 'v1' }), docs[0]);
        assert.deepEqual(await items.get({ id: 'v2' }), docs[1]);
        await rejects(items.insertMany({ docs: [docs[0]!], verbatim: true }), 'DUPLICATE');
      });
    });

    describe('upsert', () => {
      it('inserts, then replaces the whole document with version + 1 and the original created_at', async () => {
        const items = await store.collection<Item>(spec());
        const first = await items.upsert({ doc: { id: 'a', name: 'one', n: 1 } });
        assert.equal(first.version, 1);
        const second = await items.upsert({ doc: { id: 'a', name: 'two' } });
        assert.equal(second.version, 2);
        assert.equal(second.created_at, first.created_at);
        assert.ok(second.updated_at >= first.updated_at);
        const read = await items.get({ id: 'a' });
        assert.equal(read?.name, 'two');
        assert.equal(read?.n, undefined, 'upsert replaces the whole document');
      });

      it('stores version and timestamps verbatim when asked (replication)', async () => {
        const items = await store.collection<Item>(spec());
        const doc = { id: 'a', name: 'copy', version: 7, created_at: '2021-01-01T00:00:00.000Z', updated_at: '2021-02-01T00:00:00.000Z' };
        await items.upsert({ doc, verbatim: true });
        assert.deepEqual(await items.get({ id: 'a' }), doc);
        await items.upsert({ doc, verbatim: true });
        assert.deepEqual(await items.get({ id: 'a' }), doc, 'verbatim upsert is idempotent');
      });

      it('rejects a unique collision with another document as DUPLICATE', async () => {
        const items = await store.collection<Item>(spec([{ fields: [['name', 1]], unique: true }]));
        await items.upsert({ doc: { id: 'a', name: 'x' } });
        await items.upsert({ doc: { id: 'b', name: 'y' } });
        await rejects(items.upsert({ doc: { id: 'b', name: 'x' } }), 'DUPLICATE');
        assert.equal((await items.get({ id: 'b' }))?.name, 'y');
      });
    });

    describe('update', () => {
      it('patches top-level fields and bumps version and updated_at', async () => {
        const items = await store.collection<Item>(spec());
        const v1 = await items.insert({ doc: { id: 'a', name: 'one', n: 1 } });
        const v2 = await items.update({ id: 'a', patch: { name: 'two', n: undefined } });
        assert.equal(v2.version, 2);
        assert.equal(v2.name, 'two');
        assert.equal(v2.n, 1, 'undefined patch values are ignored');
        assert.equal(v2.created_at, v1.created_at);
        assert.ok(v2.updated_at > v1.updated_at, 'updated_at moves forward');
        assert.deepEqual(await items.get({ id: 'a' }), v2);
      });

      it('with expectVersion writes only at that version and otherwise throws CONFLICT', async () => {
        const items = await store.collection<Item>(spec());
        await items.insert({ doc: { id: 'a', n: 1 } });
        const v2 = await items.update({ id: 'a', patch: { n: 2 }, expectVersion: 1 });
        assert.equal(v2.version, 2);
        await rejects(items.update({ id: 'a', patch: { n: 3 }, expectVersion: 1 }), 'CONFLICT');
        assert.equal((await items.get({ id: 'a' }))?.n, 2, 'a stale write changes nothing');
      });

      it('two writers racing on one version: exactly one wins', async () => {
        const items = await store.collection<Item>(spec());
        await items.insert({ doc: { id: 'a', n: 0 } });
        const results = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => items.update({ id: 'a', patch: { n }, expectVersion: 1 })));
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of results) if (r.status === 'rejected') assert.ok(isStorageError(r.reason, 'CONFLICT'));
        assert.equal((await items.get({ id: 'a' }))?.version, 2);
      });

      it('throws NOT_FOUND for a missing id, INVALID for meta fields, DUPLICATE for a unique collision', async () => {
        const items = await store.collection<Item>(spec([{ fields: [['name', 1]], unique: true }]));
        await rejects(items.update({ id: 'nope', patch: { n: 1 } }), 'NOT_FOUND');
        await items.insert({ doc: { id: 'a', name: 'x' } });
        await items.insert({ doc: { id: 'b', name: 'y' } });
        await rejects(items.update({ id: 'a', patch: { version: 99 } as never }), 'INVALID');
        await rejects(items.update({ id: 'a', patch: { id: 'z' } as never }), 'INVALID');
        await rejects(items.update({ id: 'b', patch: { name: 'x' } }), 'DUPLICATE');
        assert.equal((await items.get({ id: 'b' }))?.name, 'y');
      });
    });

    describe('delete and deleteMany', () => {
      it('deletes once, then reports there was nothing to delete', async () => {
        const items = await store.collection<Item>(spec());
        await items.insert({ doc: { id: 'a' } });
        assert.equal(await items.delete({ id: 'a' }), true);
        assert.equal(await items.delete({ id: 'a' }), false);
        assert.equal(await items.get({ id: 'a' }), null);
      });

      it('with expectVersion refuses to delete a newer document', async () => {
        const items = await store.collection<Item>(spec());
        await items.insert({ doc: { id: 'a' } });
        await items.update({ id: 'a', patch: { n: 1 } });
        await rejects(items.delete({ id: 'a', expectVersion: 1 }), 'CONFLICT');
        assert.equal(await items.delete({ id: 'a', expectVersion: 2 }), true);
      });

      it('deleteMany removes exactly the matches and counts them', async () => {
        const items = await store.collection<Item>(spec([{ fields: [['group', 1]] }]));
        await items.insertMany({ docs: [{ id: 'a', group: 'x' }, { id: 'b', group: 'x' }, { id: 'c', group: 'y' }] });
        assert.equal(await items.deleteMany({ where: eq('group', 'x') }), 2);
        assert.deepEqual((await items.find()).items.map((d) => d.id), ['c']);
        await rejects(items.deleteMany({} as never), 'INVALID');
      });
    });

    describe('find and count', () => {
      async function fixture(): Promise<Collection<Item>> {
        const items = await store.collection<Item>(spec([{ fields: [['group', 1], ['n', 1]] }]));
        const docs = Array.from({ length: 12 }, (_, i) => ({
          id: `d${String(i).padStart(2, '0')}`,
          n: i,
          group: i % 3 === 0 ? 'a' : i % 3 === 1 ? 'b' : 'c',
          tag: i % 4 === 0 ? null : `t${i % 4}`,
          created_at: `2024-01-01T00:00:${String(i).padStart(2, '0')}.000Z`,
        }));
        await items.insertMany({ docs });
        return items;
      }

      it('filters with eq, in, ranges and and', async () => {
        const items = await fixture();
        const ids = async (where: Parameters<typeof items.count>[0] extends infer A ? (A extends { where?: infer W } ? W : never) : never) =>
          (await items.find({ where, limit: 100 })).items.map((d) => d.n);
        assert.deepEqual(await ids(eq('group', 'a')), [0, 3, 6, 9]);
        assert.deepEqual(await ids(isIn('group', ['a', 'b'])), [0, 1, 3, 4, 6, 7, 9, 10]);
        assert.deepEqual(await ids(isIn('group', [])), []);
        assert.deepEqual(await ids(gt('n', 9)), [10, 11]);
        assert.deepEqual(await ids(gte('n', 9)), [9, 10, 11]);
        assert.deepEqual(await ids(lt('n', 2)), [0, 1]);
        assert.deepEqual(await ids(lte('n', 2)), [0, 1, 2]);
        assert.deepEqual(await ids(and(eq('group', 'b'), gte('n', 4), lt('n', 10))), [4, 7]);
        assert.deepEqual(await ids(eq('tag', null)), [0, 4, 8]);
        assert.deepEqual(await ids(and(gte('created_at', '2024-01-01T00:00:10.000Z'))), [10, 11]);
        assert.equal(await items.count({ where: eq('group', 'c') }), 4);
        assert.equal(await items.count(), 12);
        assert.equal(await items.count({ where: eq('group', 'none') }), 0);
      });

      it('sorts ascending and descending, by several keys', async () => {
        const items = await fixture();
        assert.deepEqual((await items.find({ sort: [{ field: 'n', direction: 'desc' }], limit: 3 })).items.map((d) => d.n), [11, 10, 9]);
        const mixed = await items.find({ sort: [{ field: 'group', direction: 'asc' }, { field: 'n', direction: 'desc' }], limit: 5 });
        assert.deepEqual(mixed.items.map((d) => d.n), [9, 6, 3, 0, 10]);
      });

      it('pages with a cursor through every document exactly once, in both directions and with mixed keys', async () => {
        const items = await fixture();
        for (const sort of [
          [{ field: 'created_at', direction: 'asc' as const }],
          [{ field: 'n', direction: 'desc' as const }],
          [{ field: 'group', direction: 'asc' as const }, { field: 'n', direction: 'desc' as const }],
        ]) {
          const { items: seen, pages } = await all(items, { sort, limit: 5 });
          assert.equal(pages, 3);
          assert.equal(seen.length, 12);
          assert.equal(new Set(seen.map((d) => d.id)).size, 12);
          const expected = (await items.find({ sort, limit: 100 })).items.map((d) => d.id);
          assert.deepEqual(seen.map((d) => d.id), expected);
        }
      });

      it('pages correctly when many documents share created_at (ties broken by id)', async () => {
        const items = await store.collection<Item>(spec([{ fields: [['created_at', 1]] }]));
        const at = '2024-05-05T05:05:05.000Z';
        await items.insertMany({ docs: Array.from({ length: 23 }, (_, i) => ({ id: `tie${String(100 - i)}`, created_at: at })) });
        const { items: seen } = await all(items, { limit: 4 });
        assert.equal(seen.length, 23);
        assert.deepEqual(seen.map((d) => d.id), [...seen.map((d) => d.id)].sort());
        const desc = await all(items, { sort: [{ field: 'created_at', direction: 'desc' }], limit: 4 });
        assert.deepEqual(desc.items.map((d) => d.id), [...seen.map((d) => d.id)].reverse());
      });

      it('returns an empty last page with no cursor, and empty results for an empty collection', async () => {
        const items = await store.collection<Item>(spec());
        assert.deepEqual(await items.find(), { items: [], next: null });
        await items.insertMany({ docs: [{ id: 'a' }, { id: 'b' }] });
        const page = await items.find({ limit: 2 });
        assert.equal(page.items.length, 2);
        assert.equal(page.next, null, 'an exactly full last page has no next cursor');
      });

      it('keeps paging when the cursor document is deleted meanwhile', async () => {
        const items = await fixture();
        const first = await items.find({ sort: [{ field: 'n', direction: 'asc' }], limit: 4 });
        assert.equal(first.items.at(-1)?.n, 3);
        await items.delete({ id: first.items.at(-1)!.id });
        const second = await items.find({ sort: [{ field: 'n', direction: 'asc' }], limit: 4, after: first.next });
        assert.deepEqual(second.items.map((d) => d.n), [4, 5, 6, 7]);
      });

      it('rejects malformed cursors, limits, sorts and wheres as INVALID', async () => {
        const items = await fixture();
        await rejects(items.find({ after: 'not-a-cursor' }), 'INVALID', 'cursor');
        await rejects(items.find({ after: Buffer.from('[{"$gt":""},"x"]').toString('base64url') }), 'INVALID', 'operator cursor');
        await rejects(items.find({ limit: 0 }), 'INVALID', 'limit 0');
        await rejects(items.find({ limit: 100_000 }), 'INVALID', 'huge limit');
        await rejects(items.find({ sort: [{ field: 'n', direction: 'sideways' as never }] }), 'INVALID', 'direction');
        await rejects(items.find({ where: { op: 'regex', field: 'n' } as never }), 'INVALID', 'unknown op');
        await rejects(items.count({ where: { op: 'where', field: 'n' } as never }), 'INVALID', 'unknown op in count');
      });
    });

    describe('increment', () => {
      it('creates the counter document, then adds', async () => {
        const counters = await store.collection<Doc & { value?: number }>(spec());
        assert.equal(await counters.increment({ id: 'c', field: 'value' }), 1);
        assert.equal(await counters.increment({ id: 'c', field: 'value', by: 5 }), 6);
        const doc = await counters.get({ id: 'c' });
        assert.equal(doc?.value, 6);
        assert.equal(doc?.version, 2);
      });

      it('100 concurrent increments return 100 distinct values', async () => {
        const counters = await store.collection(spec());
        const values = await Promise.all(Array.from({ length: 100 }, () => counters.increment({ id: 'hot', field: 'value' })));
        assert.deepEqual([...values].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
      });

      it('refuses to increment a field that is not a number', async () => {
        const counters = await store.collection<Item>(spec());
        await counters.insert({ doc: { id: 'c', name: 'text' } });
        await rejects(counters.increment({ id: 'c', field: 'name' }), 'INVALID');
        await rejects(counters.increment({ id: 'c', field: '$inc' }), 'INVALID');
        await rejects(counters.increment({ id: 'c', field: 'n', by: Number.NaN }), 'INVALID');
      });
    });

    describe('insertNumbered', () => {
      type Msg = Doc & { conversation_id: string; offset?: number; text: string };
      it('numbers the documents from the counter, in order, and bumps the counter', async () => {
        const counters = await store.collection<Doc & { last?: number }>(spec());
        const messages = await store.collection<Msg>(spec([{ fields: [['conversation_id', 1], ['offset', 1]], unique: true }]));
        const turn = (i: number) => [
          { id: `m${i}a`, conversation_id: 'c1', text: 'hi' },
          { id: `m${i}b`, conversation_id: 'c1', text: 'hello' },
        ];
        const first = await messages.insertNumbered({ docs: turn(1), field: 'offset', counter: { collection: counters.spec.name, id: 'c1', field: 'last' } });
        assert.deepEqual(first.map((m) => [m.id, m.offset, m.version]), [['m1a', 1, 1], ['m1b', 2, 1]]);
        const second = await messages.insertNumbered({ docs: turn(2), field: 'offset', counter: { collection: counters.spec.name, id: 'c1', field: 'last' } });
        assert.deepEqual(second.map((m) => m.offset), [3, 4]);
        assert.equal((await counters.get({ id: 'c1' }))?.last, 4);
        assert.deepEqual((await messages.get({ id: 'm2b' }))?.offset, 4);
      });

      it('concurrent calls never hand out the same number', async () => {
        const counters = await store.collection(spec());
        const messages = await store.collection<Msg>(spec([{ fields: [['conversation_id', 1], ['offset', 1]], unique: true }]));
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            messages.insertNumbered({
              docs: [{ id: `x${i}a`, conversation_id: 'c', text: 'a' }, { id: `x${i}b`, conversation_id: 'c', text: 'b' }],
              field: 'offset',
              counter: { collection: counters.spec.name, id: 'c', field: 'last' },
            }),
          ),
        );
        const { items } = await all(messages, { sort: [{ field: 'offset', direction: 'asc' }] });
        assert.deepEqual(items.map((m) => m.offset), Array.from({ length: 40 }, (_, i) => i + 1));
      });

      it('refuses a meta field, an unopened counter collection and invalid documents without using numbers', async () => {
        const counters = await store.collection<Doc & { last?: number }>(spec());
        const messages = await store.collection<Msg>(spec());
        const counter = { collection: counters.spec.name, id: 'c', field: 'last' };
        await rejects(messages.insertNumbered({ docs: [{ id: 'a', conversation_id: 'c', text: 'a' }], field: 'version', counter }), 'INVALID');
        await rejects(messages.insertNumbered({ docs: [{ id: 'a', conversation_id: 'c', text: 'a' }], field: 'offset', counter: { ...counter, collection: 'never_opened' } }), 'INVALID');
        await rejects(messages.insertNumbered({ docs: [{ id: 'a', conversation_id: 'c', text: 'a', $bad: 1 } as never], field: 'offset', counter }), 'INVALID');
        assert.equal(await counters.get({ id: 'c' }), null);
      });
    });

    describe('scan', () => {
      it('yields every document in batches ordered by id, resuming after an id', async () => {
        const items = await store.collection<Item>(spec());
        const ids = Array.from({ length: 23 }, (_, i) => `s${String(i).padStart(3, '0')}`);
        await items.insertMany({ docs: [...ids].reverse().map((id) => ({ id })) });
        const batches: string[][] = [];
        for await (const batch of items.scan({ batchSize: 10 })) batches.push(batch.map((d) => d.id));
        assert.deepEqual(batches.map((b) => b.length), [10, 10, 3]);
        assert.deepEqual(batches.flat(), ids);
        const rest: string[] = [];
        for await (const batch of items.scan({ after: 's019', batchSize: 10 })) rest.push(...batch.map((d) => d.id));
        assert.deepEqual(rest, ['s020', 's021', 's022']);
      });
    });

    describe('content', () => {
      it('stores large documents intact', async () => {
        const items = await store.collection<Item>(spec());
        const payload = 'x'.repeat(2 * 1024 * 1024);
        const list = Array.from({ length: 2000 }, (_, i) => ({ i, text: `item ${i}` }));
        await items.insert({ doc: { id: 'big', payload: { payload, list } } });
        const read = await items.get({ id: 'big' });
        assert.equal((read?.payload as { payload: string }).payload.length, payload.length);
        assert.deepEqual((read?.payload as { list: unknown[] }).list, list);
      });

      it('stores unicode intact and finds it by equality', async () => {
        const items = await store.collection<Item>(spec([{ fields: [['name', 1]] }]));
        const names = ['Zoë', '日本語のボット', 'مرحبا', '👩‍💻 emoji', 'e\u0301 combining', 'tab\tand\nnewline', 'quote " and \\ backslash'];
        for (const [i, name] of names.entries()) await items.insert({ doc: { id: `u${i}`, name } });
        for (const [i, name] of names.entries()) {
          assert.equal((await items.get({ id: `u${i}` }))?.name, name);
          assert.deepEqual((await items.find({ where: eq('name', name) })).items.map((d) => d.id), [`u${i}`]);
        }
        await items.insert({ doc: { id: 'ключ-🔑', name: 'unicode id' } });
        assert.equal((await items.get({ id: 'ключ-🔑' }))?.name, 'unicode id');
      });

      it('rejects keys that look like operators, paths or prototype keys as INVALID', async () => {
        const items = await store.collection<Item>(spec());
        await rejects(items.insert({ doc: { id: 'k1', $gt: 1 } as never }), 'INVALID', '$gt key');
        await rejects(items.insert({ doc: { id: 'k2', 'a.b': 1 } as never }), 'INVALID', 'dotted key');
        await rejects(items.insert({ doc: JSON.parse('{"id":"k3","__proto__":{"polluted":true}}') }), 'INVALID', '__proto__ key');
        await rejects(items.insert({ doc: { id: 'k4', payload: { nested: { $ne: null } } } }), 'INVALID', 'nested operator key');
        await rejects(items.insert({ doc: { id: 'k5', payload: [{ $where: 'sleep(1)' }] } }), 'INVALID', 'operator key in array');
        await rejects(items.insert({ doc: { id: 'k7', _id: 'other' } as never }), 'INVALID', 'top-level _id');
        await items.insert({ doc: { id: 'k6', n: 1 } });
        await rejects(items.update({ id: 'k6', patch: { $set: { n: 2 } } as never }), 'INVALID', 'operator patch');
        await rejects(items.update({ id: 'k6', patch: { payload: { $inc: 1 } } }), 'INVALID', 'operator inside patch value');
        assert.equal(await items.count(), 1, 'nothing invalid was stored');
        assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
      });

      it('treats operator-looking values as plain data, never as queries', async () => {
        const items = await store.collection<Item>(spec([{ fields: [['name', 1]] }]));
        await items.insert({ doc: { id: 'op1', name: '$ne' } });
        await items.insert({ doc: { id: 'op2', name: '{"$ne": null}' } });
        await items.insert({ doc: { id: 'op3', name: 'plain', payload: { constructor: 'c', toString: 'x', nested: ['$gt', '$where'] } } });
        assert.deepEqual((await items.find({ where: eq('name', '$ne') })).items.map((d) => d.id), ['op1']);
        assert.deepEqual((await items.find({ where: eq('name', '{"$ne": null}') })).items.map((d) => d.id), ['op2']);
        assert.deepEqual((await items.find({ where: isIn('name', ['$gt', '$ne']) })).items.map((d) => d.id), ['op1']);
        assert.deepEqual((await items.get({ id: 'op3' }))?.payload, { constructor: 'c', toString: 'x', nested: ['$gt', '$where'] });
        await rejects(items.find({ where: eq('name', { $ne: null } as never) }), 'INVALID', 'object as a where value');
        await rejects(items.find({ where: isIn('name', [{ $gt: '' }] as never) }), 'INVALID', 'object in an in-list');
        await rejects(items.find({ where: eq('$where', 'x') }), 'INVALID', '$ field');
        await rejects(items.find({ where: eq('a.b', 'x') }), 'INVALID', 'dotted field');
        await rejects(items.find({ where: eq('__proto__', 'x') }), 'INVALID', 'prototype field');
        await rejects(items.find({ sort: [{ field: '$natural', direction: 'asc' }] }), 'INVALID', '$ sort field');
        assert.equal(await items.get({ id: '{"$ne": null}' }), null, 'an operator-looking id is just an id');
        await items.insert({ doc: { id: '{"$gt": ""}', name: 'odd id' } });
        assert.equal((await items.get({ id: '{"$gt": ""}' }))?.name, 'odd id');
      });
    });

    describe('aggregate', () => {
      type Usage = Doc & { day?: string | null; who?: string; model?: string; tokens?: unknown; cost?: unknown };
      async function usage(indexed: boolean): Promise<Collection<Usage>> {
        const items = await store.collection<Usage>(spec(indexed ? [{ fields: [['day', 1], ['who', 1]] }] : []));
        const docs: Usage[] = [];
        for (let i = 0; i < 40; i++) {
          docs.push({
            id: `u${String(i).padStart(3, '0')}`,
            day: `2026-01-${String(1 + (i % 5)).padStart(2, '0')}`,
            who: i % 3 === 0 ? 'ann' : i % 3 === 1 ? 'bob' : 'cy',
            model: i % 2 === 0 ? 'gpt-4o' : 'gpt-4o-mini',
            tokens: i * 10,
            cost: i * 1000 + 7,
          } as Usage);
        }
        await items.insertMany({ docs: docs as never });
        return items;
      }
      /** What the engine must answer, computed here from the same documents. */
      function expected(docs: Usage[], groupBy: Array<'day' | 'who' | 'model'>, sum: Array<'tokens' | 'cost'>) {
        const out = new Map<string, { group: Record<string, string | number | null>; count: number; sums: Record<string, number> }>();
        for (const doc of docs) {
          const group = Object.fromEntries(groupBy.map((f) => [f, (doc[f] as string | undefined) ?? null]));
          const key = JSON.stringify(groupBy.map((f) => group[f]));
          const row = out.get(key) ?? { group, count: 0, sums: Object.fromEntries(sum.map((f) => [f, 0])) };
          row.count++;
          for (const f of sum) row.sums[f]! += typeof doc[f] === 'number' ? (doc[f] as number) : 0;
          out.set(key, row);
        }
        return [...out.values()].sort((a, b) => {
          for (const f of groupBy) if (a.group[f] !== b.group[f]) return String(a.group[f]) < String(b.group[f]) ? -1 : 1;
          return 0;
        });
      }
      async function docsOf(items: Collection<Usage>): Promise<Usage[]> {
        return (await all(items, { limit: 1000 })).items;
      }

      for (const indexed of [true, false]) {
        it(`groups by one and by two fields with counts and integer sums (${indexed ? 'indexed' : 'unindexed'} fields)`, async () => {
          const items = await usage(indexed);
          const docs = await docsOf(items);
          const byDay = await items.aggregate({ groupBy: ['day'], sum: ['tokens', 'cost'] });
          assert.deepEqual(byDay, expected(docs, ['day'], ['tokens', 'cost']));
          assert.equal(byDay.length, 5);
          assert.equal(byDay.reduce((n, r) => n + r.count, 0), 40);
          const byDayWho = await items.aggregate({ groupBy: ['day', 'who'], sum: ['cost'] });
          assert.deepEqual(byDayWho, expected(docs, ['day', 'who'], ['cost']));
          assert.equal(byDayWho.length, 15);
        });
      }

      it('filters with where (ranges on the group field, eq on another) before grouping', async () => {
        const items = await usage(true);
        const docs = (await docsOf(items)).filter((d) => d.day! >= '2026-01-02' && d.day! <= '2026-01-04' && d.who === 'bob');
        const rows = await items.aggregate({ where: and(gte('day', '2026-01-02'), lte('day', '2026-01-04'), eq('who', 'bob')), groupBy: ['model'], sum: ['tokens'] });
        assert.deepEqual(rows, expected(docs, ['model'], ['tokens']));
        assert.ok(rows.length === 2 && rows.every((r) => r.count > 0));
      });

      it('with no groupBy returns one total row, or no row when nothing matches', async () => {
        const items = await usage(true);
        const [total, ...rest] = await items.aggregate({ groupBy: [], sum: ['tokens', 'cost'] });
        assert.equal(rest.length, 0);
        assert.deepEqual(total, { group: {}, count: 40, sums: { tokens: 7800, cost: 780_280 } });
        assert.deepEqual(await items.aggregate({ where: eq('who', 'nobody'), groupBy: [], sum: ['tokens'] }), []);
        assert.deepEqual(await items.aggregate({ where: eq('who', 'nobody'), groupBy: ['day'], sum: ['tokens'] }), []);
      });

      it('adds numbers only, and puts a missing group field and null in one null group, first', async () => {
        const items = await store.collection<Usage>(spec([{ fields: [['day', 1]] }]));
        await items.insertMany({
          docs: [
            { id: 'a', day: '2026-02-01', tokens: 5, cost: 1.5 },
            { id: 'b', day: '2026-02-01', tokens: '7', cost: true },
            { id: 'c', day: null, tokens: { n: 1 }, cost: null },
            { id: 'd', tokens: 3 },
            { id: 'e', day: '2026-01-31', tokens: 2, cost: -0.5 },
          ] as never,
        });
        const rows = await items.aggregate({ groupBy: ['day', 'model'], sum: ['tokens', 'cost'] });
        assert.deepEqual(rows, [
          { group: { day: null, model: null }, count: 2, sums: { tokens: 3, cost: 0 } },
          { group: { day: '2026-01-31', model: null }, count: 1, sums: { tokens: 2, cost: -0.5 } },
          { group: { day: '2026-02-01', model: null }, count: 2, sums: { tokens: 5, cost: 1.5 } },
        ]);
      });

      it('orders groups null first, then numbers, then strings by code point', async () => {
        const items = await store.collection<Usage>(spec());
        await items.insertMany({ docs: [{ id: '1', day: 'b' }, { id: '2', day: 'a' }, { id: '3', day: 10 }, { id: '4', day: 2 }, { id: '5' }, { id: '6', day: 'B' }, { id: '7', day: 'é' }] as never });
        const rows = await items.aggregate({ groupBy: ['day'], sum: [] });
        assert.deepEqual(rows.map((r) => r.group.day), [null, 2, 10, 'B', 'a', 'b', 'é']);
        assert.deepEqual(rows.map((r) => r.sums), rows.map(() => ({})));
      });

      it('treats operator-looking values as data and refuses bad options as INVALID', async () => {
        const items = await usage(true);
        assert.deepEqual(await items.aggregate({ where: eq('who', '{"$ne":null}'), groupBy: ['who'], sum: [] }), []);
        assert.deepEqual(await items.aggregate({ where: eq('who', '$who'), groupBy: ['who'], sum: [] }), []);
        await rejects(items.aggregate({ groupBy: ['$who'], sum: [] }), 'INVALID', 'operator group field');
        await rejects(items.aggregate({ groupBy: ['a.b'], sum: [] }), 'INVALID', 'path group field');
        await rejects(items.aggregate({ groupBy: ['day'], sum: ['$tokens'] }), 'INVALID', 'operator sum field');
        await rejects(items.aggregate({ groupBy: ['day', 'day'], sum: [] }), 'INVALID', 'repeated field');
        await rejects(items.aggregate({ groupBy: ['a', 'b', 'c', 'd', 'e'], sum: [] }), 'INVALID', 'too many group fields');
        await rejects(items.aggregate({ groupBy: 'day' as never, sum: [] }), 'INVALID', 'groupBy not a list');
        await rejects(items.aggregate({ where: { op: '$where', field: 'x' } as never, groupBy: [], sum: [] }), 'INVALID', 'bad where');
      });
    });

    describe('write hooks', () => {
      it('report every committed write with its document or a tombstone', async () => {
        const items = await store.collection<Item>(spec());
        const events: WriteEvent[] = [];
        const remove = store.onWrite((e) => {
          if (e.collection === items.spec.name) events.push(e);
        });
        try {
          await items.insert({ doc: { id: 'a', n: 1 } });
          await items.update({ id: 'a', patch: { n: 2 } });
          await items.increment({ id: 'a', field: 'n' });
          await items.upsert({ doc: { id: 'b', n: 1 } });
          await items.delete({ id: 'a' });
          await rejects(items.insert({ doc: { id: 'b' } }), 'DUPLICATE');
        } finally {
          remove();
        }
        await items.insert({ doc: { id: 'c' } });
        assert.deepEqual(events.map((e) => [e.op, e.id, e.doc?.version ?? null]), [
          ['insert', 'a', 1],
          ['update', 'a', 2],
          ['update', 'a', 3],
          ['insert', 'b', 1],
          ['delete', 'a', null],
        ]);
        assert.equal((events[2]!.doc as Item).n, 3);
      });
    });

    describe('store', () => {
      it('opens collections idempotently and lists them with their indexes', async () => {
        const s = spec([{ name: 'by_group', fields: [['group', 1], ['n', -1]] }, { fields: [['name', 1]], unique: true }]);
        const first = await store.collection<Item>(s);
        await first.insert({ doc: { id: 'a', name: 'x' } });
        const again = await store.collection<Item>(s);
        assert.equal((await again.get({ id: 'a' }))?.name, 'x');
        assert.ok((await store.listCollections()).includes(s.name));
        const indexes = await store.listIndexes({ collection: s.name });
        assert.ok(indexes.includes('by_group'), `by_group in ${indexes.join(', ')}`);
        assert.ok(indexes.includes('name_1'), `name_1 in ${indexes.join(', ')}`);
      });

      it('rejects malformed collection specs as INVALID', async () => {
        await rejects(store.collection({ name: 'Bad-Name', schemaVersion: 1, indexes: [] }), 'INVALID');
        await rejects(store.collection({ name: 'ok_name', schemaVersion: 1, indexes: [{ fields: [['$bad', 1]] }] }), 'INVALID');
      });

      it('reports health with engine and location, and declares its capabilities', async () => {
        const health = await store.health();
        assert.equal(health.ok, true);
        assert.equal(health.engine, store.engine);
        assert.equal(health.location, store.location);
        for (const flag of ['transactions', 'changeStreams', 'ttl', 'durable', 'multiProcess'] as const) {
          assert.equal(typeof store.capabilities[flag], 'boolean', flag);
        }
      });
    });
  });
}
