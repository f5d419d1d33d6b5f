import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MongoClient } from 'mongodb';
import { main } from '../../src/cli/main.ts';
import { loadConfig } from '../../src/config.ts';
import { createOtto, type Otto } from '../../src/http/otto.ts';
import { Keyring, createSecretBox, maskSecret, parseSecretKeys } from '../../src/secrets/index.ts';
import { startFakeOpenAi } from '../support/fake-openai.ts';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';
import { call, testOtto } from '../support/otto.ts';

const KEY_A = randomBytes(32).toString('base64');
const KEY_B = randomBytes(32).toString('hex');
const PROVIDER_SECRET = `sk-proj-${randomBytes(18).toString('hex')}`;
const WEBHOOK_SECRET = `whsec_${randomBytes(18).toString('hex')}`;
const SLACK_TOKEN = `xoxb-${randomBytes(12).toString('hex')}`;
const SLACK_SIGNING = randomBytes(16).toString('hex');

describe('keyring and secret box', () => {
  test('OTTO_SECRET_KEY: base64 or hex, optional kids, the first encrypts; bad keys are named', () => {
    const parsed = parseSecretKeys(`new:${KEY_B},old:${KEY_A}`);
    assert.deepEqual(parsed.problems, []);
    assert.deepEqual(parsed.keys.map((k) => k.id), ['new', 'old']);
    const single = parseSecretKeys(KEY_A);
    assert.match(single.keys[0]!.id, /^k[0-9a-f]{8}$/);
    assert.equal(parseSecretKeys(KEY_A).keys[0]!.id, single.keys[0]!.id, 'a derived kid is stable');
    const bad = parseSecretKeys('tooshort');
    assert.equal(bad.keys.length, 0);
    assert.match(bad.problems[0]!, /openssl rand -base64 32/);
    assert.throws(() => loadConfig({ OTTO_SECRET_KEY: 'x:abc' }), /OTTO_SECRET_KEY/);
    const keyring = new Keyring(parsed.keys);
    assert.ok(!JSON.stringify({ keyring }).includes(KEY_B), 'a keyring never serialises its keys');
  });

  test('AES-256-GCM with a fresh nonce per value; old keys decrypt; tampering is detected', () => {
    const old = createSecretBox(new Keyring(parseSecretKeys(`old:${KEY_A}`).keys));
    const both = createSecretBox(new Keyring(parseSecretKeys(`new:${KEY_B},old:${KEY_A}`).keys));
    const a = old.encrypt('hello secret');
    const b = old.encrypt('hello secret');
    assert.notEqual(a.iv, b.iv);
    assert.notEqual(a.ct, b.ct);
    assert.equal(Buffer.from(a.iv, 'base64').length, 12);
    assert.equal(both.decrypt(a), 'hello secret');
    assert.equal(both.needsRotation(a), true);
    assert.equal(both.encrypt('x').kid, 'new');
    const tampered = { ...a, ct: Buffer.from('jello secret').toString('base64') };
    assert.throws(() => both.decrypt(tampered), (e: any) => e.code === 'SECRET_CORRUPT');
    const newOnly = createSecretBox(new Keyring(parseSecretKeys(`new:${KEY_B}`).keys));
    assert.throws(() => newOnly.decrypt(a), (e: any) => e.code === 'SECRET_KEY_MISSING');
    const none = createSecretBox(new Keyring([]));
    assert.throws(() => none.encrypt('x'), (e: any) => e.code === 'SECRETS_DISABLED' && /openssl rand -base64 32/.test(e.message));
    assert.equal(maskSecret('sk-abcdefghijklmnop'), 'sk-…mnop');
  });
});

