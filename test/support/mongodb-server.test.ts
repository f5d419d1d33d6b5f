import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MongoClient } from 'mongodb';
import { mongoTestTarget } from './mongodb-server.ts';

test('MongoDB test server stores documents and keeps them across kill + restart', async (t) => {
  const target = await mongoTestTarget();
  if ('skip' in target) {
    t.skip(target.skip);
    return;
  }
  const client = new MongoClient(target.uri, { directConnection: true, serverSelectionTimeoutMS: 10_000 });
  const db = client.db(`otto_support_test_${process.pid}_${Date.now()}`);
  try {
    const notes = db.collection<{ _id: string; text: string; tags: string[] }>('notes');
    const note = { _id: 'n1', text: 'hello from Otto', tags: ['a', 'b'] };

    await notes.insertOne(note);
    assert.deepEqual(await notes.findOne({ _id: 'n1' }), note);

    if (target.source === 'ferretdb') {
      // An outage: the server dies without warning, then comes back on the same port and data dir.
      await target.server.kill();
      const probe = new MongoClient(target.uri, { directConnection: true, serverSelectionTimeoutMS: 300 });
      try {
        await assert.rejects(probe.db('admin').command({ ping: 1 }), 'the killed server should not answer');
      } finally {
        await probe.close();
      }
      await target.server.restart();

      // The client opened before the outage reconnects by itself and sees the same data.
      assert.deepEqual(await notes.findOne({ _id: 'n1' }), note);
      assert.equal(await notes.countDocuments(), 1);
    }
  } finally {
    // Close the client first: FerretDB gives connected clients 3 s to leave before it exits.
    if (target.source === 'env') await db.dropDatabase().catch(() => {}); // leave a shared server as found
    await client.close();
    await target.stop();
  }
});
