/** `otto transfer | verify | export | import` from the command line, including a transfer killed halfway. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';
import { openStoreUrl } from '../../src/storage/store-url.ts';
import { migrationsFor } from '../../src/storage/migrations/index.ts';
import { transferKey } from '../../src/storage/transfer/index.ts';
import { importIntoMirroredStore, seed, tempDir, verifyUrls } from './fixtures.ts';
import { captureIO } from '../support/cli.ts';
import { envWithoutOttoSettings } from '../support/otto-process.ts';

const bin = new URL('../../bin/otto.js', import.meta.url).pathname;

/** Counts of every copied collection in a store (by URL). */
async function counts(url: string): Promise<Record<string, number>> {
  const store = await openStoreUrl(url, { source: true });
  try {
    const out: Record<string, number> = {};
    for (const name of await store.listCollections()) out[name] = await (await store.collection({ name, schemaVersion: 1, indexes: [] })).count();
    return out;
  } finally {
    await store.close();
  }
}

describe('otto transfer, verify, export, import (CLI)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('otto-transfer-cli-'));
  });
  afterEach(async () => {
    await cleanup();
  });

  /** A seeded SQLite source (closed, so its file is complete) and a copy of it taken before any transfer. */
  async function source(messages: number): Promise<{ url: string; snapshot: string; path: string }> {
    const path = join(dir, 'source.db');
    const store = await createSqliteStore({ path });
    await seed(store, { messages });
    await store.close();
    copyFileSync(path, join(dir, 'snapshot.db'));
    if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, join(dir, 'snapshot.db-wal'));
    return { url: `sqlite:${path}`, snapshot: `sqlite:${join(dir, 'snapshot.db')}`, path };
  }

  it('every command has --help with usage and examples', async () => {
    for (const name of ['transfer', 'verify', 'export', 'import', 'doctor']) {
      const c = captureIO();
      assert.equal(await main([name, '--help'], c.io), 0, name);
      assert.match(c.out.join('\n'), new RegExp(`^Usage: otto ${name}`), name);
      assert.match(c.out.join('\n'), /Examples:\n {2}otto /, name);
    }
  });

  it('reports a missing option, a bad store and a missing source clearly', async () => {
    const missing = captureIO(envWithoutOttoSettings(), dir);
    assert.equal(await main(['transfer', '--to', 'jsonl:./x'], missing.io), 2);
    assert.match(missing.err.join('\n'), /--from is required, e\.g\. --from sqlite:/);
    const bad = captureIO(envWithoutOttoSettings(), dir);
    assert.equal(await main(['transfer', '--from', 'postgres://user:secret@h/db', '--to', 'jsonl:./x'], bad.io), 1);
    assert.match(bad.err.join('\n'), /INVALID: unknown kind of store "postgres:"/);
    assert.doesNotMatch(bad.err.join('\n'), /secret/);
    const absent = captureIO(envWithoutOttoSettings(), dir);
    assert.equal(await main(['transfer', '--from', 'sqlite:./nope.db', '--to', 'jsonl:./x'], absent.io), 1);
    assert.match(absent.err.join('\n'), /UNAVAILABLE: there is no SQLite database at .*nope\.db/);
    assert.ok(!existsSync(join(dir, 'nope.db')), 'a missing source is not created');
    const same = captureIO(envWithoutOttoSettings(), dir);
    assert.equal(await main(['transfer', '--from', 'sqlite:./a.db', '--to', `sqlite:${join(dir, 'a.db')}`], same.io), 2);
    assert.match(same.err.join('\n'), /same store/);
  });

  for (const kind of ['sqlite', 'jsonl'] as const) {
    it(`a transfer to ${kind} killed halfway (SIGKILL) resumes when run again: equal, nothing duplicated, source untouched`, async () => {
      const src = await source(20_000);
      const to = kind === 'sqlite' ? `sqlite:${join(dir, 'target.db')}` : `jsonl:${join(dir, 'target')}`;
      const args = [bin, 'transfer', '--from', src.url, '--to', to, '--batch-size', '50'];
      const child = spawn(process.execPath, args, { cwd: dir, env: envWithoutOttoSettings(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let killed = false;
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        if (!killed && /^transfer \S+ \(\d+\/\d+\): /m.test(stderr)) {
          killed = true;
          child.kill('SIGKILL');
        }
      });
      const [, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
      assert.equal(signal, 'SIGKILL', `killed after its first progress line; stderr:\n${stderr}`);
      const interrupted = await openStoreUrl(to, { source: true });
      try {
        const checkpoints = await interrupted.collection({ name: '_transfers', schemaVersion: 1, indexes: [] });
        assert.equal((await checkpoints.get({ id: transferKey(`sqlite:${src.path}`) }))?.state, 'running', 'the first run was stopped before it finished');
      } finally {
        await interrupted.close();
      }

      const rerun = captureIO(envWithoutOttoSettings(), dir);
      assert.equal(await main(args.slice(1), rerun.io), 0, rerun.text());
      assert.match(rerun.out.join('\n'), /resumed an interrupted run/);
      assert.match(rerun.out.join('\n'), /^ {2}messages +\d+ +\d+ /m);
      const report = await verifyUrls(src.url, to);
      assert.equal(report.equal, true, JSON.stringify(report.collections.filter((c) => !c.equal)));
      const [a, b] = [await counts(src.url), await counts(to)];
      for (const name of ['bots', 'guidelines', 'messages', '_counters', 'custom_notes']) assert.equal(b[name], a[name], `${name}: nothing duplicated`);
      const untouched = await verifyUrls(src.snapshot, src.url);
      assert.equal(untouched.equal, true, 'the source is what it was before the transfer');
      assert.equal((await counts(src.url))._transfers, undefined, 'no checkpoint was written to the source');
    });
  }

  it('verify exits 0 when equal and 1 when not, naming the ids with --verbose', async () => {
    const src = await source(200);
    const copy = `jsonl:${join(dir, 'copy')}`;
    const t = captureIO(envWithoutOttoSettings(), dir);
    assert.equal(await main(['transfer', '--from', src.url, '--to', copy], t.io), 0, t.text());
    assert.match(t.out.join('\n'), /^ {2}total +\d+/m);
    assert.match(t.out.join('\n'), /check it: otto verify --a sqlite:.* --b jsonl:/);
    const equal = captureIO(envWithoutOttoSettings(), dir);
    assert.equal(await main(['verify', '--a', src.url, '--b', copy], equal.io), 0, equal.text());
    assert.match(equal.out.join('\n'), /^ {2}messages +200 +200 +[0-9a-f]{12} +[0-9a-f]{12} +equal$/m);

    const store = await openStoreUrl(copy);
    const messages = await store.collection({ name: 'messages', schemaVersion: 1, indexes: [] });
    await messages.update({ id: 'msg_0000007', patch: { content: 'changed' } });
    await messages.delete({ id: 'msg_0000008' });
    await messages.insert({ doc: { id: 'msg_extra', conversation_id: 'conv_0', offset: 999, role: 'user', content: 'extra' } });
    await store.close();

    const terse = captureIO(envWithoutOttoSettings(), dir);
    assert.equal(await main(['verify', '--a', src.url, '--b', copy], terse.io), 1);
    assert.match(terse.out.join('\n'), /messages +200 +200 .*DIFFERENT: 1 missing in b, 1 missing in a, 1 different/);
    assert.doesNotMatch(terse.out.join('\n'), /msg_0000008/);
    assert.match(terse.out.join('\n'), /--verbose/);
    const verbose = captureIO(envWithoutOttoSettings(), dir);
    assert.equal(await main(['verify', '--a', src.url, '--b', copy, '--verbose'], verbose.io), 1);
    const text = verbose.out.join('\n');
    assert.match(text, /missing in b: msg_0000008$/m);
    assert.match(text, /missing in a: msg_extra$/m);
    assert.match(text, /different: msg_0000007$/m);
  });

  it('an import reaches the configured store\'s mirrors through its change log', async () => {
    const src = await source(120);
    const report = await importIntoMirroredStore({ env: envWithoutOttoSettings({ OTTO_DATA_DIR: join(dir, 'primary'), OTTO_MIRRORS: 'jsonl:./mirror' }), cwd: dir, from: src.url, mirrorUrl: 'jsonl:./mirror' });
    assert.equal(report.equal, true, JSON.stringify(report.collections.filter((c) => !c.equal)));
  });

  it('export to a JSONL folder and import it into a fresh store: equal, and the export is compacted', async () => {
    const src = await source(300);
    const primary = envWithoutOttoSettings({ OTTO_DATA_DIR: dir, OTTO_SQLITE_FILE: 'source.db' });
    const exported = captureIO(primary, dir);
    assert.equal(await main(['export', '--to', 'jsonl:./backup'], exported.io), 0, exported.text());
    assert.ok(existsSync(join(dir, 'backup', 'messages.snapshot.jsonl')));
    const fresh = envWithoutOttoSettings({ OTTO_DATA_DIR: join(dir, 'fresh') });
    const imported = captureIO(fresh, dir);
    assert.equal(await main(['import', '--from', 'jsonl:./backup'], imported.io), 0, imported.text());
    const total = migrationsFor('sqlite').length;
    assert.match(imported.err.join('\n'), new RegExp(`migration ${total}/${total}`));
    const report = await verifyUrls(src.url, `sqlite:${join(dir, 'fresh', 'otto.db')}`);
    assert.equal(report.equal, true, JSON.stringify(report.collections.filter((c) => !c.equal)));
    const self = captureIO(primary, dir);
    assert.equal(await main(['export', '--to', `sqlite:${src.path}`], self.io), 2);
    const nothing = captureIO(envWithoutOttoSettings({ OTTO_DATA_DIR: join(dir, 'empty') }), dir);
    assert.equal(await main(['export', '--to', 'jsonl:./other'], nothing.io), 1);
    assert.match(nothing.err.join('\n'), /no SQLite database at/);
  });
});