describe('provider keys over REST', () => {
  test('storing a secret without OTTO_SECRET_KEY is refused, saying how to create one', async () => {
    const otto = await testOtto();
    try {
      const refused = await call(otto, 'POST', '/provider-keys', { provider: 'openai', value: PROVIDER_SECRET });
      assert.equal(refused.status, 409);
      assert.equal(refused.json.error.code, 'SECRETS_DISABLED');
      assert.match(refused.json.error.message, /openssl rand -base64 32/);
      assert.equal((await call(otto, 'GET', '/provider-keys')).json.items.length, 0);
    } finally {
      await otto.close();
    }
  });

  test('masked in every answer; global keys are admin only; the OpenAI provider uses the owner key, else a global key, else the configured one', async () => {
    const fake = await startFakeOpenAi();
    fake.fallback = { content: 'fine' };
    const otto = await testOtto({ OTTO_SECRET_KEY: KEY_A, OTTO_LLM_PROVIDER: 'openai', OTTO_LLM_BASE_URL: fake.baseUrl, OTTO_LLM_API_KEY: 'sk-configured-key-0000', OTTO_LLM_MODEL: 'fake-model' });
    try {
      const botId = (await call(otto, 'POST', '/bots', { name: 'Keyed' })).json.id;
      const auth = async () => {
        const before = fake.requests.length;
        const chat = await call(otto, 'POST', '/chat', { bot_id: botId, message: 'hello' });
        assert.equal(chat.status, 200, chat.body);
        return fake.requests.slice(before).map((r) => r.headers.authorization);
      };
      assert.deepEqual(await auth(), ['Bearer sk-configured-key-0000']);

      const global = await call(otto, 'POST', '/provider-keys/global', { provider: 'openai', value: 'sk-global-key-11111111' });
      assert.equal(global.status, 201, global.body);
      assert.equal(global.json.masked, 'sk-…1111');
      assert.equal(global.json.value, undefined);
      assert.deepEqual(await auth(), ['Bearer sk-global-key-11111111']);

      const own = await call(otto, 'POST', '/provider-keys', { provider: 'openai', value: PROVIDER_SECRET });
      assert.equal(own.status, 201);
      assert.deepEqual(await auth(), [`Bearer ${PROVIDER_SECRET}`]);
      assert.equal((await call(otto, 'POST', '/provider-keys', { provider: 'openai', value: PROVIDER_SECRET })).status, 409, 'one key per provider and name');
      const listed = await call(otto, 'GET', '/provider-keys');
      assert.ok(!listed.body.includes(PROVIDER_SECRET));
      assert.equal(listed.json.items[0].masked, `sk-…${PROVIDER_SECRET.slice(-4)}`);
      assert.equal((await call(otto, 'POST', '/provider-keys', { provider: 'Open AI!', value: 'x' })).status, 400);

      // A non-admin caller: global keys are refused, another owner's key is not found.
      const bob = { owner_id: 'bob', admin: false };
      const keys = otto.integrations.providerKeys;
      await assert.rejects(keys.listGlobal({ caller: bob }), (e: any) => e.code === 'FORBIDDEN');
      await assert.rejects(keys.createGlobal({ caller: bob, input: { provider: 'openai', value: 'sk-bob-global-000' } }), (e: any) => e.code === 'FORBIDDEN');
      await assert.rejects(keys.deleteUser({ caller: bob, id: own.json.id }), (e: any) => e.code === 'NOT_FOUND');
      assert.equal((await keys.listUser({ caller: bob })).items.length, 0);

      assert.equal((await call(otto, 'DELETE', `/provider-keys/${own.json.id}`)).status, 204);
      assert.deepEqual(await auth(), ['Bearer sk-global-key-11111111']);
    } finally {
      await otto.close();
      await fake.close();
    }
  });
});

/** Stores a provider key, a webhook secret and a Slack channel's token and signing secret through the API. */
async function storeSecrets(otto: Otto): Promise<void> {
  const created = await call(otto, 'POST', '/provider-keys', { provider: 'openai', value: PROVIDER_SECRET });
  assert.equal(created.status, 201, created.body);
  const botId = (await call(otto, 'POST', '/bots', { name: 'Vault' })).json.id;
  const hook = await call(otto, 'POST', '/webhooks', { bot_id: botId, url: 'http://127.0.0.1:9/hook', secret: WEBHOOK_SECRET });
  assert.equal(hook.status, 201, hook.body);
  const channel = await call(otto, 'POST', '/channels', { bot_id: botId, platform: 'slack', bot_token: SLACK_TOKEN, signing_secret: SLACK_SIGNING });
  assert.equal(channel.status, 201, channel.body);
}

function assertNoPlaintext(text: string, where: string): void {
  for (const secret of [PROVIDER_SECRET, WEBHOOK_SECRET, SLACK_TOKEN, SLACK_SIGNING]) {
    assert.ok(!text.includes(secret), `${where} holds a secret in plaintext`);
    assert.ok(!text.includes(Buffer.from(secret).toString('base64')), `${where} holds a secret in base64`);
  }
}

