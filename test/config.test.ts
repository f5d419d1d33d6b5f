import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, withDotEnv } from '../src/config.ts';

describe('configuration', () => {
  it('defaults to SQLite under ./data on 127.0.0.1:8800 with migrations on', () => {
    const config = loadConfig({}, '/srv/otto');
    assert.equal(config.storage, 'sqlite');
    assert.equal(config.sqlite.path, '/srv/otto/data/otto.db');
    assert.equal(config.http.host, '127.0.0.1');
    assert.equal(config.http.port, 8800);
    assert.equal(config.autoMigrate, true);
    assert.equal(config.mongodb.database, 'otto');
  });

  it('reads overrides and the MongoDB aliases', () => {
    const config = loadConfig({ OTTO_STORAGE: 'mongodb', MONGODB_URL: 'mongodb://127.0.0.1:1/', MONGODB_DATABASE_NAME: 'bots', PORT: '9000', OTTO_HOST: '0.0.0.0', OTTO_AUTO_MIGRATE: 'false', OTTO_DATA_DIR: '/var/otto' }, '/x');
    assert.equal(config.mongodb.uri, 'mongodb://127.0.0.1:1/');
    assert.equal(config.mongodb.database, 'bots');
    assert.equal(config.http.port, 9000);
    assert.equal(config.http.host, '0.0.0.0');
    assert.equal(config.autoMigrate, false);
    assert.equal(config.sqlite.path, '/var/otto/otto.db');
    assert.equal(loadConfig({ MONGODB_URI: 'mongodb://a/', MONGODB_URL: 'mongodb://b/', MONGODB_DATABASE: 'x', MONGODB_DATABASE_NAME: 'y' }).mongodb.database, 'x');
  });

  it('lists every problem at once, naming the variable', () => {
    const error = (() => {
      try {
        loadConfig({ OTTO_STORAGE: 'postgres', PORT: 'eighty', OTTO_AUTO_MIGRATE: 'maybe' });
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof ConfigError);
    assert.equal(error.problems.length, 3);
    assert.match(error.message, /OTTO_STORAGE.*\n.*PORT.*\n.*OTTO_AUTO_MIGRATE/s);
    assert.throws(() => loadConfig({ OTTO_STORAGE: 'mongodb' }), /needs MONGODB_URI/);
  });

  it('reads .env without overriding variables already set', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-env-'));
    try {
      await writeFile(join(dir, '.env'), 'PORT=9100\nOTTO_HOST=127.0.0.2\n');
      const env = withDotEnv({ PORT: '9200' }, dir);
      assert.equal(env.PORT, '9200');
      assert.equal(env.OTTO_HOST, '127.0.0.2');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
