/**
 * Pruning the change log on each engine: only records every cursor has passed and that are
 * older than the retention window go; the newest record always stays, so seqs never repeat
 * (in this process or a new one); a mirror keeps following without losing a change; a mirror
 * added after a prune starts from a full copy. Plus `otto mirror prune | forget`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import { attachChangeLog, CHANGES_SPEC, Mirror, MIRRORS_SPEC, pruneChangeLog, type MirrorCursor } from '../../src/storage/changes/index.ts';
import { INTENTS_SPEC } from '../../src/storage/changes/records.ts';
import { isStorageError, type Doc, type Store } from '../../src/storage/contract.ts';
import { createJsonlStore } from '../../src/storage/jsonl/jsonl-store.ts';
import { createMemoryStore } from '../../src/storage/memory/memory-store.ts';
import { createMongoStore } from '../../src/storage/mongodb/mongodb-store.ts';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { api, pollUntil, withScope } from '../e2e/harness.ts';
import { readAll } from '../support/change-log.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';
import { cli } from '../support/cli.ts';

const mongo = await mongoTestTarget();
if ('skip' in mongo) process.stderr.write(`${mongo.skip}\n`);
else after(() => mongo.stop());

const DAY = 86_400_000;
const spec = { name: 'notes', schemaVersion: 1, indexes: [] };

interface Engine {
  name: string;
  skip?: string;
  /** Opens the same store again on each call (a second process's view); `cleanup` ends them all. */
  open(): Promise<{ openAgain(): Promise<Store>; raw: Store; cleanup(): Promise<void> }>;
}

const engines: Engine[] = [
  {
    name: 'sqlite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'otto-prune-'));
      const opened: Store[] = [];
      const openAgain = async () => {
        const store = await createSqliteStore({ path: join(dir, 'otto.db') });
        opened.push(store);
        return store;
      };
      const raw = await openAgain();
      return { raw, openAgain, cleanup: async () => (await Promise.all(opened.map((s) => s.close())), await rm(dir, { recursive: true, force: true })) };
    },
  },
  {
    name: 'memory (write-ahead)',
    async open() {
      const raw = createMemoryStore();
      return { raw, openAgain: async () => raw, cleanup: () => raw.close() };
    },
  },
  {
    name: 'mongodb (write-ahead)',
    skip: 'skip' in mongo ? mongo.skip : undefined,
    async open() {
      if ('skip' in mongo) throw new Error(mongo.skip);
      const database = `otto_prune_${randomBytes(6).toString('hex')}`;
      const opened: Store[] = [];
      const openAgain = async () => {
        const store = await createMongoStore({ uri: mongo.uri, database });
        opened.push(store);
        return store;
      };
      const raw = await openAgain();
      return {
        raw,
        openAgain,
        cleanup: async () => {
          await (raw as Awaited<ReturnType<typeof createMongoStore>>).db.dropDatabase().catch(() => {});
          await Promise.all(opened.map((s) => s.close()));
        },
      };
    },
  },
];


async function seqsStored(store: Store, name: string): Promise<number[]> {
  const c = await store.collection<Doc>({ name, schemaVersion: 1, indexes: [] });
  const seqs: number[] = [];
  for await (const batch of c.scan()) for (const doc of batch) seqs.push(Number(doc.id));
  return seqs.sort((a, b) => a - b);
}

