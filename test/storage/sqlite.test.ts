import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { runConformanceSuite } from './conformance/index.ts';

runConformanceSuite('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'otto-sqlite-'));
  const store = await createSqliteStore({ path: join(dir, 'otto.db') });
  return { store, cleanup: async () => (await store.close(), await rm(dir, { recursive: true, force: true })) };
});
