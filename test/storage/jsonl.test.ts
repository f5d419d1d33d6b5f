import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createJsonlStore } from '../../src/storage/jsonl/jsonl-store.ts';
import { runConformanceSuite } from './conformance/index.ts';

runConformanceSuite('jsonl', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'otto-jsonl-'));
  const store = await createJsonlStore({ dir });
  return { store, cleanup: async () => (await store.close(), await rm(dir, { recursive: true, force: true })) };
});