for (const engine of engines) {
  describe(`change log pruning: ${engine.name}`, { skip: engine.skip }, () => {
    it('prunes only what every cursor has passed, keeps the newest record, and never reuses a seq', async () => {
      const { raw, openAgain, cleanup } = await engine.open();
      const dir = await mkdtemp(join(tmpdir(), 'otto-prune-mirror-'));
      try {
        const { store, log } = await attachChangeLog(raw);
        const notes = await store.collection<Doc & { n: number }>(spec);
        for (let i = 1; i <= 20; i++) await notes.insert({ doc: { id: `n${i}`, n: i } });
        const head = await log.lastSeq();
        assert.equal(head, 20);

        // Nothing goes while it is younger than the window.
        const young = await pruneChangeLog({ log, keepMs: DAY });
        assert.equal(young.through, 0);
        assert.equal((await seqsStored(raw, CHANGES_SPEC.name)).length, 20);

        // A mirror has read up to seq 12; a cursor left by another process is at seq 8.
        const mirror = new Mirror(`jsonl:${join(dir, 'mirror')}`, log);
        await mirror.syncOnce({ timeoutMs: 30_000 });
        const cursors = await raw.collection<MirrorCursor>(MIRRORS_SPEC);
        const mine = (await cursors.find({ limit: 1 })).items[0]!;
        await cursors.update({ id: mine.id, patch: { seq: 12 } });
        await cursors.insert({ doc: { id: 'm_elsewhere', url: 'sqlite:/elsewhere.db', seq: 8, snapshot_done: true, applied_at: null, last_error: null, last_error_at: null, lease_owner: null, lease_until: null } });

        const dry = await pruneChangeLog({ log, keepMs: 0, dryRun: true });
        assert.deepEqual({ through: dry.through, deleted: dry.deleted, held_by: dry.held_by?.id }, { through: 8, deleted: 0, held_by: 'm_elsewhere' });
        assert.equal((await seqsStored(raw, CHANGES_SPEC.name)).length, 20, 'a dry run deletes nothing');

        const pruned = await pruneChangeLog({ log, keepMs: 0 });
        assert.equal(pruned.through, 8);
        assert.equal(pruned.deleted, 8);
        assert.deepEqual(await seqsStored(raw, CHANGES_SPEC.name), Array.from({ length: 12 }, (_, i) => i + 9));
        if (log.mode === 'write-ahead') assert.equal((await seqsStored(raw, INTENTS_SPEC.name))[0], 9, 'intents go with their records');

        // Once the other cursor is gone, everything the mirror read goes; with every cursor at
        // the head, all but the newest record.
        await cursors.delete({ id: 'm_elsewhere' });
        assert.equal((await pruneChangeLog({ log, keepMs: 0 })).through, 12);
        await cursors.update({ id: mine.id, patch: { seq: head } });
        const all = await pruneChangeLog({ log, keepMs: 0 });
        assert.equal(all.through, head - 1, 'the newest record stays');
        assert.deepEqual(await seqsStored(raw, CHANGES_SPEC.name), [head]);
        await cursors.update({ id: mine.id, patch: { seq: 12 } });

        // New writes follow the old head, here and in a log opened afresh (another process).
        await notes.insert({ doc: { id: 'n21', n: 21 } });
        assert.equal(await log.lastSeq(), head + 1);
        const other = await attachChangeLog(await openAgain());
        await (await other.store.collection<Doc & { n: number }>(spec)).insert({ doc: { id: 'n22', n: 22 } });
        assert.equal(await log.lastSeq(), head + 2);
        const tail = await readAll(log, head);
        assert.deepEqual(tail.map((c) => [c.seq, c.id]), [[head + 1, 'n21'], [head + 2, 'n22']]);
        other.log.close();

        // A mirror added now starts with a full copy, and has every note.
        const late = new Mirror(`jsonl:${join(dir, 'late')}`, log);
        await cursors.update({ id: mine.id, patch: { seq: head + 2 } });
        await late.syncOnce({ timeoutMs: 30_000 });
        await late.stop();
        await mirror.stop();
        const copy = await createJsonlStore({ dir: join(dir, 'late'), readOnly: true });
        try {
          assert.equal(await (await copy.collection(spec)).count(), 22);
        } finally {
          await copy.close();
        }
        log.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
        await cleanup();
      }
    });

    it('keeps what was written within the window, by the records’ own times', async () => {
      const { raw, cleanup } = await engine.open();
      try {
        const { store, log } = await attachChangeLog(raw);
        const notes = await store.collection<Doc & { n: number }>(spec);
        for (let i = 1; i <= 6; i++) await notes.insert({ doc: { id: `n${i}`, n: i } });
        const now = Date.now();
        assert.equal((await pruneChangeLog({ log, keepMs: DAY, now: now + DAY / 2 })).through, 0, 'half a day later, a day’s window keeps all');
        assert.equal((await pruneChangeLog({ log, keepMs: DAY, now: now + 2 * DAY })).through, 5, 'two days later, all but the newest go');
        await assert.rejects(pruneChangeLog({ log, keepMs: -1 }), (error: unknown) => isStorageError(error, 'INVALID'));
        log.close();
      } finally {
        await cleanup();
      }
    });
  });
}


