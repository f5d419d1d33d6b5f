/**
 * Users, roles and access keys over real HTTP-shaped requests (app.inject) and the CLI:
 * the local admin while nobody exists, /me, admin-only user and key management, own keys,
 * role permissions taking effect on the next request, revocation/expiry/disable effective on
 * the next request — including a revocation made by another Otto process (or the CLI) on the
 * same SQLite file — keys stored hashed only, and the beyond-loopback guard.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import { collections } from '../../src/domain/collections.ts';
import type { Otto } from '../../src/http/otto.ts';
import { call, testOtto } from '../support/otto.ts';
import { cli } from '../support/cli.ts';

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });


/** Makes a user through the service and returns them with a fresh key. */
async function userWithKey(otto: Otto, username: string, role: 'admin' | 'builder' | 'viewer') {
  const user = await otto.services.accounts.createUser({ input: { username, role } });
  const { key, secret } = await otto.services.accounts.createKey({ user_id: user.id, input: { name: 'test' } });
  return { user, key, secret, h: bearer(secret) };
}

describe('users, roles and access keys', () => {
  let otto: Otto;
  before(async () => (otto = await testOtto()));
  after(async () => otto.close());

  it('serves the local admin on loopback while no user and no key exists', async () => {
    const me = await call(otto, 'GET', '/me');
    assert.equal(me.status, 200);
    assert.deepEqual(me.json.user, { id: 'local', username: 'local', email: null, display_name: 'Local admin', role: 'admin' });
    assert.equal(me.json.auth, 'local');
    assert.ok(me.json.permissions.includes('users:manage'));
    assert.equal((await call(otto, 'GET', '/bots')).status, 200);
  });

  let admin: Awaited<ReturnType<typeof userWithKey>>;
  let builder: { id: string; h: Record<string, string>; keyId: string };

  it('needs a key on every route once a user exists; /me says who is calling', async () => {
    admin = await userWithKey(otto, 'Ada', 'admin');
    assert.equal(admin.user.username, 'ada');
    assert.match(admin.secret, /^otto_[0-9a-z]{10}_[0-9a-z]{40}$/);
    assert.equal(admin.key.prefix, admin.secret.slice(0, 15));
    const anonymous = await call(otto, 'GET', '/bots');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json.error.code, 'UNAUTHORIZED');
    assert.equal((await call(otto, 'GET', '/health')).status, 200);
    assert.equal((await call(otto, 'GET', '/me', undefined, bearer(`${admin.secret.slice(0, -1)}x`))).status, 401);
    const me = await call(otto, 'GET', '/me', undefined, { 'x-api-key': admin.secret });
    assert.equal(me.status, 200);
    assert.deepEqual(me.json, { user: { id: admin.user.id, username: 'ada', email: null, display_name: 'ada', role: 'admin' }, permissions: me.json.permissions, auth: 'key' });
    assert.ok(me.json.permissions.includes('roles:manage'));
  });

  it('lets admins manage users and their keys over REST; the secret is shown once and stored only as a hash', async () => {
    const created = await call(otto, 'POST', '/users', { username: 'bob', email: 'bob@example.com', display_name: 'Bob' }, admin.h);
    assert.equal(created.status, 201);
    assert.equal(created.json.role, 'builder');
    assert.equal((await call(otto, 'POST', '/users', { username: 'BOB' }, admin.h)).status, 409);
    const bad = await call(otto, 'POST', '/users', { username: 'bob', role: 'root' }, admin.h);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.field, 'role');
    const made = await call(otto, 'POST', `/users/${created.json.id}/keys`, { name: 'laptop', expires_in_days: 30 }, admin.h);
    assert.equal(made.status, 201);
    assert.deepEqual(Object.keys(made.json.key).sort(), ['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'prefix', 'revoked_at', 'user_id']);
    assert.ok(Date.parse(made.json.key.expires_at) > Date.now() + 29 * 86_400_000);
    builder = { id: created.json.id, h: bearer(made.json.secret), keyId: made.json.key.id };
    const listed = await call(otto, 'GET', `/users/${created.json.id}/keys`, undefined, admin.h);
    assert.equal(listed.json.items.length, 1);
    assert.ok(!JSON.stringify(listed.json).includes(made.json.secret.slice(16)));
    const keys = await otto.storage.store.collection(collections.api_keys);
    const stored = JSON.stringify((await keys.find({ limit: 1000 })).items);
    assert.ok(!stored.includes(made.json.secret) && !stored.includes(made.json.secret.slice(16)));
    assert.equal((await call(otto, 'GET', '/users', undefined, admin.h)).json.items.length, 2);
    const patched = await call(otto, 'PATCH', `/users/${created.json.id}`, { display_name: 'Bobby' }, admin.h);
    assert.equal(patched.json.display_name, 'Bobby');
  });

  it('records last use without a write per request', async () => {
    assert.equal((await call(otto, 'GET', '/me', undefined, builder.h)).status, 200);
    const keys = await otto.storage.store.collection(collections.api_keys);
    await otto.services.accounts.authenticate({ presented: builder.h.authorization!.slice(7) }); // a second use in the same minute
    for (let i = 0; i < 50 && !(await keys.get({ id: builder.keyId }))?.last_used_at; i++) await new Promise((r) => setImmediate(r));
    const stored = await keys.get({ id: builder.keyId });
    assert.ok(stored?.last_used_at, 'last_used_at set on first use');
    const version = stored.version;
    for (let i = 0; i < 5; i++) await call(otto, 'GET', '/me', undefined, builder.h);
    assert.equal((await keys.get({ id: builder.keyId }))?.version, version, 'no write for each request');
  });

  it('keeps admin routes for admins: a builder gets 403', async () => {
    for (const [method, url, body] of [
      ['GET', '/users'],
      ['POST', '/users', { username: 'eve' }],
      ['GET', `/users/${admin.user.id}`],
      ['PATCH', `/users/${builder.id}`, { role: 'admin' }],
      ['DELETE', `/users/${admin.user.id}`],
      ['POST', `/users/${builder.id}/keys`, {}],
      ['GET', '/role-permissions'],
      ['PUT', '/role-permissions/builder', { permissions: ['users:manage'] }],
    ] as Array<[string, string, unknown?]>) {
      const response = await call(otto, method, url, body, builder.h);
      assert.equal(response.status, 403, `${method} ${url}`);
      assert.equal(response.json.error.code, 'FORBIDDEN');
    }
    assert.equal((await call(otto, 'GET', `/users/${admin.user.id}`, undefined, builder.h)).status, 403);
  });

  it('lets a user list, create and revoke their own keys, and nobody else\'s', async () => {
    const mine = await call(otto, 'POST', '/me/keys', { name: 'ci' }, builder.h);
    assert.equal(mine.status, 201);
    assert.equal(mine.json.key.user_id, builder.id);
    assert.equal((await call(otto, 'GET', '/me/keys', undefined, builder.h)).json.items.length, 2);
    assert.equal((await call(otto, 'DELETE', `/me/keys/${admin.key.id}`, undefined, builder.h)).status, 404);
    assert.equal((await call(otto, 'GET', '/me', undefined, admin.h)).status, 200, "the admin's key still works");
    assert.equal((await call(otto, 'DELETE', `/me/keys/${mine.json.key.id}`, undefined, builder.h)).status, 204);
    const refused = await call(otto, 'GET', '/me', undefined, bearer(mine.json.secret));
    assert.equal(refused.status, 401);
    assert.match(refused.json.error.message, /revoked/);
  });

  it('applies a changed role table on the next request; the admin role cannot be narrowed', async () => {
    const table = await call(otto, 'GET', '/role-permissions', undefined, admin.h);
    assert.deepEqual(table.json.roles.map((r: { role: string }) => r.role), ['admin', 'builder', 'viewer']);
    assert.ok(table.json.permissions.some((p: { name: string }) => p.name === 'bots:write'));
    assert.equal((await call(otto, 'POST', '/bots', { name: 'Before' }, builder.h)).status, 201);
    const narrowed = await call(otto, 'PUT', '/role-permissions/builder', { permissions: ['bots:read', 'conversations:read', 'keys:self'] }, admin.h);
    assert.equal(narrowed.status, 200);
    const refused = await call(otto, 'POST', '/bots', { name: 'After' }, builder.h);
    assert.equal(refused.status, 403);
    assert.match(refused.json.error.message, /bots:write/);
    assert.equal((await call(otto, 'GET', '/bots', undefined, builder.h)).status, 200);
    const viaOtto = await call(otto, 'POST', '/chat', { bot_id: 'otto', message: 'Create a bot called Sneaky' }, builder.h);
    assert.equal(viaOtto.status, 403, 'chat itself is not allowed now');
    assert.equal((await call(otto, 'PUT', '/role-permissions/admin', { permissions: [] }, admin.h)).status, 403);
    assert.equal((await call(otto, 'PUT', '/role-permissions/builder', { permissions: ['users:manage'] }, admin.h)).status, 400);
    assert.equal((await call(otto, 'PUT', '/role-permissions/builder', { permissions: ['bots:fly'] }, admin.h)).status, 400);
    assert.equal((await call(otto, 'PUT', '/role-permissions/owner', { permissions: [] }, admin.h)).status, 404);
    const restored = await call(otto, 'PUT', '/role-permissions/builder', { permissions: table.json.roles[1].permissions }, admin.h);
    assert.equal(restored.status, 200);
    assert.equal((await call(otto, 'POST', '/bots', { name: 'After' }, builder.h)).status, 201);
  });

  it('keeps viewers from writing, through the API and through Otto the bot-builder', async () => {
    const viewer = await userWithKey(otto, 'vic', 'viewer');
    assert.equal((await call(otto, 'POST', '/bots', { name: 'Nope' }, viewer.h)).status, 403);
    const chat = await call(otto, 'POST', '/chat', { bot_id: 'otto', message: 'Create a bot called ViewerBot' }, viewer.h);
    assert.equal(chat.status, 200);
    const bots = (await call(otto, 'GET', '/bots', undefined, viewer.h)).json;
    assert.deepEqual(bots.map((b: { name: string }) => b.name), ['Otto']);
  });

  it('refuses expired keys and disabled users from the next request on', async () => {
    const eve = await userWithKey(otto, 'eve', 'builder');
    assert.equal((await call(otto, 'GET', '/me', undefined, eve.h)).status, 200);
    const month = await otto.services.accounts.createKey({ user_id: eve.user.id, input: { expires_in_days: 30 } });
    assert.equal((await call(otto, 'GET', '/me', undefined, bearer(month.secret))).status, 200);
    // 31 days later (the clock is mocked): nothing was written, yet the key is refused.
    mock.timers.enable({ apis: ['Date'], now: Date.now() + 31 * 86_400_000 });
    try {
      const expired = await call(otto, 'GET', '/me', undefined, bearer(month.secret));
      assert.equal(expired.status, 401);
      assert.match(expired.json.error.message, /expired/);
      assert.equal((await call(otto, 'GET', '/me', undefined, eve.h)).status, 200, 'a key without expiry still works');
    } finally {
      mock.timers.reset();
    }
    const other = await otto.services.accounts.createKey({ user_id: eve.user.id });
    assert.equal((await call(otto, 'GET', '/me', undefined, bearer(other.secret))).status, 200);
    assert.equal((await call(otto, 'PATCH', `/users/${eve.user.id}`, { disabled: true }, admin.h)).status, 200);
    const disabled = await call(otto, 'GET', '/me', undefined, bearer(other.secret));
    assert.equal(disabled.status, 401);
    assert.match(disabled.json.error.message, /disabled/);
    assert.equal((await call(otto, 'PATCH', `/users/${admin.user.id}`, { role: 'viewer' }, admin.h)).status, 403, 'an admin cannot demote themselves');
    assert.equal((await call(otto, 'DELETE', `/users/${admin.user.id}`, undefined, admin.h)).status, 403);
  });

  it('lists conversations by latest activity with order=recent (the seed\'s sessions by user and updated_at)', async () => {
    const bot = (await call(otto, 'POST', '/bots', { name: 'Recent' }, admin.h)).json;
    const first = (await call(otto, 'POST', '/conversations', { bot_id: bot.id }, admin.h)).json;
    const second = (await call(otto, 'POST', '/conversations', { bot_id: bot.id }, admin.h)).json;
    assert.equal((await call(otto, 'POST', `/conversations/${first.id}/messages`, { content: 'hi' }, admin.h)).status, 201);
    const ids = (order: string) => call(otto, 'GET', `/conversations?bot_id=${bot.id}&order=${order}`, undefined, admin.h).then((r) => r.json.items.map((c: { id: string }) => c.id));
    assert.deepEqual(await ids('created'), [second.id, first.id]);
    assert.deepEqual(await ids('recent'), [first.id, second.id]);
    assert.equal((await call(otto, 'GET', '/conversations?order=oldest', undefined, admin.h)).status, 400);
  });

  it('deletes a user only with purge when they own data', async () => {
    const refused = await call(otto, 'DELETE', `/users/${builder.id}`, undefined, admin.h);
    assert.equal(refused.status, 409);
    assert.equal((await call(otto, 'DELETE', `/users/${builder.id}?purge=true`, undefined, admin.h)).status, 204);
    assert.equal((await call(otto, 'GET', `/users/${builder.id}`, undefined, admin.h)).status, 404);
    assert.equal((await call(otto, 'GET', '/me', undefined, builder.h)).status, 401);
    const bots = (await call(otto, 'GET', '/bots', undefined, admin.h)).json.map((b: { name: string }) => b.name);
    assert.ok(!bots.includes('Before') && !bots.includes('After'));
  });
});

