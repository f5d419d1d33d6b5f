/**
 * The JSONL fsync policy named in a store URL (`jsonl:<dir>?fsync=always|batch|never`): parsed,
 * rejected clearly when wrong (in a URL and in OTTO_MIRRORS), kept through the configuration,
 * and used when a mirror or a transfer target opens the folder. Mirrors default to `batch`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { openTarget, parseTargetUrl } from '../../src/storage/changes/index.ts';
import { isStorageError } from '../../src/storage/contract.ts';
import type { JsonlStore } from '../../src/storage/jsonl/jsonl-store.ts';
import { absoluteStoreUrl, describeStoreUrl, openStoreUrl, parseStoreUrl } from '../../src/storage/store-url.ts';

const temps: string[] = [];
after(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'otto-fsync-'));
  temps.push(dir);
  return dir;
}

function invalid(text: string): string {
  try {
    parseStoreUrl(text);
  } catch (error) {
    assert.ok(isStorageError(error, 'INVALID'), String(error));
    assert.equal(error.field, 'store');
    return error.message;
  }
  assert.fail(`${text} should be INVALID`);
}

describe('jsonl:<dir>?fsync=…', () => {
  it('parses each policy, and no option as none', () => {
    for (const fsync of ['always', 'batch', 'never'] as const) assert.deepEqual(parseStoreUrl(`jsonl:./backup?fsync=${fsync}`), { kind: 'jsonl', dir: './backup', fsync });
    assert.deepEqual(parseStoreUrl('jsonl:./backup'), { kind: 'jsonl', dir: './backup' });
  });

  it('rejects an unknown policy or option with a message naming the allowed ones', () => {
    assert.match(invalid('jsonl:./b?fsync=sometimes'), /fsync must be always, batch or never, got "sometimes"/);
    assert.match(invalid('jsonl:./b?fsync='), /fsync must be always, batch or never, got ""/);
    assert.match(invalid('jsonl:./b?sync=always'), /jsonl: has no option "sync"; the only one is fsync=always\|batch\|never/);
    assert.match(invalid('jsonl:?fsync=always'), /jsonl: needs a folder/);
  });

  it('is left out of the display (a mirror keeps its id) and kept in the absolute URL', () => {
    assert.equal(describeStoreUrl('jsonl:b?fsync=never', '/srv'), 'jsonl:/srv/b');
    assert.equal(absoluteStoreUrl('jsonl:b?fsync=never', '/srv'), 'jsonl:/srv/b?fsync=never');
    assert.equal(absoluteStoreUrl('jsonl:b', '/srv'), 'jsonl:/srv/b');
    assert.equal(parseTargetUrl('jsonl:/srv/b?fsync=always').display, parseTargetUrl('jsonl:/srv/b').display);
  });

  it('survives OTTO_MIRRORS, and a bad policy there is a configuration problem naming the entry', () => {
    const config = loadConfig({ OTTO_STORAGE: 'memory', OTTO_MIRRORS: 'jsonl:./a?fsync=always,jsonl:./b' }, '/srv/otto');
    assert.deepEqual(config.mirrors.urls, ['jsonl:/srv/otto/a?fsync=always', 'jsonl:/srv/otto/b']);
    assert.throws(
      () => loadConfig({ OTTO_STORAGE: 'memory', OTTO_MIRRORS: 'jsonl:./a,jsonl:./b?fsync=fast' }, '/srv/otto'),
      (error: unknown) => error instanceof ConfigError && /OTTO_MIRRORS entry 2: jsonl: fsync must be always, batch or never, got "fast"/.test(error.message),
    );
    assert.throws(() => loadConfig({ OTTO_STORAGE: 'memory', OTTO_MIRRORS: 'jsonl:./a?fsync=never,jsonl:./a?fsync=always' }, '/srv/otto'), /entry 2 repeats jsonl:\/srv\/otto\/a/);
  });

  it('opens mirrors with the named policy, batch when none, and stores with always by default', async () => {
    const dir = await tempDir();
    const open = async (url: string, mirror: boolean): Promise<string> => {
      const store = (mirror ? await openTarget(parseTargetUrl(url)) : await openStoreUrl(url)) as JsonlStore;
      try {
        return store.fsync;
      } finally {
        await store.close();
      }
    };
    assert.equal(await open(`jsonl:${dir}`, true), 'batch');
    assert.equal(await open(`jsonl:${dir}?fsync=always`, true), 'always');
    assert.equal(await open(`jsonl:${dir}?fsync=never`, true), 'never');
    assert.equal(await open(`jsonl:${dir}`, false), 'always');
    assert.equal(await open(`jsonl:${dir}?fsync=batch`, false), 'batch');
  });
});
