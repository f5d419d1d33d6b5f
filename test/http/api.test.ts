import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Otto } from '../../src/http/otto.ts';
import { hashKey } from '../../src/services/index.ts';
import { call, testOtto } from '../support/otto.ts';

describe('bots API', () => {
  let otto: Otto;
  before(async () => (otto = await testOtto()));
  after(async () => otto.close());

  it('creates a bot and lists it after Otto, as a bare array at /bots and /agents', async () => {
    const created = await call(otto, 'POST', '/agents', { name: 'PersistenceTest', description: 'Testing persistence' });
    assert.equal(created.status, 201);
    assert.equal(created.json.name, 'PersistenceTest');
    assert.equal(created.json.version, 1);
    assert.equal(created.json.composition_mode, 'fluid');
    for (const path of ['/bots', '/agents']) {
      const list = await call(otto, 'GET', path);
      assert.equal(list.status, 200);
      assert.ok(Array.isArray(list.json));
      assert.equal(list.json[0].id, 'otto');
      assert.equal(list.json[0].built_in, true);
      assert.ok(list.json.some((b: { id: string }) => b.id === created.json.id));
    }
    assert.equal((await call(otto, 'GET', `/bots/${created.json.id}`)).json.name, 'PersistenceTest');
    assert.equal((await call(otto, 'GET', '/bots/otto')).json.built_in, true);
  });

  it('pages bot lists with a Link header', async () => {
    const fresh = await testOtto();
    try {
      for (let i = 0; i < 5; i++) await call(fresh, 'POST', '/bots', { name: `Bot ${i}` });
      const first = await call(fresh, 'GET', '/bots?limit=3');
      assert.equal(first.json.length, 4, 'Otto + 3');
      assert.match(String(first.headers.link), /rel="next"/);
      const next = /<([^>]+)>/.exec(String(first.headers.link))![1]!;
      const second = await call(fresh, 'GET', next);
      assert.deepEqual(second.json.map((b: { name: string }) => b.name), ['Bot 3', 'Bot 4']);
      assert.equal(second.headers.link, undefined);
    } finally {
      await fresh.close();
    }
  });

  it('guards PATCH with the version: a stale version gets 409 and changes nothing', async () => {
    const bot = (await call(otto, 'POST', '/bots', { name: 'Versioned' })).json;
    const first = await call(otto, 'PATCH', `/bots/${bot.id}`, { description: 'first edit', version: 1 });
    assert.equal(first.status, 200);
    assert.equal(first.json.version, 2);
    const stale = await call(otto, 'PATCH', `/bots/${bot.id}`, { description: 'lost update', version: 1 });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.error.code, 'CONFLICT');
    assert.equal(stale.json.error.field, 'version');
    assert.equal((await call(otto, 'GET', `/bots/${bot.id}`)).json.description, 'first edit');
  });

  it('manages guidelines, journeys, tools and mappings, and DELETE removes them all', async () => {
    const bot = (await call(otto, 'POST', '/bots', { name: 'Full' })).json;
    const g = await call(otto, 'POST', `/bots/${bot.id}/guidelines`, { condition: 'the user asks about refunds', action: 'explain the 30-day refund policy' });
    assert.equal(g.status, 201);
    assert.equal(g.json.enabled, true);
    assert.equal(g.json.criticality, 'medium');
    const j = await call(otto, 'POST', `/bots/${bot.id}/journeys`, { title: 'Onboarding', conditions: ['I am new'], steps: [{ instruction: 'greet' }] });
    assert.equal(j.status, 201);
    const t = await call(otto, 'POST', `/bots/${bot.id}/tools`, { name: 'order_status', endpoint: { url: 'http://127.0.0.1:9/orders' } });
    assert.equal(t.status, 201);
    assert.equal(t.json.endpoint.method, 'POST');
    const m = await call(otto, 'POST', `/bots/${bot.id}/tool-mappings`, { guideline_id: g.json.id, tool_name: 'order_status' });
    assert.equal(m.status, 201);
    assert.equal((await call(otto, 'POST', `/bots/${bot.id}/tool-mappings`, { guideline_id: g.json.id, tool_name: 'order_status' })).status, 409);
    assert.equal((await call(otto, 'POST', `/bots/${bot.id}/tool-mappings`, { guideline_id: g.json.id, tool_name: 'nope' })).json.error.field, 'tool_name');
    const patched = await call(otto, 'PATCH', `/bots/${bot.id}/guidelines/${g.json.id}`, { enabled: false, version: 1 });
    assert.equal(patched.json.enabled, false);
    for (const kind of ['guidelines', 'journeys', 'tools', 'tool-mappings']) {
      const page = await call(otto, 'GET', `/bots/${bot.id}/${kind}`);
      assert.equal(page.json.items.length, 1, kind);
    }
    assert.equal((await call(otto, 'DELETE', `/bots/${bot.id}`)).status, 204);
    assert.equal((await call(otto, 'GET', `/bots/${bot.id}`)).status, 404);
    assert.equal((await call(otto, 'GET', `/bots/${bot.id}/guidelines`)).status, 404);
    const guidelines = await otto.storage.store.collection({ name: 'guidelines', schemaVersion: 1, indexes: [] });
    assert.equal(await guidelines.count(), 0, 'definitions are gone from the store');
  });

  it('refuses to change or delete Otto, the built-in bot', async () => {
    assert.equal((await call(otto, 'PATCH', '/bots/otto', { name: 'x' })).status, 403);
    assert.equal((await call(otto, 'DELETE', '/bots/otto')).status, 403);
    assert.equal((await call(otto, 'POST', '/bots', { name: 'Otto' })).status, 409);
  });
});

