/**
 * Crash safety of the change log and a mirror, with a real `otto serve`: a SQLite primary with a
 * JSON-lines mirror takes a stream of POST /bots, is killed with SIGKILL in the middle of it, and
 * is started again. Every write that got a 2xx is in the primary, has exactly one change record,
 * and (after catch-up) is in the mirror; nothing is duplicated; the mirror equals the primary.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CHANGES_SPEC, isMirrored, MIRRORS_SPEC, type MirrorCursor, type StoredChange } from '../../src/storage/changes/index.ts';
import type { Doc, Store } from '../../src/storage/contract.ts';
import { createJsonlStore } from '../../src/storage/jsonl/jsonl-store.ts';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { startOttoProcess, type OttoProcess } from '../support/otto-process.ts';
import { waitFor } from '../support/wait.ts';

const WRITERS = 8;
/** Acknowledged writes before the kill (the kill lands while the writers keep going). */
const ACKED_BEFORE_KILL = 150;
const STREAM_LIMIT_MS = 60_000;

const temps: string[] = [];
const processes: OttoProcess[] = [];
after(async () => {
  for (const p of processes) await p.kill().catch(() => {});
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

async function json(url: string, method = 'GET', body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, body: await response.json().catch(() => undefined) };
}


async function all(store: Store, name: string): Promise<Doc[]> {
  const collection = await store.collection({ name, schemaVersion: 1, indexes: [] });
  const out: Doc[] = [];
  for await (const batch of collection.scan()) out.push(...batch);
  return out;
}

describe('crash safety', () => {
  it('kill -9 in the middle of a write stream loses no acknowledged write, on the primary or its JSONL mirror', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-crash-'));
    temps.push(dir);
    const dataDir = join(dir, 'data');
    const mirrorDir = join(dir, 'mirror');
    const env = { OTTO_STORAGE: 'sqlite', OTTO_MIRRORS: `jsonl:${mirrorDir}`, OTTO_MIRROR_INTERVAL_MS: '50', OTTO_MIRROR_BATCH_SIZE: '25' };

    const first = await startOttoProcess({ dataDir, env, label: 'first' });
    processes.push(first);
    assert.match(first.stdout(), new RegExp(`mirrors\\s+jsonl:${mirrorDir.replaceAll('/', '\\/')}`));

    // Stream creates from several writers until the process dies under them.
    const acked: Array<{ id: string; name: string }> = [];
    let failed = 0;
    let n = 0;
    let dead = false;
    const deadline = Date.now() + STREAM_LIMIT_MS;
    const writer = async () => {
      while (!dead && Date.now() < deadline) {
        const name = `Crash bot ${n++}`;
        try {
          const response = await json(`${first.url}/bots`, 'POST', { name, description: 'written while Otto may die' });
          if (response.status >= 200 && response.status < 300) acked.push({ id: response.body.id, name });
          else if (!dead) assert.fail(`POST /bots answered ${response.status}: ${JSON.stringify(response.body)}`);
        } catch {
          failed++; // the connection died with the process: not acknowledged
        }
      }
    };
    const stream = Promise.all(Array.from({ length: WRITERS }, writer));
    await waitFor('enough acknowledged writes', async () => acked.length >= ACKED_BEFORE_KILL, { timeoutMs: STREAM_LIMIT_MS, intervalMs: 100 });
    await first.kill();
    dead = true;
    await stream;
    t.diagnostic(`${acked.length} writes acknowledged, ${failed} cut off by the kill`);
    assert.equal(first.exitStatus()?.signal, 'SIGKILL');
    {
      // Where the mirror stood when the process died (its durable cursor in the primary).
      const primary = await createSqliteStore({ path: join(dataDir, 'otto.db') });
      try {
        const cursor = (await all(primary, MIRRORS_SPEC.name))[0] as MirrorCursor | undefined;
        const head = (await all(primary, CHANGES_SPEC.name)).length;
        t.diagnostic(`at the kill the mirror's cursor was at seq ${cursor?.seq ?? 0} of ${head}`);
      } finally {
        await primary.close();
      }
    }

    // Start again on the same data: the mirror catches up from its durable cursor.
    const second = await startOttoProcess({ dataDir, env, label: 'second' });
    processes.push(second);
    const health = await waitFor('the mirror to catch up after the restart', async () => {
      const { body } = await json(`${second.url}/health`);
      return body.mirrors[0].status === 'ok' && body.mirrors[0].lag === 0 ? body : undefined;
    }, { timeoutMs: 60_000, intervalMs: 100 });
    assert.equal(health.mirrors[0].url, `jsonl:${mirrorDir}`);
    // The API serves every acknowledged bot.
    for (const { id, name } of acked.slice(0, 20)) assert.equal((await json(`${second.url}/bots/${id}`)).body.name, name);
    const stopped = await second.stop();
    assert.equal(stopped.code, 0, second.output());

    const primary = await createSqliteStore({ path: join(dataDir, 'otto.db') });
    const mirror = await createJsonlStore({ dir: mirrorDir, readOnly: true });
    try {
      const bots = await all(primary, 'bots');
      const byId = new Map(bots.map((b) => [b.id, b]));
      for (const { id, name } of acked) assert.equal(byId.get(id)?.name, name, `acknowledged ${name} (${id}) is in the primary`);
      const names = bots.map((b) => b.name as string);
      assert.equal(new Set(names).size, names.length, 'no bot is stored twice');

      // Each bot has exactly one insert in the change log, and the log has no record of anything else.
      const changes = (await all(primary, CHANGES_SPEC.name)) as StoredChange[];
      const inserts = changes.filter((c) => c.collection === 'bots' && c.op === 'insert').map((c) => c.doc_id);
      assert.deepEqual([...inserts].sort(), bots.map((b) => b.id).sort(), 'one insert record per stored bot');
      assert.deepEqual(changes.map((c) => c.seq), Array.from({ length: changes.length }, (_, i) => i + 1), 'seqs without gaps');

      // The mirror holds exactly what the primary holds.
      for (const name of await primary.listCollections()) {
        if (!isMirrored(name)) continue;
        const sort = (docs: Doc[]) => docs.sort((a, b) => (a.id < b.id ? -1 : 1));
        assert.deepEqual(sort(await all(mirror, name)), sort(await all(primary, name)), `the mirror's ${name}`);
      }
      t.diagnostic(`${bots.length} bots in the primary and the mirror; ${changes.length} change records`);
    } finally {
      await mirror.close();
      await primary.close();
    }
  });
});
