import { createMemoryStore } from '../../src/storage/memory/memory-store.ts';
import { runConformanceSuite } from './conformance/index.ts';

runConformanceSuite('memory', async () => {
  const store = createMemoryStore();
  return { store, cleanup: () => store.close() };
});
