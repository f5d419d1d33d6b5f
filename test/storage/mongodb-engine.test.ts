/**
 * MongoDB-engine checks beyond the conformance suite: connection-string handling (no
 * server needed), and against a real MongoDB-wire server: pool options, capabilities,
 * the stored shape, operator-looking data and round trips per operation.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { isStorageError, StorageError } from '../../src/storage/contract.ts';
import { translateMongoError } from '../../src/storage/mongodb/mongodb-errors.ts';
import { compileWhere, createMongoStore, cursorCondition, mongoLocation, parseMongoUri, type MongoStore } from '../../src/storage/mongodb/mongodb-store.ts';
import { and, eq, gt, isIn } from '../../src/storage/where.ts';
import { mongoTestTarget, type MongoTestTarget } from '../support/mongodb-server.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

function withDb(uri: string, database: string): string {
  const [base = '', query] = uri.split('?');
  return `${base.replace(/\/?$/, '/')}${database}${query === undefined ? '' : `?${query}`}`;
}
function withQuery(uri: string, query: string): string {
  return uri.includes('?') ? `${uri}&${query}` : `${uri.replace(/\/?$/, '/')}?${query}`;
}
function freshDb(): string {
  return `otto_test_${randomBytes(6).toString('hex')}`;
}

describe('mongodb location and connection string (no server)', () => {
  it('shows host:port/database and never credentials or options', () => {
    const cases: Array<[string, string | undefined, string]> = [
      ['mongodb://alice:s3cr%40t@db.example.com:27018/prod?authSource=admin&tls=true', undefined, 'db.example.com:27018/prod'],
      ['mongodb://alice:s3cr%40t@db.example.com/prod', undefined, 'db.example.com:27017/prod'],
      ['mongodb://alice:pw@h1:27017,h2:27018,h3/app?replicaSet=rs0', undefined, 'h1:27017,h2:27018,h3:27017/app'],
      ['mongodb+srv://bob:hunter22@cluster0.abcd.mongodb.net/?retryWrites=true&w=majority', undefined, 'cluster0.abcd.mongodb.net/otto'],
      ['mongodb://127.0.0.1:27017', undefined, '127.0.0.1:27017/otto'],
      ['mongodb://user:pass@[::1]:27019/x', 'override', '[::1]:27019/override'],
      ['mongodb://%2Ftmp%2Fmongodb-27017.sock/db', undefined, '/tmp/mongodb-27017.sock/db'],
    ];
    for (const [uri, database, expected] of cases) {
      const location = mongoLocation(uri, database);
      assert.equal(location, expected, uri);
      for (const secret of ['alice', 's3cr', 'bob', 'hunter22', 'pass', 'authSource', 'retryWrites']) assert.ok(!location.includes(secret), `${location} leaks ${secret}`);
    }
  });

  it('reads the database and option names from the URI', () => {
    const parts = parseMongoUri('mongodb://u:p@h/otto_prod?MaxPoolSize=5&minPoolSize=1&appName=x');
    assert.equal(parts.database, 'otto_prod');
    assert.deepEqual([...parts.options].sort(), ['appname', 'maxpoolsize', 'minpoolsize']);
    assert.equal(parseMongoUri('mongodb://h').database, undefined);
  });

  it('rejects a malformed connection string as INVALID without quoting secrets', async () => {
    for (const uri of ['postgres://alice:topsecret@h/db', 'mongodb://alice:top/secret@h/db', 'mongodb://alice:topsecret@h:port/db']) {
      await assert.rejects(createMongoStore({ uri }), (error: unknown) => {
        assert.ok(isStorageError(error, 'INVALID'), String(error));
        assert.ok(!error.message.includes('topsecret') && !error.message.includes('secret@'), error.message);
        return true;
      });
    }
  });

  it('rejects an unusable database name as INVALID', async () => {
    await assert.rejects(createMongoStore({ uri: 'mongodb://127.0.0.1:1', database: 'a.b' }), (e: unknown) => isStorageError(e, 'INVALID'));
  });

  it('compiles wheres and cursors to explicit operators only', () => {
    assert.deepEqual(compileWhere(eq('name', '$ne')), { name: { $eq: '$ne', $not: { $type: 'array' } } });
    assert.deepEqual(compileWhere(eq('id', '{"$gt": ""}')), { _id: { $eq: '{"$gt": ""}' } });
    assert.deepEqual(compileWhere(and(isIn('group', ['a', null]), gt('n', 1))), {
      $and: [{ group: { $in: ['a', null], $not: { $type: 'array' } } }, { n: { $gt: 1, $not: { $type: 'array' } } }],
    });
    assert.deepEqual(compileWhere(and()), {});
    assert.throws(() => compileWhere(eq('_id', 'x')), (e: unknown) => isStorageError(e, 'INVALID'));
    assert.deepEqual(
      cursorCondition(
        [
          { field: 'group', direction: 'asc' },
          { field: 'n', direction: 'desc' },
          { field: 'id', direction: 'desc' },
        ],
        ['b', 4, 'd04'],
      ),
      { $or: [{ group: { $gt: 'b' } }, { group: { $eq: 'b' }, n: { $lt: 4 } }, { group: { $eq: 'b' }, n: { $eq: 4 }, _id: { $lt: 'd04' } }] },
    );
    assert.deepEqual(cursorCondition([{ field: 'id', direction: 'asc' }], ['x']), { _id: { $gt: 'x' } });
  });

  it('translates driver errors at the boundary', () => {
    const named = (name: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(`${name} happened`), { name, ...extra });
    const cases: Array<[unknown, string, string?]> = [
      [named('MongoServerError', { code: 11000, keyPattern: { name: 1 }, keyValue: { name: 'x' } }), 'DUPLICATE', 'name'],
      [named('MongoServerError', { code: 11000, keyPattern: { _id: 1 } }), 'DUPLICATE', 'id'],
      [named('MongoBulkWriteError', { code: 11000, writeErrors: [{ code: 11000, errmsg: 'E11000 duplicate key error collection: db.c index: by_group dup key: { group: "g" }' }] }), 'DUPLICATE', 'group,n'],
      [named('MongoServerError', { code: 1, message: "constraint failed: UNIQUE constraint failed: index 'c_3a79338f_by_group' (2067)" }), 'DUPLICATE', 'group,n'],
      [named('MongoServerSelectionError'), 'UNAVAILABLE'],
      [named('MongoNetworkError'), 'UNAVAILABLE'],
      [named('MongoNetworkTimeoutError'), 'UNAVAILABLE'],
      [named('MongoPoolClearedError'), 'UNAVAILABLE'],
      [named('MongoServerError', { code: 10107, message: 'not primary' }), 'UNAVAILABLE'],
      [named('MongoServerError', { code: 10334 }), 'INVALID'],
      [named('MongoServerError', { code: 17419 }), 'INVALID'],
      [named('BSONError', { message: 'Document is larger than the maximum size 16777216' }), 'INVALID'],
      [named('MongoServerError', { code: 59 }), 'UNSUPPORTED'],
      [named('MongoServerError', { code: 115 }), 'UNSUPPORTED'],
      [named('MongoServerError', { code: 238 }), 'UNSUPPORTED'],
      [named('MongoServerError', { code: 2 }), 'INTERNAL'],
      [new TypeError('boom'), 'INTERNAL'],
    ];
    const indexes = new Map([['by_group', 'group,n']]);
    for (const [error, code, field] of cases) {
      const translated = translateMongoError(error, 'ctx', indexes);
      assert.equal(translated.code, code, (error as Error).message);
      assert.equal(translated.cause, error);
      if (field !== undefined) assert.equal(translated.field, field);
    }
    const own = new StorageError('CONFLICT', 'mine');
    assert.equal(translateMongoError(own, 'ctx'), own);
  });

  it('reports UNAVAILABLE when no server answers', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await assert.rejects(createMongoStore({ uri: `mongodb://u:pw_secret@127.0.0.1:${port}/x`, serverSelectionTimeoutMs: 300 }), (e: unknown) => {
      assert.ok(isStorageError(e, 'UNAVAILABLE'), String(e));
      assert.ok(!e.message.includes('pw_secret'));
      return true;
    });
  });
});

const target: MongoTestTarget | { skip: string } = await mongoTestTarget();
if ('skip' in target) process.stderr.write(`${target.skip}\n`);
after(async () => {
  if (!('skip' in target)) await target.stop();
});

describe('mongodb engine against a server', { skip: 'skip' in target ? target.skip : undefined }, () => {
  const uri = 'skip' in target ? '' : target.uri;
  let store: MongoStore;
  before(async () => {
    store = await createMongoStore({ uri, database: freshDb(), monitorCommands: true });
  });
  after(async () => {
    await store?.db.dropDatabase().catch(() => {});
    await store?.close();
  });

  it('uses pool defaults 50/10 unless the URI sets them', async () => {
    assert.equal(store.client.options.maxPoolSize, 50);
    assert.equal(store.client.options.minPoolSize, 10);
    const custom = await createMongoStore({ uri: withQuery(uri, 'maxPoolSize=7&minPoolSize=2'), database: freshDb() });
    try {
      assert.equal(custom.client.options.maxPoolSize, 7);
      assert.equal(custom.client.options.minPoolSize, 2);
    } finally {
      await custom.close();
    }
    const small = await createMongoStore({ uri: withQuery(uri, 'maxPoolSize=4'), database: freshDb() });
    try {
      assert.equal(small.client.options.maxPoolSize, 4);
      assert.ok(small.client.options.minPoolSize <= 4, 'the default minimum never exceeds a smaller URI maximum');
    } finally {
      await small.close();
    }
  });

  it('reopens a database whose collections and indexes already exist, from two stores at once', async () => {
    const database = freshDb();
    const spec = { name: 'reopened', schemaVersion: 1, indexes: [{ fields: [['a', 1]] as Array<[string, 1]> }, { fields: [['b', 1]] as Array<[string, 1]>, unique: true }] };
    const first = await createMongoStore({ uri, database });
    await (await first.collection(spec)).insert({ doc: { id: 'x', a: 1, b: 1 } });
    await first.close();
    const [one, two] = await Promise.all([createMongoStore({ uri, database }), createMongoStore({ uri, database })]);
    try {
      const [c1, c2] = await Promise.all([one.collection(spec), two.collection(spec)]);
      assert.equal((await c1.get({ id: 'x' }))?.a, 1);
      assert.equal(await c2.count(), 1);
      assert.ok((await one.listIndexes({ collection: 'reopened' })).includes('b_1'));
    } finally {
      await one.db.dropDatabase();
      await one.close();
      await two.close();
    }
  });

  it('picks the database from options, else the URI path, else otto', async () => {
    const fromPath = await createMongoStore({ uri: withDb(uri, 'otto_from_path') });
    const fallback = await createMongoStore({ uri: withDb(uri, '') });
    try {
      assert.equal(fromPath.db.databaseName, 'otto_from_path');
      assert.ok(fromPath.location.endsWith('/otto_from_path'));
      assert.equal(fallback.db.databaseName, 'otto');
      assert.equal(store.location.split('/').at(-1), store.db.databaseName);
    } finally {
      await fromPath.close();
      await fallback.close();
    }
  });

  it('probes capabilities and the server version', async (t) => {
    const health = await store.health();
    assert.equal(health.ok, true);
    assert.equal(health.engine, 'mongodb');
    assert.match(health.server_version ?? '', /^MongoDB \d+\.\d+/);
    assert.equal(store.capabilities.durable, true);
    // The server says what it is (a shared test server, OTTO_TEST_MONGODB_URI, may be either).
    if (!/\(FerretDB .+\)$/.test(health.server_version ?? '')) return t.skip('capability expectations below are for FerretDB');
    assert.equal(store.capabilities.transactions, false);
    assert.equal(store.capabilities.changeStreams, false);
    assert.equal(store.capabilities.ttl, false);
    assert.equal(store.capabilities.multiProcess, false, 'FerretDB v1 updates are not atomic across processes');
  });

  it("stores Otto's id as _id and never returns _id", async () => {
    const items = await store.collection({ name: 'shape', schemaVersion: 1, indexes: [{ fields: [['name', 1]] }] });
    const stored = await items.insert({ doc: { id: 'doc-1', name: 'n', nested: { _id: 'inner', id: 'inner-id' } } });
    const raw = await store.db.collection('shape').findOne({ _id: 'doc-1' as never });
    assert.ok(raw);
    assert.equal(raw._id, 'doc-1');
    assert.equal(Object.hasOwn(raw, 'id'), false, 'id is not stored twice');
    assert.deepEqual(raw.nested, { _id: 'inner', id: 'inner-id' });
    for (const doc of [stored, await items.get({ id: 'doc-1' }), (await items.find()).items[0], await items.update({ id: 'doc-1', patch: { name: 'm' } })]) {
      assert.equal(doc?.id, 'doc-1');
      assert.equal(Object.hasOwn(doc ?? {}, '_id'), false);
    }
    for await (const batch of items.scan()) for (const doc of batch) assert.equal(Object.hasOwn(doc, '_id'), false);
    await assert.rejects(items.insert({ doc: { id: 'x', _id: 'y' } as never }), (e: unknown) => isStorageError(e, 'INVALID'));
    await assert.rejects(items.find({ where: eq('_id', 'x') }), (e: unknown) => isStorageError(e, 'INVALID'));
    assert.deepEqual((await items.find({ where: eq('id', 'doc-1') })).items.map((d) => d.id), ['doc-1']);
  });

  it('treats operator-looking strings as data, in stored fields and in where values', async () => {
    const items = await store.collection({ name: 'ops', schemaVersion: 1, indexes: [] });
    await items.insertMany({
      docs: [
        { id: 'a', name: '{"$ne": null}' },
        { id: 'b', name: '$ne' },
        { id: 'c', name: 'plain' },
        { id: 'd', tags: ['$ne', 'x'] },
      ],
    });
    const raw = await store.db.collection('ops').findOne({ _id: 'a' as never });
    assert.equal(raw?.name, '{"$ne": null}', 'stored as a string, not parsed');
    assert.deepEqual((await items.find({ where: eq('name', '$ne') })).items.map((d) => d.id), ['b']);
    assert.deepEqual((await items.find({ where: eq('name', '{"$ne": null}') })).items.map((d) => d.id), ['a']);
    assert.deepEqual((await items.find({ where: isIn('name', ['$ne', '$exists']) })).items.map((d) => d.id), ['b']);
    assert.equal(await items.count({ where: eq('name', '$ne') }), 1);
    assert.deepEqual((await items.find({ where: eq('tags', '$ne') })).items.map((d) => d.id), [], 'a scalar never matches an array by its elements (as in matches())');
    assert.equal(await items.deleteMany({ where: eq('name', '$ne') }), 1);
    assert.equal(await items.count(), 3);
  });

  it('counts nothing but numbers as counters: a null field counts as 0', async () => {
    const counters = await store.collection({ name: 'counters', schemaVersion: 1, indexes: [] });
    await counters.insert({ doc: { id: 'c', value: null } });
    assert.equal(await counters.increment({ id: 'c', field: 'value', by: 2 }), 2);
    assert.equal((await counters.get({ id: 'c' }))?.version, 2);
    await assert.rejects(counters.increment({ id: 'c', field: 'version' }), (e: unknown) => isStorageError(e, 'INVALID'));
  });

  it('names the field of a unique collision', async () => {
    const items = await store.collection({ name: 'uniq', schemaVersion: 1, indexes: [{ name: 'by_email', fields: [['email', 1]], unique: true }] });
    await items.insert({ doc: { id: 'a', email: 'a@example.com' } });
    await items.insert({ doc: { id: 'b', email: 'b@example.com' } });
    await assert.rejects(items.update({ id: 'b', patch: { email: 'a@example.com' } }), (e: unknown) => {
      assert.ok(isStorageError(e, 'DUPLICATE'), String(e));
      assert.equal(e.field, 'email');
      return true;
    });
    assert.deepEqual(await store.listIndexes({ collection: 'uniq' }), ['_id_', 'by_email']);
    assert.deepEqual(await store.listIndexes({ collection: 'no_such_collection' }), []);
  });

  it('uses one round trip per get, page, increment and insertMany', async () => {
    const items = await store.collection({ name: 'trips', schemaVersion: 1, indexes: [{ fields: [['conversation_id', 1], ['offset', 1]] }] });
    const commands: string[] = [];
    const listener = (e: { commandName: string }) => commands.push(e.commandName);
    store.client.on('commandStarted', listener);
    const trips = async (fn: () => Promise<unknown>): Promise<string[]> => {
      commands.length = 0;
      await fn();
      return [...commands];
    };
    try {
      // One chat turn: take the next offsets, then write the messages.
      assert.deepEqual(await trips(() => items.increment({ id: 'conv-1', field: 'next_offset', by: 2 })), ['findAndModify']);
      const messages = Array.from({ length: 2 }, (_, i) => ({ id: `m${i}`, conversation_id: 'conv-1', offset: i }));
      assert.deepEqual(await trips(() => items.insertMany({ docs: messages })), ['insert']);
      await items.insertMany({ docs: Array.from({ length: 120 }, (_, i) => ({ id: `p${String(i).padStart(3, '0')}`, conversation_id: 'conv-2', offset: i })) });
      let cursor: string | null = null;
      for (let page = 0; page < 3; page++) {
        assert.deepEqual(
          await trips(async () => {
            const result = await items.find({ where: eq('conversation_id', 'conv-2'), sort: [{ field: 'offset', direction: 'asc' }], limit: 50, after: cursor });
            cursor = result.next;
          }),
          ['find'],
          `page ${page}`,
        );
      }
      assert.equal(cursor, null);
      assert.deepEqual(await trips(() => items.get({ id: 'm0' })), ['find']);
      assert.deepEqual(await trips(() => items.update({ id: 'm0', patch: { text: 'hi' }, expectVersion: 1 })).then((c) => c.filter((n) => n !== 'update')), ['findAndModify']);
    } finally {
      store.client.off('commandStarted', listener);
    }
  });

  it('closes idempotently; afterwards operations are UNAVAILABLE and health is not ok', async () => {
    const other = await createMongoStore({ uri, database: freshDb() });
    const items = await other.collection({ name: 'x', schemaVersion: 1, indexes: [] });
    await other.close();
    await other.close();
    await assert.rejects(items.get({ id: 'a' }), (e: unknown) => isStorageError(e, 'UNAVAILABLE'));
    assert.equal((await other.health()).ok, false);
  });
});

/** The test server's port when it listens on loopback, where a TCP proxy can stand before it. */
function loopbackPort(): number | undefined {
  if ('skip' in target) return undefined;
  const url = new URL(target.uri.replace(/^mongodb:/, 'http:'));
  return ['127.0.0.1', 'localhost'].includes(url.hostname) && !target.uri.includes(',') ? Number(url.port || 27017) : undefined;
}
const proxiedPort = loopbackPort();