describe('bad input gets a clear 4xx naming the field, and the server stays up', () => {
  let otto: Otto;
  before(async () => (otto = await testOtto({ OTTO_BODY_LIMIT_BYTES: '4096' })));
  after(async () => otto.close());

  const cases: Array<[string, () => Promise<{ status: number; json: any }>, number, string, string | undefined]> = [];
  it('covers invalid JSON, wrong types, unknown fields, operators, oversized and non-JSON bodies, unknown ids', async () => {
    const raw = (payload: string, type = 'application/json') => otto.app.inject({ method: 'POST', url: '/bots', headers: { 'content-type': type }, payload }).then((r) => ({ status: r.statusCode, json: r.json() }));
    cases.push(
      ['invalid JSON', () => raw('{"name": '), 400, 'INVALID_JSON', undefined],
      ['empty body', () => raw(''), 400, 'INVALID_JSON', undefined],
      ['wrong type', () => call(otto, 'POST', '/bots', { name: 42 }), 400, 'INVALID', 'name'],
      ['missing field', () => call(otto, 'POST', '/bots', { description: 'x' }), 400, 'INVALID', 'name'],
      ['blank name', () => call(otto, 'POST', '/bots', { name: '   ' }), 400, 'INVALID', 'name'],
      ['unknown field', () => call(otto, 'POST', '/bots', { name: 'x', owner_id: 'someone-else' }), 400, 'INVALID', 'owner_id'],
      ['operator as a value', () => call(otto, 'POST', '/bots', { name: { $ne: null } }), 400, 'INVALID', 'name'],
      ['operator key in free-form metadata', () => call(otto, 'POST', '/bots', { name: 'meta', metadata: { $where: '1' } }), 400, 'INVALID', 'metadata'],
      ['bad enum', () => call(otto, 'POST', '/bots', { name: 'x', composition_mode: 'loud' }), 400, 'INVALID', 'composition_mode'],
      ['operator in query', () => call(otto, 'GET', '/conversations?bot_id[$ne]=x'), 400, 'INVALID', undefined],
      ['bad query type', () => call(otto, 'GET', '/bots?limit=lots'), 400, 'INVALID', 'limit'],
      ['bad cursor', () => call(otto, 'GET', '/bots?after=garbage'), 400, 'INVALID', 'after'],
      ['id with odd characters', () => call(otto, 'GET', '/bots/..%2F..%2Fetc'), 400, 'INVALID', undefined],
      ['oversized body', () => call(otto, 'POST', '/bots', { name: 'x', description: 'y'.repeat(10_000) }), 413, 'PAYLOAD_TOO_LARGE', undefined],
      ['not JSON', () => raw('name=x', 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE', undefined],
      ['unknown bot', () => call(otto, 'GET', '/bots/bot_nope'), 404, 'NOT_FOUND', 'bot_id'],
      ['unknown conversation', () => call(otto, 'GET', '/conversations/conv_nope'), 404, 'NOT_FOUND', 'conversation_id'],
      ['unknown route', () => call(otto, 'DELETE', '/nowhere'), 404, 'NOT_FOUND', undefined],
    );
    for (const [name, run, status, code, field] of cases) {
      const response = await run();
      assert.equal(response.status, status, `${name}: ${JSON.stringify(response.json)}`);
      assert.equal(response.json.error.code, code, name);
      assert.equal(typeof response.json.error.message, 'string', name);
      if (field) assert.equal(response.json.error.field, field, `${name}: ${JSON.stringify(response.json)}`);
    }
    assert.equal((await call(otto, 'GET', '/health')).status, 200, 'still up');
    const bots = await call(otto, 'GET', '/bots');
    assert.deepEqual(bots.json.map((b: { id: string }) => b.id), ['otto'], 'nothing bad was stored');
  });
});

describe('API keys', () => {
  let otto: Otto;
  const alice = 'alice-key-0123456789abcdef';
  const bob = 'bob-key-0123456789abcdef00';
  before(async () => (otto = await testOtto({ OTTO_API_KEYS: `alice:${alice},bob:${bob}` })));
  after(async () => otto.close());
  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  it('guards every route but /health and /ready', async () => {
    assert.equal((await call(otto, 'GET', '/health')).status, 200);
    assert.equal((await call(otto, 'GET', '/ready')).status, 200);
    for (const [method, url] of [['GET', '/bots'], ['POST', '/chat'], ['GET', '/conversations'], ['GET', '/openapi.json'], ['GET', '/docs']]) {
      const response = await call(otto, method!, url!);
      assert.equal(response.status, 401, `${method} ${url}`);
      assert.equal(response.json.error.code, 'UNAUTHORIZED');
    }
    assert.equal((await call(otto, 'GET', '/bots', undefined, as('wrong-key-0123456789abcdef'))).status, 401);
    assert.equal((await call(otto, 'GET', '/bots', undefined, { 'x-api-key': alice })).status, 200);
  });

  it('treats configured keys as admin keys: writes belong to the key\'s owner, everyone\'s data is visible', async () => {
    const mine = (await call(otto, 'POST', '/bots', { name: 'Alice bot' }, as(alice))).json;
    assert.equal(mine.owner_id, 'alice');
    await call(otto, 'POST', '/bots', { name: 'Bob bot' }, as(bob));
    const aliceList = (await call(otto, 'GET', '/bots', undefined, as(alice))).json.map((b: { name: string }) => b.name);
    assert.deepEqual(aliceList, ['Otto', 'Alice bot', 'Bob bot']);
    assert.equal((await call(otto, 'GET', `/bots/${mine.id}`, undefined, as(bob))).status, 200);
    const me = (await call(otto, 'GET', '/me', undefined, as(bob))).json;
    assert.equal(me.auth, 'config');
    assert.equal(me.user.role, 'admin');
    assert.equal(me.user.id, 'bob');
    // Per-user isolation (non-admin users with access keys) is covered by test/http/accounts.test.ts and tenant-isolation.test.ts.
  });

  it('stores keys hashed, never in plaintext', async () => {
    const keys = await otto.storage.store.collection({ name: 'api_keys', schemaVersion: 1, indexes: [] });
    const stored = JSON.stringify((await keys.find({ limit: 100 })).items);
    assert.ok(!stored.includes(alice) && !stored.includes(bob));
    assert.ok(stored.includes(hashKey(alice)));
  });

  it('refuses to serve beyond loopback without a key', async () => {
    await assert.rejects(testOtto({ OTTO_HOST: '0.0.0.0' }), /refusing to listen on 0\.0\.0\.0 without an admin access key.*otto users create --username <name> --admin.*OTTO_API_KEYS/);
    const withKey = await testOtto({ OTTO_HOST: '0.0.0.0', OTTO_API_KEYS: `ops:${alice}` });
    await withKey.close();
  });
});

describe('OpenAPI', () => {
  it('documents every route with its schemas at /openapi.json and serves /docs', async () => {
    const otto = await testOtto();
    try {
      const doc = (await call(otto, 'GET', '/openapi.json')).json;
      assert.equal(doc.openapi, '3.0.3');
      for (const path of ['/bots', '/agents', '/bots/{id}', '/bots/{id}/guidelines', '/bots/{id}/tool-mappings', '/conversations', '/conversations/{id}/messages', '/conversations/{id}/events', '/chat', '/health']) {
        assert.ok(doc.paths[path], `missing ${path}`);
      }
      assert.deepEqual(doc.paths['/bots'].post.requestBody.content['application/json'].schema.required, ['name']);
      const docs = await otto.app.inject({ method: 'GET', url: '/docs/' });
      assert.equal(docs.statusCode, 200);
      assert.match(docs.body, /<html/i);
    } finally {
      await otto.close();
    }
  });
});
