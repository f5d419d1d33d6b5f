import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config.ts';
import { createOtto, type Otto } from '../../src/http/otto.ts';
import { migrationsFor, type StorageStartup } from '../../src/storage/index.ts';

describe('GET /health and /ready', () => {
  let otto: Otto;
  let app: FastifyInstance;
  let storage: StorageStartup;
  before(async () => {
    otto = await createOtto({ config: loadConfig({ OTTO_STORAGE: 'memory' }) });
    ({ app, storage } = otto);
  });
  after(async () => {
    await otto.close();
  });

  it('reports the engine, where it is, migrations and capabilities', async () => {
    const response = await app.inject({ method: 'GET', url: '/health' });
    assert.equal(response.statusCode, 200);
    const body = response.json();
    assert.equal(body.status, 'ok');
    assert.equal(body.storage.engine, 'memory');
    assert.equal(body.storage.location, storage.store.location);
    const total = migrationsFor('memory').length;
    assert.deepEqual(body.storage.migrations, { applied: total, pending: 0, total });
    assert.deepEqual(body.storage.capabilities, storage.store.capabilities);
  });

  it('is ready while storage answers, and 503 once it does not', async () => {
    assert.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200);
    const other = await createOtto({ config: loadConfig({ OTTO_STORAGE: 'memory' }) });
    await other.storage.store.close();
    assert.equal((await other.app.inject({ method: 'GET', url: '/ready' })).statusCode, 503);
    const health = (await other.app.inject({ method: 'GET', url: '/health' })).json();
    assert.equal(health.status, 'down');
    await other.close();
  });

  it('answers unknown routes with the registered JSON error shape', async () => {
    const response = await app.inject({ method: 'GET', url: '/no/such/route?x=1' });
    assert.equal(response.statusCode, 404);
    assert.deepEqual(response.json(), { error: { code: 'NOT_FOUND', message: 'no route GET /no/such/route' } });
  });
});
