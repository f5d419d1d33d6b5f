/** Transfers between SQLite and a real MongoDB-wire server (FerretDB in tests), both ways. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { describeStoreUrl, openStoreUrl, openStoreUrlMigrated } from '../../src/storage/store-url.ts';
import { transfer, verify } from '../../src/storage/transfer/index.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';
import { envWithoutOttoSettings } from '../support/otto-process.ts';
import { contents, copiedCollections, freshMongo, importIntoMirroredStore, seed, tempDir } from './fixtures.ts';

// OTTO_TEST_MONGODB_URI, or a FerretDB server started here; skipped loudly when neither is available.
const target = await mongoTestTarget();
if ('skip' in target) process.stderr.write(`${target.skip}\n`);
else after(() => target.stop());

describe('transfer between SQLite and MongoDB', { skip: 'skip' in target ? target.skip : undefined }, () => {
  it('SQLite → MongoDB → SQLite, verified equal at each step', async () => {
    if ('skip' in target) return;
    const { dir, cleanup } = await tempDir('otto-transfer-mongo-');
    const mongo = await freshMongo(target.uri);
    try {
      const source = await createSqliteStore({ path: join(dir, 'source.db') });
      const counts = await seed(source, { messages: 150 });
      // Through the URL, as the CLI does: migrations create the collections and their indexes first.
      const to = await openStoreUrlMigrated(mongo.url);
      try {
        assert.equal(describeStoreUrl(mongo.url), `mongodb://${to.location}`);
        const there = await transfer({ from: source, to, batchSize: 40 });
        assert.deepEqual(Object.fromEntries(there.collections.map((c) => [c.collection, c.copied])), counts);
        const first = await verify({ a: source, b: to });
        assert.equal(first.equal, true, JSON.stringify(first.collections.filter((c) => !c.equal)));
        assert.ok((await to.listIndexes({ collection: 'messages' })).includes('conversation_offset'), 'indexes come from the specs');

        const from = await openStoreUrl(mongo.url, { source: true });
        const back = await openStoreUrlMigrated(`sqlite:${join(dir, 'back.db')}`, { sqliteSynchronous: 'NORMAL' });
        try {
          await transfer({ from, to: back, batchSize: 25 });
          const second = await verify({ a: from, b: back });
          assert.equal(second.equal, true, JSON.stringify(second.collections.filter((c) => !c.equal)));
          assert.equal((await verify({ a: source, b: back })).equal, true);
          assert.deepEqual(await contents(back, copiedCollections), await contents(source, copiedCollections));
        } finally {
          await back.close();
          await from.close();
        }
      } finally {
        await to.close();
        await source.close();
      }
    } finally {
      await mongo.cleanup();
      await cleanup();
    }
  });

  it('an import into a MongoDB primary reaches its mirror through the write-ahead change log', async () => {
    if ('skip' in target) return;
    const { dir, cleanup } = await tempDir('otto-import-mongo-');
    const mongo = await freshMongo(target.uri);
    try {
      const source = await createSqliteStore({ path: join(dir, 'source.db') });
      await seed(source, { messages: 60 });
      await source.close();
      const env = envWithoutOttoSettings({ OTTO_STORAGE: 'mongodb', MONGODB_URI: mongo.url, MONGODB_DATABASE: mongo.store.db.databaseName, OTTO_MIRRORS: 'jsonl:./mirror' });
      const report = await importIntoMirroredStore({ env, cwd: dir, from: `sqlite:${join(dir, 'source.db')}`, mirrorUrl: 'jsonl:./mirror' });
      assert.equal(report.equal, true, JSON.stringify(report.collections.filter((c) => !c.equal)));
    } finally {
      await mongo.cleanup();
      await cleanup();
    }
  });
});