describe('mongodb engine when its connections are cut while in use', { skip: 'skip' in target ? target.skip : proxiedPort === undefined ? 'needs a test server on loopback' : undefined }, () => {
  // The driver's server monitor can leave a check unanswered for good when the check begins
  // the moment its socket is closed; health() then notices and starts the connections again.
  // The wedge needs the cut to land at that moment, so the test cuts repeatedly under load
  // until health() reports having restarted (it usually does within a few cuts). Only this
  // loop calls health(), so the restart is reported here.
  it('is healthy again after every cut once the server is back', async () => {
    if (proxiedPort === undefined) return;
    const proxy = await startTcpProxy({ port: proxiedPort });
    const store = await createMongoStore({
      uri: `mongodb://127.0.0.1:${proxy.port}/`,
      database: freshDb(),
      serverSelectionTimeoutMs: 2000,
      connectTimeoutMs: 2000,
      heartbeatFrequencyMs: 2000,
    });
    let stop = false;
    try {
      const items = await store.collection({ name: 'items', schemaVersion: 1, indexes: [] });
      let n = 0;
      const load = Array.from({ length: 12 }, async (_, worker) => {
        while (!stop) {
          try {
            if (worker % 2) await items.insert({ doc: { id: `w${n++}` } });
            else await items.find({ limit: 20 });
          } catch {
            await sleep(50);
          }
        }
      });
      let restarted = false;
      for (let cut = 0; cut < 12 && !restarted; cut++) {
        await sleep(300 + Math.random() * 500);
        await proxy.cut();
        await sleep(Math.random() * 1500);
        await proxy.restore();
        const since = performance.now();
        let health = await store.health();
        while (!health.ok && performance.now() - since < 25_000) {
          restarted ||= /started again/.test(health.error ?? '');
          await sleep(200);
          health = await store.health();
        }
        assert.ok(health.ok, `cut ${cut}: still unhealthy ${Math.round(performance.now() - since)} ms after the server came back: ${health.error}`);
      }
      stop = true;
      await Promise.all(load);
      assert.ok((await items.find({ limit: 1 })).items.length > 0);
    } finally {
      stop = true;
      await store.close();
      await proxy.close();
    }
  });
});
