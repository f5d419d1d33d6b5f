/**
 * `GET /admin/doctor` over real HTTP on a real SQLite file: the findings of `otto doctor` for the
 * running server, schema-first (in /openapi.json), refused to callers who are not admins.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { createOtto, type Otto } from '../../src/http/otto.ts';

let dir: string;
let otto: Otto;
let base: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otto-admin-doctor-'));
  otto = await createOtto({ config: loadConfig({ OTTO_DATA_DIR: dir, OTTO_MIRRORS: `jsonl:${join(dir, 'mirror')}` }, dir) });
  // Test seam: the caller the auth hook resolved, replaced by an owner who is not an admin.
  otto.app.addHook('preHandler', async (request) => {
    if (request.headers['x-test-owner']) request.caller = { owner_id: String(request.headers['x-test-owner']), admin: false };
  });
  base = await otto.app.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  await otto.close();
  await rm(dir, { recursive: true, force: true });
});

async function get(path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(20_000) });
  return { status: response.status, json: (await response.json()) as any };
}

describe('GET /admin/doctor', () => {
  it("answers the running server's findings to an admin", async () => {
    const { status, json } = await get('/admin/doctor');
    assert.equal(status, 200);
    const checks = json.findings.map((f: { check: string }) => f.check);
    for (const check of ['configuration', 'data dir', 'connection', 'capabilities', 'migrations', 'indexes', 'mirror']) assert.ok(checks.includes(check), `${check} in ${checks.join(', ')}`);
    for (const f of json.findings) {
      assert.ok(['ok', 'warn', 'fail'].includes(f.status));
      assert.equal(typeof f.message, 'string');
      if (f.status !== 'ok') assert.equal(typeof f.fix, 'string', `${f.check} has a fix`);
    }
    assert.equal(json.findings.find((f: { check: string }) => f.check === 'migrations').status, 'ok');
    assert.ok(!checks.includes('spool'), 'no spool on a SQLite primary');
  });

  it('is refused to a caller who is not an admin', async () => {
    const { status, json } = await get('/admin/doctor', { 'x-test-owner': 'alice' });
    assert.equal(status, 403);
    assert.equal(json.error.code, 'FORBIDDEN');
  });

  it('is described in the OpenAPI document', async () => {
    const { json } = await get('/openapi.json');
    const route = json.paths['/admin/doctor'].get;
    assert.ok(route.responses['200'].content['application/json'].schema.properties.findings);
  });
});
