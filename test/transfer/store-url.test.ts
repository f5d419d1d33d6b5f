import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isStorageError } from '../../src/storage/contract.ts';
import { migrationStatus, migrationsFor } from '../../src/storage/migrations/index.ts';
import { describeStoreUrl, openStoreUrl, openStoreUrlMigrated, parseStoreUrl } from '../../src/storage/store-url.ts';
import { tempDir } from './fixtures.ts';

function invalid(text: string): string {
  try {
    parseStoreUrl(text);
  } catch (error) {
    assert.ok(isStorageError(error, 'INVALID'), String(error));
    return error.message;
  }
  assert.fail(`${text} should be INVALID`);
}

describe('store URLs', () => {
  it('parses sqlite:, jsonl:, mongodb:// and mongodb+srv://, memory:', () => {
    assert.deepEqual(parseStoreUrl('sqlite:./data/otto.db'), { kind: 'sqlite', path: './data/otto.db' });
    assert.deepEqual(parseStoreUrl('sqlite:///var/otto.db'), { kind: 'sqlite', path: '/var/otto.db' });
    assert.deepEqual(parseStoreUrl(' jsonl:backup '), { kind: 'jsonl', dir: 'backup' });
    assert.deepEqual(parseStoreUrl('mongodb://u:p%40ss@h1:27018,h2/otto?authSource=admin'), { kind: 'mongodb', uri: 'mongodb://u:p%40ss@h1:27018,h2/otto?authSource=admin', database: 'otto' });
    assert.deepEqual(parseStoreUrl('mongodb+srv://cluster.example.net/prod'), { kind: 'mongodb', uri: 'mongodb+srv://cluster.example.net/prod', database: 'prod' });
    assert.deepEqual(parseStoreUrl('memory:'), { kind: 'memory' });
  });

  it('rejects what it cannot use with INVALID naming the problem, never quoting a password', () => {
    assert.match(invalid(''), /empty.*sqlite:<file>, jsonl:<folder>, mongodb:/);
    assert.match(invalid('sqlite:'), /sqlite: needs a file, e\.g\. sqlite:\.\/data\/otto\.db/);
    assert.match(invalid('jsonl:'), /jsonl: needs a folder/);
    assert.match(invalid('./data/otto.db'), /needs a kind in front of the path, e\.g\. sqlite:\.\/data\/otto\.db/);
    assert.match(invalid('backups/today'), /e\.g\. jsonl:backups\/today/);
    assert.match(invalid('mongodb://127.0.0.1:27017/'), /names no database: .*mongodb:\/\/127\.0\.0\.1:27017\/otto/);
    assert.match(invalid('mongodb://user:secret@127.0.0.1'), /names no database/);
    assert.doesNotMatch(invalid('mongodb://user:secret@127.0.0.1'), /secret/);
    assert.match(invalid('mongodb://user:pa/ss@host/db'), /escape "\/" and "@"/);
    assert.match(invalid('mongodb:///otto'), /names no host/);
    assert.match(invalid('mongodb://h/bad.name'), /database "bad\.name" must be/);
    assert.match(invalid('postgres://user:secret@h/db'), /unknown kind of store "postgres:"/);
    assert.doesNotMatch(invalid('postgres://user:secret@h/db'), /secret/);
    assert.match(invalid('memory:x'), /memory: takes nothing/);
  });

  it('describes a store without credentials or options, with absolute paths', () => {
    assert.equal(describeStoreUrl('mongodb://user:secret@h1,h2:27018/otto?tls=true&password=x'), 'mongodb://h1:27017,h2:27018/otto');
    assert.equal(describeStoreUrl('mongodb+srv://user:secret@cluster.example.net/prod'), 'mongodb+srv://cluster.example.net/prod');
    assert.equal(describeStoreUrl('sqlite:data/otto.db', '/srv/otto'), 'sqlite:/srv/otto/data/otto.db');
    assert.equal(describeStoreUrl('jsonl:./backup', '/srv/otto'), 'jsonl:/srv/otto/backup');
    assert.equal(describeStoreUrl('memory:'), 'memory:');
  });

  it('opens each kind; as a source, a missing file or folder is UNAVAILABLE and is not created', async () => {
    const { dir, cleanup } = await tempDir('otto-store-url-');
    try {
      for (const url of ['sqlite:./a.db', 'jsonl:./b', 'memory:']) {
        const store = await openStoreUrlMigrated(url, { cwd: dir });
        assert.equal(store.engine, url.slice(0, url.indexOf(':')));
        assert.ok((await store.listCollections()).includes('bots'), `${url} is migrated`);
        const status = await migrationStatus({ store, migrations: migrationsFor(store.engine) });
        assert.equal(status.pending.length, 0, `${url}: every migration applied`);
        assert.equal(status.applied.length, migrationsFor(store.engine).length);
        await store.close();
      }
      for (const url of ['sqlite:./missing.db', 'jsonl:./missing']) {
        const error = await openStoreUrl(url, { cwd: dir, source: true }).catch((e: unknown) => e);
        assert.ok(isStorageError(error, 'UNAVAILABLE'), `${url}: ${String(error)}`);
      }
      assert.ok(!existsSync(join(dir, 'missing.db')) && !existsSync(join(dir, 'missing')));
      const readOnly = await openStoreUrl('jsonl:./b', { cwd: dir, source: true });
      assert.equal((readOnly as unknown as { readOnly: boolean }).readOnly, true);
      await readOnly.close();
    } finally {
      await cleanup();
    }
  });
});
