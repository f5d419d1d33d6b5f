import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { createMongoStore } from '../../src/storage/mongodb/mongodb-store.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';
import { captureIO } from '../support/cli.ts';

const mongo = await mongoTestTarget();
if (!('skip' in mongo)) after(() => mongo.stop());

describe('otto doctor', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'otto-doctor-'));
    env = { OTTO_DATA_DIR: dir };
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function doctor(args: string[] = [], environment = env): Promise<{ code: number; text: string }> {
    const c = captureIO(environment, dir);
    const code = await main(['doctor', ...args], c.io);
    return { code, text: c.text() };
  }

  it('on a healthy SQLite store: every check ok, exit 0', async () => {
    assert.equal(await main(['migrate', 'up'], captureIO(env, dir).io), 0);
    const { code, text } = await doctor();
    assert.equal(code, 0, text);
    for (const check of ['configuration', 'data dir', 'connection', 'capabilities', 'migrations', 'indexes']) {
      assert.match(text, new RegExp(`^ok +${check} `, 'm'), check);
    }
    assert.match(text, /^ok +disk space +|^warn +disk space +/m);
    assert.match(text, /^ok +connection +sqlite at .*otto\.db \(SQLite [\d.]+\)/m);
    assert.match(text, /^ok +migrations +(\d+)\/\1 applied$/m);
    assert.match(text, /^ok +indexes +\d+ collection\(s\) have exactly Otto's indexes$/m);
    assert.doesNotMatch(text, /^FAIL/m);
  });

  it('reports a missing index with its fix and exits 1; an extra index is a warning; --fix repairs', async () => {
    assert.equal(await main(['migrate', 'up'], captureIO(env, dir).io), 0);
    const db = new DatabaseSync(join(dir, 'otto.db'));
    db.exec('DROP INDEX "bots__owner_name"');
    db.exec('CREATE INDEX "messages__by_role" ON "messages" (json_extract(doc, \'$.role\'))');
    db.close();
    const broken = await doctor();
    assert.equal(broken.code, 1, broken.text);
    assert.match(broken.text, /^FAIL +indexes +bots: missing index owner_name \(owner_id, name_key, unique\)$/m);
    assert.match(broken.text, /^ +fix: `otto doctor --fix` creates missing indexes/m);
    assert.match(broken.text, /^warn +indexes +messages: index by_role is not one of Otto's$/m);
    assert.match(broken.text, /fix: sqlite3 .*otto\.db 'DROP INDEX "messages__by_role"'/);
    assert.match(broken.text, /1 problem\(s\) to fix, 1 warning\(s\)/);

    const fixed = await doctor(['--fix']);
    assert.equal(fixed.code, 0, fixed.text);
    assert.match(fixed.text, /fixed: bots: created owner_name/);
    const again = await doctor();
    assert.equal(again.code, 0, again.text);
    assert.doesNotMatch(again.text, /missing index/);
  });

  it('fails on an invalid configuration, naming the variable', async () => {
    const { code, text } = await doctor([], { ...env, OTTO_STORAGE: 'postgres' });
    assert.equal(code, 1);
    assert.match(text, /^FAIL +configuration +OTTO_STORAGE must be sqlite, mongodb or memory/m);
    assert.match(text, /fix: /);
  });

  it('warns (exit 0) when there is no database yet, and creates none', async () => {
    const { code, text } = await doctor();
    assert.equal(code, 0, text);
    assert.match(text, /^warn +connection +there is no database at .*otto\.db yet$/m);
    assert.match(text, /fix: `otto migrate up` creates it/);
    assert.ok(!existsSync(join(dir, 'otto.db')));
  });

  it('fails with a fix when MongoDB cannot be reached', async () => {
    const { code, text } = await doctor([], { ...env, OTTO_STORAGE: 'mongodb', MONGODB_URI: 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300' });
    assert.equal(code, 1, text);
    assert.match(text, /^FAIL +connection +cannot open the mongodb store: /m);
    assert.match(text, /fix: check MONGODB_URI and that the server is running/);
  });

  it('on a healthy MongoDB store: exit 0, server version shown', { skip: 'skip' in mongo ? mongo.skip : undefined }, async () => {
    if ('skip' in mongo) return;
    const database = `otto_doctor_${randomBytes(5).toString('hex')}`;
    const mongoEnv = { ...env, OTTO_STORAGE: 'mongodb', MONGODB_URI: mongo.uri, MONGODB_DATABASE: database };
    try {
      assert.equal(await main(['migrate', 'up'], captureIO(mongoEnv, dir).io), 0);
      const { code, text } = await doctor([], mongoEnv);
      assert.equal(code, 0, text);
      assert.match(text, /^ok +connection +mongodb at .*\/otto_doctor_\w+ \(MongoDB [^)]+\)/m);
      assert.match(text, /^ok +indexes +\d+ collection\(s\) have exactly Otto's indexes$/m);
    } finally {
      const store = await createMongoStore({ uri: mongo.uri, database });
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    }
  });
});