describe('access keys across processes and the CLI (one SQLite file)', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const open: Otto[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'otto-accounts-'));
    env = { OTTO_STORAGE: 'sqlite', OTTO_DATA_DIR: dir, OTTO_SQLITE_SYNC: 'NORMAL', OTTO_SYNC_INTERVAL_MS: '50' };
  });
  after(async () => {
    for (const o of open) await o.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses to listen beyond loopback until `otto users create --admin` made a key', async () => {
    await assert.rejects(testOtto({ ...env, OTTO_HOST: '0.0.0.0' }), /without an admin access key.*otto users create --username <name> --admin/);
    const builderOnly = await cli(['users', 'create', '--username', 'bea'], env);
    assert.equal(builderOnly.code, 0, builderOnly.err);
    await assert.rejects(testOtto({ ...env, OTTO_HOST: '0.0.0.0' }), /without an admin access key/, 'a builder key is not enough');
    const created = await cli(['users', 'create', '--username', 'root', '--admin', '--email', 'root@example.com'], env);
    assert.equal(created.code, 0, created.err);
    assert.match(created.out, /created user root .*role admin/);
    assert.match(created.err, /only time the key is shown/);
    const secret = /otto_[0-9a-z]{10}_[0-9a-z]{40}/.exec(created.out)![0];
    const exposed = await testOtto({ ...env, OTTO_HOST: '0.0.0.0' });
    open.push(exposed);
    assert.equal((await call(exposed, 'GET', '/bots')).status, 401);
    assert.equal((await call(exposed, 'GET', '/me', undefined, bearer(secret))).json.user.username, 'root');
    const db = new DatabaseSync(join(dir, 'otto.db'), { readOnly: true });
    try {
      const all = (db.prepare('SELECT doc FROM api_keys').all() as Array<{ doc: string }>).map((r) => r.doc).join('\n');
      assert.ok(!all.includes(secret.slice(16)), 'the secret is not in the SQLite file');
    } finally {
      db.close();
    }
  });

  it('a revocation made by another process or by the CLI applies to the next request', async () => {
    const a = await testOtto(env);
    const b = await testOtto(env);
    open.push(a, b);
    const made = await cli(['keys', 'create', '--user', 'bea', '--name', 'shared', '--expires-in', '30d'], env);
    assert.equal(made.code, 0, made.err);
    const secret = /otto_[0-9a-z]{10}_[0-9a-z]{40}/.exec(made.out)![0];
    const prefix = secret.slice(0, 15);
    assert.equal((await call(a, 'GET', '/me', undefined, bearer(secret))).status, 200);
    assert.equal((await call(b, 'GET', '/me', undefined, bearer(secret))).status, 200);
    const listed = await cli(['keys', 'list', '--user', 'bea'], env);
    assert.match(listed.out, new RegExp(`${prefix}.*shared.*active`));
    // Process A revokes it over REST (as bea herself); process B refuses it on its very next request.
    const keyId = (await call(a, 'GET', '/me/keys', undefined, bearer(secret))).json.items.find((k: { prefix: string }) => k.prefix === prefix).id;
    assert.equal((await call(a, 'DELETE', `/me/keys/${keyId}`, undefined, bearer(secret))).status, 204);
    assert.equal((await call(b, 'GET', '/me', undefined, bearer(secret))).status, 401);
    // The CLI revokes another key by prefix; both processes refuse it next.
    const second = /otto_[0-9a-z]{10}_[0-9a-z]{40}/.exec((await cli(['keys', 'create', '--user', 'bea'], env)).out)![0];
    assert.equal((await call(b, 'GET', '/me', undefined, bearer(second))).status, 200);
    const revoked = await cli(['keys', 'revoke', second.slice(0, 15)], env);
    assert.equal(revoked.code, 0, revoked.err);
    assert.equal((await call(a, 'GET', '/me', undefined, bearer(second))).status, 401);
    assert.equal((await call(b, 'GET', '/me', undefined, bearer(second))).status, 401);
    assert.match((await cli(['keys', 'list'], env)).out, /revoked/);
    assert.match((await cli(['users', 'list'], env)).out, /root .*admin .*root@example\.com/);
  });

  it('`otto doctor` checks the account collections\' indexes (users by username, unique; email; key prefixes)', async () => {
    for (const o of open.splice(0)) await o.close();
    const ok = await cli(['doctor'], env);
    assert.match(ok.out + ok.err, /^ok +indexes +\d+ collection\(s\) have exactly Otto's indexes$/m);
    const db = new DatabaseSync(join(dir, 'otto.db'));
    try {
      db.exec('DROP INDEX "users__username"; DROP INDEX "api_keys__prefix"');
    } finally {
      db.close();
    }
    const broken = await cli(['doctor'], env);
    assert.notEqual(broken.code, 0);
    assert.match(broken.out + broken.err, /^FAIL +indexes +users: missing index username \(username, unique\)$/m);
    assert.match(broken.out + broken.err, /^FAIL +indexes +api_keys: missing index prefix \(prefix\)$/m);
    assert.equal((await cli(['doctor', '--fix'], env)).code, 0);
    assert.match((await cli(['doctor'], env)).out, /^ok +indexes/m);
  });

  it('`otto users create --adopt-local` gives the first user what the local admin made', async () => {
    const own = await mkdtemp(join(tmpdir(), 'otto-adopt-'));
    try {
      const local = { ...env, OTTO_DATA_DIR: own };
      const before = await testOtto(local);
      const bot = (await call(before, 'POST', '/bots', { name: 'Made Locally' })).json;
      assert.equal(bot.owner_id, 'local');
      await call(before, 'POST', '/chat', { bot_id: bot.id, message: 'hello' });
      await before.close();
      const created = await cli(['users', 'create', '--username', 'me', '--adopt-local'], local);
      assert.equal(created.code, 0, created.err);
      assert.match(created.out, /adopted \d+ document\(s\) the local admin had made \(.*bots 1, conversations 1, messages 2/);
      const secret = /otto_[0-9a-z]{10}_[0-9a-z]{40}/.exec(created.out)![0];
      const after = await testOtto(local);
      try {
        const bots = (await call(after, 'GET', '/bots', undefined, bearer(secret))).json;
        assert.deepEqual(bots.map((b: { name: string }) => b.name), ['Otto', 'Made Locally'], 'a builder sees the adopted bot as theirs');
        assert.equal((await call(after, 'GET', '/conversations', undefined, bearer(secret))).json.items.length, 1);
      } finally {
        await after.close();
      }
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });

  it('explains bad CLI input and has --help for every account command', async () => {
    for (const command of ['users', 'keys', 'purge']) {
      const help = await cli([command, '--help'], env);
      assert.equal(help.code, 0);
      assert.match(help.out, /^Usage: otto /);
    }
    assert.equal((await cli(['users', 'create'], env)).code, 2);
    assert.equal((await cli(['users', 'create', '--username', 'x', '--role', 'root'], env)).code, 2);
    assert.equal((await cli(['keys', 'create', '--user', 'bea', '--expires-in', 'soon'], env)).code, 2);
    const missing = await cli(['keys', 'create', '--user', 'nobody'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no user nobody/);
    const taken = await cli(['users', 'create', '--username', 'ROOT'], env);
    assert.equal(taken.code, 1);
    assert.match(taken.err, /username root is taken/);
  });
});

describe('an open event stream and its access key', () => {
  it('ends with an UNAUTHORIZED event soon after its key is revoked, having delivered messages until then', async () => {
    const otto = await testOtto();
    const controller = new AbortController();
    try {
      const bea = await userWithKey(otto, 'bea', 'builder');
      const bot = await call(otto, 'POST', '/bots', { name: 'Streamer' }, bea.h);
      const conversation = await call(otto, 'POST', '/conversations', { bot_id: bot.json.id }, bea.h);
      assert.equal(conversation.status, 201, conversation.body);
      const address = await otto.app.listen({ port: 0, host: '127.0.0.1' });
      const response = await fetch(`${address}/conversations/${conversation.json.id}/events`, { headers: bea.h, signal: controller.signal });
      assert.equal(response.status, 200);
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      const readUntil = async (pattern: RegExp, ms: number) => {
        const deadline = Date.now() + ms;
        while (!pattern.test(text)) {
          const left = deadline - Date.now();
          if (left <= 0) return false;
          const chunk = await Promise.race([reader.read(), new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), left))]);
          if (chunk === 'timeout') return false;
          if (chunk.done) return pattern.test(text);
          text += decoder.decode(chunk.value, { stream: true });
        }
        return true;
      };
      assert.equal((await call(otto, 'POST', `/conversations/${conversation.json.id}/messages`, { content: 'hello' }, bea.h)).status, 201);
      assert.ok(await readUntil(/event: message[\s\S]*event: message/, 5_000), `the user message and the reply arrive: ${text}`);

      await otto.services.accounts.revokeKey({ ref: bea.key.id });
      assert.ok(await readUntil(/event: error\ndata: \{"code":"UNAUTHORIZED"[^\n]*revoked/, 5_000), `the stream says why it ends: ${text}`);
      const ended = await Promise.race([reader.read(), new Promise<'open'>((resolve) => setTimeout(() => resolve('open'), 2_000))]);
      assert.notEqual(ended, 'open', 'the server closed the stream');
      assert.equal((ended as ReadableStreamReadResult<Uint8Array>).done, true);
    } finally {
      controller.abort();
      await otto.close();
    }
  });
});
