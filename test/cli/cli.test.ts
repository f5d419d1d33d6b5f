import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { commands, main } from '../../src/cli/main.ts';
import { captureIO } from '../support/cli.ts';

const run = promisify(execFile);
const bin = new URL('../../bin/otto.js', import.meta.url).pathname;

describe('otto CLI', () => {
  it('`otto --help` lists every command, through the package bin', async () => {
    const { stdout } = await run(process.execPath, [bin, '--help']);
    for (const command of commands) assert.match(stdout, new RegExp(`^  ${command.name} `, 'm'));
    assert.match(stdout, /serve/);
    assert.match(stdout, /migrate/);
  });

  it('every command has --help', async () => {
    for (const command of commands) {
      const c = captureIO();
      assert.equal(await main([command.name, '--help'], c.io), 0, command.name);
      assert.match(c.out.join('\n'), new RegExp(`Usage: otto ${command.name}`));
    }
  });

  it('rejects unknown commands and options with exit code 2 and a pointer to --help', async () => {
    const c = captureIO();
    assert.equal(await main(['frobnicate'], c.io), 2);
    assert.match(c.err.join('\n'), /unknown command "frobnicate".*otto --help/);
    const d = captureIO();
    assert.equal(await main(['migrate', '--bogus'], d.io), 2);
    assert.match(d.err.join('\n'), /otto migrate --help/);
  });

  it('reports configuration problems with exit code 78', async () => {
    const c = captureIO({ OTTO_STORAGE: 'nope' });
    assert.equal(await main(['migrate', 'status'], c.io), 78);
    assert.match(c.err.join('\n'), /OTTO_STORAGE must be sqlite, mongodb or memory/);
  });

  it('migrate status shows pending migrations, up applies them, status is then clean', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-cli-'));
    try {
      const env = { OTTO_DATA_DIR: dir };
      const before = captureIO(env, dir);
      assert.equal(await main(['migrate', 'status'], before.io), 3);
      assert.match(before.out.join('\n'), /pending +0001_initial_collections/);
      const up = captureIO(env, dir);
      assert.equal(await main(['migrate', 'up'], up.io), 0);
      assert.match(up.out.join('\n'), /applied \d+ migration\(s\): 0001_initial_collections, 0002_accounts/);
      const after = captureIO(env, dir);
      assert.equal(await main(['migrate', 'status'], after.io), 0);
      assert.match(after.out.join('\n'), /applied +0001_initial_collections[\s\S]*up to date/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('on a Node older than 22.13, stops with one line naming the Node needed', async (t) => {
    const old = '/usr/bin/node';
    const version = await run(old, ['--version']).then((r) => r.stdout.trim(), () => null);
    const [major, minor] = (version ?? 'v99.0').slice(1).split('.').map(Number);
    if (!version || major! > 22 || (major === 22 && minor! >= 13)) return t.skip(`no Node older than 22.13 at ${old}`);
    const result = await run(old, [bin, 'serve']).then(() => null, (e: { code: number; stderr: string }) => e);
    assert.ok(result, 'must fail');
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /needs Node\.js 22\.13 or newer.*npm install && npm start/);
    const tests = await run(old, [new URL('../../scripts/run-tests.js', import.meta.url).pathname]).then(() => null, (e: { stderr: string }) => e);
    assert.match(tests?.stderr ?? '', /needs Node\.js 22\.13/);
  });
});