describe('no plaintext secret at rest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'otto-secrets-'));
  let slack: FakeSlack;
  before(async () => {
    slack = await startFakeSlack();
    slack.addBot(SLACK_TOKEN, { user_id: 'UV', bot_id: 'BV', team_id: 'TV' });
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await slack.close();
  });

  test('the raw bytes of the SQLite file (and its WAL) hold no secret; rotation re-encrypts them all under a new key', async () => {
    const env = { OTTO_STORAGE: 'sqlite', OTTO_DATA_DIR: dir, OTTO_SECRET_KEY: `a:${KEY_A}`, OTTO_SLACK_API_BASE: slack.base };
    const otto = await createOtto({ config: loadConfig(env) });
    await storeSecrets(otto);
    await otto.close();
    const files = ['otto.db', 'otto.db-wal'].map((f) => join(dir, f)).filter(existsSync);
    const raw = Buffer.concat(files.map((f) => readFileSync(f))).toString('latin1');
    assert.ok(raw.includes('"otto_secret":1'), 'the encrypted values are there');
    assertNoPlaintext(raw, 'the SQLite file');

    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l), env: { ...env, OTTO_SECRET_KEY: `b:${KEY_B},a:${KEY_A}` }, cwd: dir };
    assert.equal(await main(['secrets', 'rotate'], io), 0, err.join('\n'));
    assert.match(out.join('\n'), /4 secret\(s\) re-encrypted, 0 already current, 0 failed/);
    assert.match(err.join('\n'), /user_api_keys: 1\/1/);
    out.length = 0;
    assert.equal(await main(['secrets', 'rotate'], io), 0);
    assert.match(out.join('\n'), /0 secret\(s\) re-encrypted, 4 already current/);

    // Only the new key now: everything still decrypts.
    const rotated = await createOtto({ config: loadConfig({ ...env, OTTO_SECRET_KEY: `b:${KEY_B}` }) });
    try {
      assert.equal(await rotated.integrations.providerKeys.keyFor({ ownerId: 'local', provider: 'openai' }), PROVIDER_SECRET);
      const hook = (await call(rotated, 'GET', '/webhooks')).json.items[0];
      const config = (await rotated.integrations.webhooks.configs.get({ id: hook.id }))!;
      assert.equal(config.secret.kid, 'b');
      assert.equal(rotated.integrations.webhooks.secretOf(config), WEBHOOK_SECRET);
    } finally {
      await rotated.close();
    }
    // A key that is not listed any more: each secret is named, left as it is, and the exit is 1.
    const err2: string[] = [];
    const lost = { ...io, err: (l: string) => err2.push(l), env: { ...env, OTTO_SECRET_KEY: `c:${randomBytes(32).toString('base64')}` } };
    out.length = 0;
    assert.equal(await main(['secrets', 'rotate'], lost), 1);
    assert.match(out.join('\n'), /0 secret\(s\) re-encrypted, 0 already current, 4 failed/);
    assert.match(err2.join('\n'), /cannot decrypt user_api_keys\/upk_\w+\.value: .*key b/);
    assert.equal(await main(['secrets', '--help'], io), 0);
  });

  test('the raw MongoDB documents hold no secret', async (t) => {
    const target = await mongoTestTarget();
    if ('skip' in target) return t.skip(target.skip);
    const database = `otto_secrets_${randomBytes(5).toString('hex')}`;
    const client = new MongoClient(target.uri);
    try {
      const otto = await createOtto({ config: loadConfig({ OTTO_STORAGE: 'mongodb', MONGODB_URI: target.uri, MONGODB_DATABASE: database, OTTO_SECRET_KEY: KEY_A, OTTO_SLACK_API_BASE: slack.base }) });
      await storeSecrets(otto);
      await otto.close();
      const db = client.db(database);
      let seen = 0;
      for (const { name } of await db.listCollections().toArray()) {
        const docs = await db.collection(name).find({}).toArray();
        seen += docs.length;
        assertNoPlaintext(JSON.stringify(docs), `MongoDB collection ${name}`);
      }
      assert.ok(seen > 0);
      const stored = await db.collection('user_api_keys').findOne({});
      assert.equal(stored?.value?.otto_secret, 1);
    } finally {
      await client.db(database).dropDatabase().catch(() => {});
      await client.close();
      await target.stop();
    }
  });
});
