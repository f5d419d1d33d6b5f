/**
 * How Otto serves the web page (through app.inject, on the memory engine): index.html never
 * cached, content-hashed assets cached for a year and gzipped, nothing outside web/dist/assets
 * reachable, the page public while the API needs a key, and the static transcript escaped.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { Otto } from '../../src/http/otto.ts';
import { escapeHtml } from '../../src/http/web.ts';
import { ensureWebBuilt } from '../support/browser.ts';
import { call, testOtto } from '../support/otto.ts';

describe('web page serving', () => {
  let otto: Otto;
  let secured: Otto;
  const key = randomBytes(24).toString('hex');

  before(async () => {
    await ensureWebBuilt();
    otto = await testOtto();
    secured = await testOtto({ OTTO_API_KEYS: `admin:${key}` });
  });
  after(async () => {
    await otto?.close();
    await secured?.close();
  });

  it('serves index.html uncached, with a strict Content-Security-Policy and only local assets', async () => {
    const page = await call(otto, 'GET', '/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.headers['cache-control'], 'no-cache');
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    const refs = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(refs.some((r) => r.endsWith('.js')) && refs.some((r) => r.endsWith('.css')), 'a script and a stylesheet');
    for (const ref of refs) assert.ok(/^\/(?!\/)/.test(ref) || ref === 'data:,', `${ref} is served by Otto itself`);
  });

  it('serves content-hashed assets for a year, gzipped when asked', async () => {
    const page = await call(otto, 'GET', '/');
    const script = page.body.match(/src="(\/assets\/[^"]+\.js)"/)![1]!;
    assert.match(script, /-[A-Za-z0-9_-]{8,}\.js$/, 'the name carries a content hash');
    const plain = await call(otto, 'GET', script);
    assert.equal(plain.status, 200);
    assert.match(String(plain.headers['content-type']), /^text\/javascript/);
    assert.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(plain.headers['content-encoding'], undefined);
    const zipped = await otto.app.inject({ method: 'GET', url: script, headers: { 'accept-encoding': 'gzip, br' } });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.ok(zipped.rawPayload.length < plain.body.length);
    assert.equal(gunzipSync(zipped.rawPayload).toString(), plain.body);
  });

  it('reaches nothing outside web/dist/assets', async () => {
    for (const url of ['/assets/..%2f..%2fpackage.json', '/assets/%2e%2e%2findex.html', '/assets/nope.js', '/assets/.build.json', '/assets/index.html', '/web/dist/index.html', '/.build.json']) {
      const response = await call(otto, 'GET', url);
      assert.equal(response.status, 404, url);
      assert.equal(response.json.error.code, 'NOT_FOUND', url);
    }
  });

  it('serves the page without a key while the API asks for one', async () => {
    assert.equal((await call(secured, 'GET', '/')).status, 200);
    const script = (await call(secured, 'GET', '/')).body.match(/src="(\/assets\/[^"]+\.js)"/)![1]!;
    assert.equal((await call(secured, 'GET', script)).status, 200);
    assert.equal((await call(secured, 'GET', '/bots')).status, 401);
    assert.equal((await call(secured, 'GET', '/bots', undefined, { authorization: `Bearer ${key}` })).status, 200);
  });

  it('renders a conversation as static HTML with every string escaped, behind the same access rules', async () => {
    const bot = (await call(otto, 'POST', '/bots', { name: 'Esc <b>"bot"</b>' })).json;
    const conversation = (await call(otto, 'POST', '/conversations', { bot_id: bot.id })).json;
    const evil = `<img src=x onerror=alert(1)> & "quotes" 'too'`;
    await call(otto, 'POST', `/conversations/${conversation.id}/messages`, { content: evil });
    const page = await call(otto, 'GET', `/conversations/${conversation.id}/transcript`);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    assert.ok(page.body.includes(escapeHtml(evil)));
    assert.ok(!page.body.includes('<img'), 'no markup from message text');
    assert.ok(page.body.includes(escapeHtml('Esc <b>"bot"</b>')));
    assert.equal((await call(otto, 'GET', '/conversations/nope/transcript')).status, 404);
    assert.equal((await call(secured, 'GET', `/conversations/${conversation.id}/transcript`)).status, 401);
  });

  it('lists the page and the transcript in the OpenAPI document', async () => {
    const doc = (await call(otto, 'GET', '/openapi.json')).json;
    assert.ok(doc.paths['/']?.get, 'GET /');
    assert.ok(doc.paths['/conversations/{id}/transcript']?.get, 'GET /conversations/{id}/transcript');
    // The page reads it at every load: gzipped when the client takes it.
    const zipped = await otto.app.inject({ method: 'GET', url: '/openapi.json', headers: { 'accept-encoding': 'gzip' } });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.deepEqual(JSON.parse(gunzipSync(zipped.rawPayload).toString()), doc);
    assert.ok(zipped.rawPayload.length < JSON.stringify(doc).length / 4);
  });
});
