/**
 * Mirrors as users see them: configured with OTTO_MIRRORS, fed by `createOtto` in the
 * background, reported in /health (URLs without credentials, lag, status), and handled by
 * `otto mirror status | sync | compact`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { createOtto } from '../../src/http/otto.ts';
import { createJsonlStore } from '../../src/storage/jsonl/jsonl-store.ts';
import { call } from '../support/otto.ts';
import { cli } from '../support/cli.ts';
import { waitFor } from '../support/wait.ts';

const temps: string[] = [];
after(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}



describe('OTTO_MIRRORS', () => {
  it('is validated at startup, naming the entry without quoting it', () => {
    const cwd = '/srv/otto';
    const config = loadConfig({ OTTO_MIRRORS: 'jsonl:backup, sqlite:///var/copy.db,mongodb://u:p@db.local/otto' }, cwd);
    assert.deepEqual(config.mirrors.urls, ['jsonl:/srv/otto/backup', 'sqlite:/var/copy.db', 'mongodb://u:p@db.local/otto']);
    assert.throws(
      () => loadConfig({ OTTO_MIRRORS: 'ftp://secret@x, mongodb://u:hunter2@db.local, sqlite:data/otto.db, jsonl:a,jsonl:./a, memory:' }, cwd),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const text = error.problems.join('\n');
        assert.equal(error.problems.length, 5, text);
        assert.match(text, /entry 1: unknown kind of store/);
        assert.match(text, /entry 2: the MongoDB URL names no database/);
        assert.match(text, /entry 3 is the primary SQLite file itself/);
        assert.match(text, /entry 5 repeats jsonl:\/srv\/otto\/a/);
        assert.match(text, /entry 6: memory: cannot be a mirror/);
        assert.doesNotMatch(text, /hunter2|secret/);
        return true;
      },
    );
  });
});

describe('mirrors in /health and the startup of createOtto', () => {
  it('feeds a mirror in the background and reports lag and status; a down mirror shows without credentials', async () => {
    const dir = await tempDir('otto-mirror-health-');
    const otto = await createOtto({
      config: loadConfig({
        OTTO_STORAGE: 'sqlite',
        OTTO_DATA_DIR: dir,
        OTTO_MIRRORS: `jsonl:${join(dir, 'backup')},mongodb://otto:hunter2@127.0.0.1:1/otto?serverSelectionTimeoutMS=300`,
        OTTO_MIRROR_INTERVAL_MS: '50',
      }),
    });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await call(otto, 'POST', '/bots', { name: `Mirrored ${i}` })).status, 201);
      const health = await waitFor('the JSONL mirror caught up and the MongoDB one reported down', async () => {
        const body = (await call(otto, 'GET', '/health')).json;
        return body.mirrors[0].status === 'ok' && body.mirrors[0].lag === 0 && body.mirrors[1].status === 'down' ? body : undefined;
      });
      assert.equal(health.status, 'ok', 'a mirror that is down does not make Otto down');
      assert.deepEqual(Object.keys(health.mirrors[0]).sort(), ['lag', 'seconds_behind', 'seq', 'status', 'url']);
      assert.equal(health.mirrors[0].url, `jsonl:${join(dir, 'backup')}`);
      assert.equal(health.mirrors[0].seq, await otto.changes.lastSeq());
      assert.equal(health.mirrors[1].url, 'mongodb://127.0.0.1:1/otto');
      assert.ok(health.mirrors[1].lag > 0);
      assert.match(health.mirrors[1].last_error, /./);
      assert.doesNotMatch(JSON.stringify(health), /hunter2/);
      // Writes go on while a mirror is down.
      assert.equal((await call(otto, 'POST', '/bots', { name: 'One more' })).status, 201);
    } finally {
      await otto.close();
    }
    const files = await readdir(join(dir, 'backup'));
    assert.ok(files.includes('bots.jsonl'), files.join(', '));
  });
});

describe('otto mirror', () => {
  it('has --help for the command and each subcommand', async () => {
    for (const argv of [['mirror', '--help'], ['mirror', 'status', '--help'], ['mirror', 'sync', '--help'], ['mirror', 'compact', '--help']]) {
      const { code, out } = await cli([...argv], {}, tmpdir());
      assert.equal(code, 0, argv.join(' '));
      assert.match(out, /otto mirror status/);
      assert.match(out, /otto mirror sync/);
      assert.match(out, /otto mirror compact/);
    }
    assert.match((await cli(['--help'], {}, tmpdir())).out, /mirror\s+mirror status/);
    const wrong = await cli(['mirror', 'frobnicate'], {}, tmpdir());
    assert.equal(wrong.code, 2);
    assert.match(wrong.err, /unknown subcommand "frobnicate"/);
  });

  it('status, sync and compact a JSONL mirror of a SQLite primary', async () => {
    const dir = await tempDir('otto-mirror-cli-');
    const env = { OTTO_STORAGE: 'sqlite', OTTO_DATA_DIR: join(dir, 'data'), OTTO_MIRRORS: 'jsonl:backup' };
    // Some data, written by an Otto without mirrors.
    const otto = await createOtto({ config: loadConfig({ OTTO_STORAGE: 'sqlite', OTTO_DATA_DIR: join(dir, 'data') }) });
    for (let i = 0; i < 4; i++) await call(otto, 'POST', '/bots', { name: `CLI ${i}` });
    const bots = (await call(otto, 'GET', '/bots')).json as Array<{ id: string }>;
    await call(otto, 'PATCH', `/bots/${bots[1]!.id}`, { description: 'changed' });
    await otto.close();

    const before = await cli(['mirror', 'status'], env, dir);
    assert.equal(before.code, 3, before.out + before.err);
    assert.match(before.out, /behind\s+jsonl:.*backup\s+seq 0/);

    const synced = await cli(['mirror', 'sync'], env, dir);
    assert.equal(synced.code, 0, synced.out + synced.err);
    assert.match(synced.out, /ok\s+jsonl:.*backup.*caught up/);

    const after = await cli(['mirror', 'status', '--json'], env, dir);
    assert.equal(after.code, 0, after.out + after.err);
    const report = JSON.parse(after.out);
    assert.equal(report.mirrors[0].status, 'ok');
    assert.equal(report.mirrors[0].lag, 0);
    assert.equal(report.mirrors[0].seq, report.primary.seq);

    const compacted = await cli(['mirror', 'compact'], env, dir);
    assert.equal(compacted.code, 0, compacted.out + compacted.err);
    assert.match(compacted.out, /compacted jsonl:.*backup: \d+ collection\(s\), \d+ document\(s\)/);
    const files = await readdir(join(dir, 'backup'));
    assert.ok(files.includes('bots.snapshot.jsonl'), files.join(', '));
    const mirror = await createJsonlStore({ dir: join(dir, 'backup'), readOnly: true });
    try {
      const copy = await mirror.collection({ name: 'bots', schemaVersion: 1, indexes: [] });
      assert.equal(await copy.count(), 4);
      assert.equal((await copy.get({ id: bots[1]!.id }))?.description, 'changed');
    } finally {
      await mirror.close();
    }
    const notJsonl = await cli(['mirror', 'compact', 'sqlite:x.db'], env, dir);
    assert.equal(notJsonl.code, 2);
  });
});
