import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { createMongoStore } from '../../src/storage/mongodb/mongodb-store.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';
import { runConformanceSuite } from './conformance/index.ts';

// OTTO_TEST_MONGODB_URI, or a FerretDB server started here; skipped loudly when neither is available.
const target = await mongoTestTarget();
if ('skip' in target) process.stderr.write(`${target.skip}\n`);
else after(() => target.stop());

runConformanceSuite(
  'mongodb',
  async () => {
    if ('skip' in target) throw new Error(target.skip);
    // A fresh database per store, dropped afterwards (also on a shared OTTO_TEST_MONGODB_URI server).
    const store = await createMongoStore({ uri: target.uri, database: `otto_test_${randomBytes(6).toString('hex')}` });
    return { store, cleanup: async () => (await store.db.dropDatabase().catch(() => {}), await store.close()) };
  },
  'skip' in target ? { skip: target.skip } : {},
);
