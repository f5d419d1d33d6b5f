import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { collections } from '../../src/domain/collections.ts';
import { isStorageError } from '../../src/storage/contract.ts';
import { openStorage } from '../../src/storage/index.ts';
import { createMemoryStore } from '../../src/storage/memory/memory-store.ts';
import { migrationStatus, migrationsFor, runMigrations, type Migration } from '../../src/storage/migrations/index.ts';

const step = (id: string, effect: () => void = () => {}): Migration => ({ id, description: `step ${id}`, up: async () => effect() });

describe('migrations', () => {
  it('applies pending migrations in order, records each in _migrations, and is a no-op the second time', async () => {
    const store = createMemoryStore();
    const ran: string[] = [];
    const list = [step('0001_a', () => ran.push('a')), step('0002_b', () => ran.push('b'))];
    const first = await runMigrations({ store, migrations: list, ottoVersion: '1.0.0' });
    assert.deepEqual(first.appliedNow, ['0001_a', '0002_b']);
    assert.deepEqual(ran, ['a', 'b']);
    const again = await runMigrations({ store, migrations: list, ottoVersion: '1.0.0' });
    assert.deepEqual(again.appliedNow, []);
    assert.deepEqual(ran, ['a', 'b']);
    const record = await (await store.collection(collections.migrations)).get({ id: '0002_b' });
    assert.equal(record?.otto_version, '1.0.0');
    assert.equal(typeof record?.applied_at, 'string');
  });

  it('the shipped migrations create every declared collection, on every engine list', async () => {
    for (const engine of ['memory', 'sqlite', 'mongodb', 'jsonl']) {
      const store = createMemoryStore();
      await runMigrations({ store, migrations: migrationsFor(engine), ottoVersion: '1.0.0' });
      const present = new Set(await store.listCollections());
      const missing = Object.values(collections).map((spec) => spec.name).filter((name) => !present.has(name));
      assert.deepEqual(missing, [], `${engine}: collections no migration creates`);
      await store.close();
    }
  });

  it('reports pending migrations and applies only those', async () => {
    const store = createMemoryStore();
    await runMigrations({ store, migrations: [step('0001_a')], ottoVersion: '1.0.0' });
    const list = [step('0001_a'), step('0002_b')];
    const status = await migrationStatus({ store, migrations: list });
    assert.deepEqual(status.applied.map((r) => r.id), ['0001_a']);
    assert.deepEqual(status.pending.map((m) => m.id), ['0002_b']);
    assert.deepEqual((await runMigrations({ store, migrations: list, ottoVersion: '1.1.0' })).appliedNow, ['0002_b']);
  });

  it('refuses a database written by a newer Otto, saying what to do, and changes nothing', async () => {
    const store = createMemoryStore();
    await runMigrations({ store, migrations: [step('0001_a'), step('0002_b')], ottoVersion: '2.0.0' });
    let ran = false;
    const error = await runMigrations({ store, migrations: [step('0001_a'), step('0003_c', () => (ran = true))], ottoVersion: '1.0.0' }).catch((e: unknown) => e);
    assert.ok(isStorageError(error, 'UNSUPPORTED'));
    assert.match(error.message, /newer Otto.*0002_b.*Otto 2\.0\.0.*Upgrade Otto/s);
    assert.equal(ran, false);
  });

  it('stops at a failing migration, keeping the ones before it and recording nothing for it', async () => {
    const store = createMemoryStore();
    const failing: Migration = { id: '0002_fails', description: 'fails', up: async () => { throw new Error('boom'); } };
    await assert.rejects(runMigrations({ store, migrations: [step('0001_a'), failing, step('0003_c')], ottoVersion: '1.0.0' }), /boom/);
    const status = await migrationStatus({ store, migrations: [step('0001_a'), failing, step('0003_c')] });
    assert.deepEqual(status.applied.map((r) => r.id), ['0001_a']);
    assert.deepEqual(status.pending.map((m) => m.id), ['0002_fails', '0003_c']);
  });

  it('opens SQLite with migrations applied at startup, or only reported when turned off', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-migrate-'));
    try {
      const config = { storage: 'sqlite' as const, sqlite: { path: join(dir, 'otto.db'), synchronous: 'FULL' as const }, mongodb: { uri: undefined, database: 'otto' } };
      const off = await openStorage({ config, migrate: false });
      assert.equal(off.migrations.pending, migrationsFor('sqlite').length);
      assert.equal(off.migrations.applied, 0);
      await off.store.close();
      const on = await openStorage({ config, migrate: true });
      assert.equal(on.migrations.pending, 0);
      assert.deepEqual(on.migrations.appliedNow, migrationsFor('sqlite').map((m) => m.id));
      assert.ok((await on.store.listCollections()).includes('messages'));
      assert.ok((await on.store.listIndexes({ collection: 'messages' })).includes('conversation_offset'));
      // A newer Otto's record makes the next start refuse, with the store closed again.
      await (await on.store.collection(collections.migrations)).insert({ doc: { id: '9999_future', description: 'x', applied_at: 'x', otto_version: '99.0.0', duration_ms: 0 } });
      await on.store.close();
      await assert.rejects(openStorage({ config, migrate: true }), /newer Otto/);
      await assert.rejects(openStorage({ config, migrate: false }), /newer Otto/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
