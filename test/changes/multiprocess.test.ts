/**
 * Two real writer processes log concurrently into one store while a reader follows the log:
 * the reader sees every acknowledged write exactly once, in seq order, with no gaps — on the
 * MongoDB-wire server (write-ahead records, no transactions; writers commit out of seq order on
 * purpose) and on one SQLite file (records in the write transaction).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { openChangeLogReader, type ChangeRecord } from '../../src/storage/changes/index.ts';
import type { Store } from '../../src/storage/contract.ts';
import { createMongoStore } from '../../src/storage/mongodb/mongodb-store.ts';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';

const writer = fileURLToPath(new URL('./fixtures/log-writer.ts', import.meta.url));
const COUNT = 40;
const LANES = 4;
const DEADLINE_MS = 120_000;

const mongo = await mongoTestTarget();
if ('skip' in mongo) process.stderr.write(`${mongo.skip}\n`);
else after(() => mongo.stop());

interface Written {
  op: string;
  id: string;
  version: number | null;
}

function startWriter(name: string, args: string[]): { done: Promise<Written[]>; exited: () => boolean } {
  const proc = spawn(process.execPath, [writer, '--name', name, '--count', String(COUNT), '--lanes', String(LANES), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let exited = false;
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const done = new Promise<Written[]>((resolve, reject) => {
    proc.once('close', (code) => {
      exited = true;
      const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Written & { done?: boolean });
      if (code !== 0 || !lines.at(-1)?.done) reject(new Error(`writer ${name} failed (exit ${code}):\n${err}\n${out.slice(-2000)}`));
      else resolve(lines.filter((l) => !l.done));
    });
  });
  return { done, exited: () => exited };
}

async function followWhileWriting(t: TestContext, store: Store, writers: Array<ReturnType<typeof startWriter>>): Promise<{ changes: ChangeRecord[]; written: Written[] }> {
  // A long recovery window: live writers are never "recovered" — the reader only waits for them.
  const log = await openChangeLogReader(store, { recoveryMs: 60_000 });
  const changes: ChangeRecord[] = [];
  let cursor = 0;
  let waits = 0;
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const allExited = writers.every((w) => w.exited());
    const batch = await log.readChanges({ after: cursor, limit: 100 });
    changes.push(...batch.changes);
    if (batch.waiting) waits++;
    if (batch.next === cursor) {
      if (allExited && !batch.waiting) break;
      assert.ok(Date.now() < deadline, 'the reader did not reach the end of the log');
      await sleep(5);
    }
    cursor = batch.next;
  }
  const written = (await Promise.all(writers.map((w) => w.done))).flat();
  t.diagnostic(`${changes.length} changes read; the reader waited at an uncommitted seq ${waits} time(s)`);
  return { changes, written };
}

function assertExactlyOnce(changes: ChangeRecord[], written: Written[]): void {
  const key = (op: string, id: string, version: number | null) => `${op} ${id} v${version}`;
  const seen = changes.map((c) => key(c.op, c.id, c.doc?.version ?? null));
  assert.equal(new Set(seen).size, seen.length, 'no change is read twice');
  assert.deepEqual([...seen].sort(), written.map((w) => key(w.op, w.id, w.version)).sort(), 'every acknowledged write is read, and nothing else');
  assert.deepEqual(changes.map((c) => c.seq), Array.from({ length: changes.length }, (_, i) => i + 1), 'seqs are 1..n in order, without gaps');
  // Per document, the log has the writes in the order they happened.
  const perDoc = new Map<string, string[]>();
  for (const c of changes) perDoc.set(c.id, [...(perDoc.get(c.id) ?? []), c.op]);
  for (const [id, ops] of perDoc) {
    const i = Number(id.split('-')[2]);
    const expected = ['insert', ...(i % 3 === 0 ? ['update'] : []), ...(i % 5 === 0 ? ['delete'] : [])];
    assert.deepEqual(ops, expected, `the writes of ${id} in order`);
  }
}

describe('change log with two writer processes', () => {
  it('on the MongoDB-wire server (write-ahead records)', { skip: 'skip' in mongo ? mongo.skip : undefined }, async (t) => {
    if ('skip' in mongo) return;
    const database = `otto_test_${randomBytes(6).toString('hex')}`;
    const store = await createMongoStore({ uri: mongo.uri, database });
    try {
      const args = ['--mongodb', mongo.uri, '--database', database];
      const writers = [startWriter('A', args), startWriter('B', args)];
      const { changes, written } = await followWhileWriting(t, store, writers);
      assert.equal(written.length, 2 * LANES * (COUNT + Math.ceil(COUNT / 3) + Math.ceil(COUNT / 5)));
      assertExactlyOnce(changes, written);
    } finally {
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    }
  });

  it('on one SQLite file (records in the write transaction)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-changes-mp-'));
    const file = join(dir, 'otto.db');
    const store = await createSqliteStore({ path: file });
    try {
      await store.collection({ name: 'items', schemaVersion: 1, indexes: [] });
      const writers = [startWriter('A', ['--sqlite', file]), startWriter('B', ['--sqlite', file])];
      const { changes, written } = await followWhileWriting(t, store, writers);
      assertExactlyOnce(changes, written);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