describe('otto mirror prune | forget', () => {
  it('names the cursor holding the log back, forgets a gone mirror, then prunes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-prune-cli-'));
    try {
      const env = { OTTO_DATA_DIR: join(dir, 'data'), OTTO_MIRRORS: `jsonl:${join(dir, 'mirror')}` };
      const raw = await createSqliteStore({ path: join(dir, 'data', 'otto.db') });
      const { store, log } = await attachChangeLog(raw);
      const notes = await store.collection<Doc & { n: number }>(spec);
      for (let i = 1; i <= 10; i++) await notes.insert({ doc: { id: `n${i}`, n: i } });
      const cursors = await raw.collection<MirrorCursor>(MIRRORS_SPEC);
      await cursors.insert({ doc: { id: 'm_gone', url: 'sqlite:/gone.db', seq: 3, snapshot_done: true, applied_at: null, last_error: null, last_error_at: null, lease_owner: null, lease_until: null } });
      log.close();
      await raw.close();

      assert.equal((await cli(['mirror', 'sync'], env, dir)).code, 0);
      const dry = await cli(['mirror', 'prune', '--keep-days', '0', '--dry-run'], env, dir);
      assert.equal(dry.code, 0, dry.err);
      assert.match(dry.out, /would prune seq 1–3/);
      assert.match(dry.out, /held back by sqlite:\/gone\.db at seq 3 — not in OTTO_MIRRORS here; if it is gone for good: otto mirror forget m_gone/);
      const kept = await cli(['mirror', 'prune'], env, dir);
      assert.match(kept.out, /nothing to prune \(records are kept 7 day\(s\)/, 'the default window keeps fresh records');

      assert.equal((await cli(['mirror', 'forget', 'nope'], env, dir)).code, 1);
      const forgot = await cli(['mirror', 'forget', 'sqlite:/gone.db'], env, dir);
      assert.equal(forgot.code, 0, forgot.err);
      assert.match(forgot.out, /forgot sqlite:\/gone\.db \(was at seq 3\)/);
      const pruned = await cli(['mirror', 'prune', '--keep-days', '0'], env, dir);
      assert.match(pruned.out, /pruned seq 1–9 \(9 record\(s\)\)/);
      assert.doesNotMatch(pruned.out, /not in OTTO_MIRRORS/);

      assert.equal((await cli(['mirror', 'prune', '--keep-days', 'soon'], env, dir)).code, 2);
      assert.equal((await cli(['mirror', 'forget'], env, dir)).code, 2);
      const help = await cli(['mirror', '--help'], env, dir);
      assert.match(help.out, /otto mirror prune \[--keep-days <n>\] \[--dry-run\]/);
      assert.match(help.out, /otto mirror forget <url\|id>/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('otto serve prunes its change log', () => {
  it('in the background, once the mirror has read the records, and the mirror stays complete', async (t) => {
    await withScope(t, async (scope) => {
      const dir = await scope.tempDir('otto-prune-serve-');
      const env = { OTTO_MIRRORS: `jsonl:${join(dir, 'mirror')}`, OTTO_MIRROR_INTERVAL_MS: '50', OTTO_CHANGES_KEEP_DAYS: '0', OTTO_CHANGES_PRUNE_INTERVAL_MS: '200' };
      const otto = await scope.start({ dataDir: join(dir, 'data'), env, label: 'pruning' });
      const ids: string[] = [];
      for (let i = 0; i < 15; i++) ids.push((await api(otto.url, 'POST', '/bots', { name: `Bot ${i}` })).json.id);
      // Prunes run every 200 ms; one that ran before the mirror read the bots' records could not
      // remove them. Watch the file itself (read-only) until serve has pruned them.
      const file = join(dir, 'data', 'otto.db');
      const { value: pruned } = await pollUntil(15_000, async () => {
        const db = new DatabaseSync(file, { readOnly: true });
        try {
          const { n } = db.prepare(`SELECT count(*) AS n FROM "${CHANGES_SPEC.name}"`).get() as { n: number };
          return n < 15 && /change log: pruned \d+ record\(s\)/.test(otto.stderr()) ? true : undefined;
        } finally {
          db.close();
        }
      }, 100);
      assert.ok(pruned, `serve reports a prune: ${otto.stderr()}`);
      await otto.stop();
      const db = await createSqliteStore({ path: join(dir, 'data', 'otto.db') });
      try {
        const left = await seqsStored(db, CHANGES_SPEC.name);
        assert.ok(left.length < 15, `records were pruned (${left.length} left)`);
        assert.ok(left.length >= 1, 'the newest record stays');
      } finally {
        await db.close();
      }
      const mirror = await createJsonlStore({ dir: join(dir, 'mirror'), readOnly: true });
      try {
        const bots = await mirror.collection({ name: 'bots', schemaVersion: 1, indexes: [] });
        for (const id of ids) assert.ok(await bots.get({ id }), `bot ${id} reached the mirror`);
      } finally {
        await mirror.close();
      }
      scope.passed = true;
    });
  });
});
