/**
 * The write-ahead change log wraps stores without changing what they do: the storage
 * conformance suite passes through the wrapper, on memory, JSONL and the MongoDB-wire server.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { attachChangeLog } from '../../src/storage/changes/index.ts';
import { createJsonlStore } from '../../src/storage/jsonl/jsonl-store.ts';
import { createMemoryStore } from '../../src/storage/memory/memory-store.ts';
import { createMongoStore } from '../../src/storage/mongodb/mongodb-store.ts';
import { runConformanceSuite } from '../storage/conformance/index.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';

runConformanceSuite('memory with the write-ahead change log', async () => {
  const { store } = await attachChangeLog(createMemoryStore());
  return { store, cleanup: () => store.close() };
});

runConformanceSuite('jsonl with the write-ahead change log', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'otto-changes-jsonl-'));
  const { store } = await attachChangeLog(await createJsonlStore({ dir, fsync: 'never' }));
  return { store, cleanup: async () => (await store.close(), await rm(dir, { recursive: true, force: true })) };
});

const target = await mongoTestTarget();
if ('skip' in target) process.stderr.write(`${target.skip}\n`);
else after(() => target.stop());

runConformanceSuite(
  'mongodb with the write-ahead change log',
  async () => {
    if ('skip' in target) throw new Error(target.skip);
    const inner = await createMongoStore({ uri: target.uri, database: `otto_test_${randomBytes(6).toString('hex')}` });
    const { store } = await attachChangeLog(inner);
    return { store, cleanup: async () => (await inner.db.dropDatabase().catch(() => {}), await store.close()) };
  },
  'skip' in target ? { skip: target.skip } : {},
);
