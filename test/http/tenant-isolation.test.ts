/**
 * Tenant isolation, walked from the OpenAPI document: two non-admin users (builders), each
 * with a bot (guideline, journey, tool, mapping), a conversation with messages, an extra
 * access key, and whatever else the other POST routes in the document let them create. Then
 * EVERY operation in /openapi.json is called over real HTTP by each user with the other's
 * ids substituted into its path parameters (and into every `*_id` body field and query
 * parameter), and compared with the same call naming ids that do not exist:
 *
 * - another user's id must answer exactly like an unknown id (same status, same error code),
 *   never 2xx when it is in the path;
 * - no 2xx response may contain the other user's marker text or ids (other than ones the
 *   request itself sent);
 * - afterwards every document the other user owns is unchanged.
 *
 * The walk is generic, so a new route without an owner check fails here. Only operations
 * the document marks public (`security: []`: /health, /ready, the web page and its assets,
 * inbound platform webhooks that authenticate by signature) and the few below are skipped.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Otto } from '../../src/http/otto.ts';
import { targetSpec } from '../../src/storage/transfer/collections.ts';
import { testOtto } from '../support/otto.ts';

/** Operations not walked, besides those marked `security: []`: not part of the API surface. */
const ALLOW_LIST = [/^\/docs(\/|$)/, /^\/openapi\.json$/];

type Json = any;
interface Actor {
  name: string;
  id: string;
  secret: string;
  marker: string;
  /** Collection name → ids this user owns (filled from the store after set-up). */
  owned: Map<string, string[]>;
  all: Set<string>;
}
interface Operation {
  method: string;
  path: string;
  op: Json;
}

const HTTP_METHODS = ['get', 'post', 'put', 'patch', 'delete'];

describe('tenant isolation: every route in the OpenAPI document, as two users', () => {
  let dir: string;
  let otto: Otto;
  let base: string;
  let doc: Json;
  let platform: Server;
  let platformUrl = 'http://127.0.0.1:9';
  const users: Actor[] = [];

  async function http(actor: Actor | null, method: string, url: string, body?: unknown): Promise<{ status: number; text: string; json: Json }> {
    const controller = new AbortController();
    const headers: Record<string, string> = {};
    if (actor) headers.authorization = `Bearer ${actor.secret}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${base}${url}`, { method: method.toUpperCase(), headers, body: body === undefined ? undefined : JSON.stringify(body), signal: controller.signal });
    let text = '';
    if ((response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      // A stream that opened is already the answer; read what it sent first and stop.
      const reader = response.body!.getReader();
      const first = await reader.read();
      text = first.value ? Buffer.from(first.value).toString('utf8') : '';
      controller.abort();
    } else {
      text = await response.text();
    }
    let json: Json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, text, json };
  }

  async function collectionsOf(): Promise<string[]> {
    return (await otto.storage.store.listCollections()).filter((n) => !n.startsWith('_'));
  }

  /** Every document `actor` owns (or is), by collection, as stable JSON without `last_used_at`. */
  async function snapshot(actor: Actor): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const name of await collectionsOf()) {
      const collection = await otto.storage.store.collection(targetSpec(name));
      for await (const batch of collection.scan()) {
        for (const d of batch) {
          if (d.owner_id !== actor.id && d.id !== actor.id) continue;
          const { last_used_at: _ignored, ...rest } = d as Json;
          out.set(`${name}/${d.id}`, JSON.stringify(rest));
        }
      }
    }
    return out;
  }

  /**
   * The snapshot once background work (webhook deliveries, usage records of the set-up) has
   * settled: two reads 100 ms apart that agree.
   */
  async function settled(actor: Actor): Promise<Map<string, string>> {
    let last = await snapshot(actor);
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const next = await snapshot(actor);
      if (JSON.stringify([...next]) === JSON.stringify([...last])) return next;
      last = next;
    }
    return last;
  }

  async function collectOwned(actor: Actor): Promise<void> {
    actor.owned.clear();
    actor.all.clear();
    for (const key of (await snapshot(actor)).keys()) {
      const [name, id] = key.split('/') as [string, string];
      if (!actor.owned.has(name)) actor.owned.set(name, []);
      actor.owned.get(name)!.push(id);
      actor.all.add(id);
    }
  }

  const operations = (): Operation[] => {
    const out: Operation[] = [];
    for (const [path, item] of Object.entries<Json>(doc.paths)) {
      for (const method of HTTP_METHODS) {
        const op = item[method];
        if (!op) continue;
        if (Array.isArray(op.security) && op.security.length === 0) continue;
        if (ALLOW_LIST.some((re) => re.test(path))) continue;
        out.push({ method, path, op });
      }
    }
    return out;
  };

  /** The collection a path parameter names, from its name (`bot_id`) or the segment before it (`/bots/{id}`). */
  function kindOf(path: string, param: string): string | undefined {
    const named = /^(.+)_id$/.exec(param)?.[1];
    if (named && named !== 'child' && named !== 'key') return `${named.replace(/-/g, '_')}s`;
    if (param === 'key_id') return 'api_keys';
    const segments = path.split('/');
    const at = segments.indexOf(`{${param}}`);
    const before = segments[at - 1];
    if (!before || before.startsWith('{')) return undefined;
    const name = before.replace(/-/g, '_');
    if (name === 'agents') return 'bots';
    if (name === 'keys') return 'api_keys';
    return name;
  }

  /** Ids of `actor` for a kind: its documents in that collection, or — unknown kind — every id it owns. */
  function idsOf(actor: Actor, kind: string | undefined, cap = 40): string[] {
    const known = kind ? actor.owned.get(kind) : undefined;
    const list = known && known.length > 0 ? known : [...actor.all];
    return list.slice(0, cap);
  }

  const unknownId = () => `nx_${randomBytes(8).toString('hex')}`;
  /** An id shaped exactly like `id` (same length and character classes) that names nothing. */
  const unknownLike = (id: string): string => {
    const chars = [...id];
    const pool = 'abcdefghjkmnpqrstvwxyz0123456789';
    for (let i = chars.length - 1, n = 0; i >= 0 && n < 10; i--) {
      if (/[a-z0-9]/.test(chars[i]!)) {
        chars[i] = /[0-9]/.test(chars[i]!) ? String(randomBytes(1)[0]! % 10) : pool[randomBytes(1)[0]! % 22]!;
        n++;
      }
    }
    const out = chars.join('');
    return out === id ? unknownId() : out;
  };

  /** A value valid for `schema` (required fields only, enough to pass validation), with `*_id` fields from `ids`. */
  function sample(schema: Json, name: string, ids: (field: string) => string | undefined, depth = 0): unknown {
    if (!schema || depth > 6) return undefined;
    if (schema.anyOf || schema.oneOf) return sample((schema.anyOf ?? schema.oneOf).find((s: Json) => s.type !== 'null') ?? {}, name, ids, depth + 1);
    if (schema.enum) return schema.enum[0];
    const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type;
    if (type === 'object' || (!type && schema.properties)) {
      const out: Record<string, unknown> = {};
      const props = schema.properties ?? {};
      const required: string[] = schema.required ?? [];
      const wanted = required.length > 0 ? required : schema.minProperties ? Object.keys(props).slice(0, 1) : [];
      for (const key of wanted) out[key] = sample(props[key], key, ids, depth + 1);
      return out;
    }
    if (type === 'array') {
      const n = schema.minItems ?? 0;
      return Array.from({ length: n }, () => sample(schema.items, name, ids, depth + 1));
    }
    if (type === 'integer' || type === 'number') return Math.min(Math.max(schema.minimum ?? 1, 1), schema.maximum ?? Number.MAX_SAFE_INTEGER);
    if (type === 'boolean') return false;
    if (type === 'string') {
      const id = /(^|_)id$/.test(name) ? ids(name) : undefined;
      if (id) return id;
      if (/url$/.test(name)) return `${platformUrl}/hook`;
      if (/token$/.test(name)) return '123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi';
      const candidates = ['sample', 'tool_x', 'x', 'a@example.com', 'http://127.0.0.1:9/x', '2030-01-01T00:00:00Z', '2030-01-01', 'gpt-4o-mini', 'https://example.com/hook', 'abcdefghijklmnopqrstuvwxyz0123456789'];
      const fits = (c: string) => (!schema.pattern || new RegExp(schema.pattern).test(c)) && c.length >= (schema.minLength ?? 0) && c.length <= (schema.maxLength ?? 1e9);
      return candidates.find(fits) ?? 'sample';
    }
    return undefined;
  }

  function bodySchema(op: Json): Json | undefined {
    return op.requestBody?.content?.['application/json']?.schema;
  }

  /** Fields of a body schema that name an id (`bot_id`, `conversation_id`, …). */
  function idFields(schema: Json): string[] {
    return Object.keys(schema?.properties ?? {}).filter((k) => /_id$/.test(k));
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'otto-isolation-'));
    // A platform API that says yes to everything (Telegram's and Slack's shapes), so channels can be connected.
    platform = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, result: { id: 1, is_bot: true, first_name: 'bot', username: 'bot' }, user_id: 'U1', team_id: 'T1', bot_id: 'B1', user: 'bot', team: 'team', url: 'http://127.0.0.1/' }));
    });
    await new Promise<void>((ready) => platform.listen(0, '127.0.0.1', ready));
    platformUrl = `http://127.0.0.1:${(platform.address() as AddressInfo).port}`;
    otto = await testOtto({
      OTTO_STORAGE: 'sqlite',
      OTTO_DATA_DIR: dir,
      OTTO_SQLITE_SYNC: 'NORMAL',
      // So that secrets, webhooks and the like can be created (and walked); platforms answer nothing.
      OTTO_SECRET_KEY: randomBytes(32).toString('base64'),
      OTTO_TELEGRAM_API_BASE: platformUrl,
      OTTO_SLACK_API_BASE: platformUrl,
      OTTO_PUBLIC_URL: 'https://otto.example.com',
      // Outgoing webhooks (to the fake platform, which says 200) are delivered in one attempt.
      OTTO_WEBHOOK_MAX_ATTEMPTS: '1',
    });
    base = await otto.app.listen({ host: '127.0.0.1', port: 0 });
    for (const name of ['alice', 'bob']) {
      const user = await otto.services.accounts.createUser({ input: { username: name, role: 'builder' } });
      const { secret } = await otto.services.accounts.createKey({ user_id: user.id, input: { name: `${name} key` } });
      users.push({ name, id: user.id, secret, marker: `MARKER-${name}-${randomBytes(6).toString('hex')}`, owned: new Map(), all: new Set() });
    }
    doc = (await http(users[0]!, 'get', '/openapi.json')).json;
    assert.ok(doc?.paths, 'the OpenAPI document loads');
    for (const u of users) {
      const ok = async (method: string, url: string, body?: unknown) => {
        const r = await http(u, method, url, body);
        assert.ok(r.status >= 200 && r.status < 300, `${u.name} set-up ${method} ${url}: ${r.status} ${r.text}`);
        return r.json;
      };
      const bot = await ok('post', '/bots', { name: `Bot ${u.marker}`, description: u.marker });
      const guideline = await ok('post', `/bots/${bot.id}/guidelines`, { condition: `the user says ${u.marker}`, action: `answer ${u.marker}` });
      await ok('post', `/bots/${bot.id}/journeys`, { title: `Journey ${u.marker}`, conditions: [u.marker], steps: [{ instruction: u.marker }] });
      await ok('post', `/bots/${bot.id}/tools`, { name: 'lookup', description: u.marker, endpoint: { url: 'http://127.0.0.1:9/lookup' } });
      await ok('post', `/bots/${bot.id}/tool-mappings`, { guideline_id: guideline.id, tool_name: 'lookup' });
      const conversation = await ok('post', '/conversations', { bot_id: bot.id, title: u.marker });
      await ok('post', `/conversations/${conversation.id}/messages`, { content: `hello ${u.marker}` });
      await ok('post', '/me/keys', { name: `extra ${u.marker}` });
    }
    // Whatever else the document lets a builder create (secrets, channels, webhooks, budgets …):
    // try each remaining POST/PUT once per user with a schema-valid body naming their own ids.
    const setUp = new Set(['/bots', '/bots/{id}/guidelines', '/bots/{id}/journeys', '/bots/{id}/tools', '/bots/{id}/tool-mappings', '/conversations', '/conversations/{id}/messages', '/me/keys', '/chat']);
    for (const u of users) await collectOwned(u);
    for (const { method, path, op } of operations()) {
      if ((method !== 'post' && method !== 'put') || setUp.has(path) || path.startsWith('/agents')) continue;
      for (const u of users) {
        const url = path.replace(/\{([^}]+)\}/g, (_m, p: string) => idsOf(u, kindOf(path, p))[0] ?? unknownId());
        const schema = bodySchema(op);
        const body = schema ? sample(schema, '', (field) => idsOf(u, kindOf(`/${field.replace(/_id$/, 's')}/{id}`, 'id'))[0]) : undefined;
        await http(u, method, url, body);
      }
    }
    for (const u of users) await collectOwned(u);
  });

  it('reports what each user owns for the walk', (t) => {
    for (const u of users) t.diagnostic(`${u.name}: ${[...u.owned].map(([name, ids]) => `${name} ${ids.length}`).join(', ')}`);
  });

  after(async () => {
    await otto?.close();
    await new Promise((done) => platform?.close(done));
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the walk something to find: each user owns documents in several collections, and reaches their own', async () => {
    for (const u of users) {
      for (const name of ['bots', 'guidelines', 'journeys', 'tools', 'tool_mappings', 'conversations', 'messages', 'api_keys', 'users']) {
        assert.ok((u.owned.get(name)?.length ?? 0) > 0, `${u.name} owns ${name}`);
      }
    }
    const [alice] = users;
    const own = (await http(alice!, 'get', `/bots/${alice!.owned.get('bots')![0]}`)).json;
    assert.equal(own.description, alice!.marker);
  });

  for (const [attackerIndex, victimIndex] of [
    [0, 1],
    [1, 0],
  ] as const) {
    it(`${attackerIndex === 0 ? 'alice' : 'bob'} reaches none of ${victimIndex === 0 ? 'alice' : 'bob'}'s data through any route`, async (t) => {
      const attacker = users[attackerIndex]!;
      const victim = users[victimIndex]!;
      const before = await settled(victim);
      const victimIds = [...victim.all];
      const problems: string[] = [];
      let calls = 0;
      const walked = new Set<string>();

      const leaks = (text: string, sent: string): string[] => {
        const found: string[] = [];
        if (text.includes(victim.marker)) found.push(`the marker ${victim.marker}`);
        for (const id of victimIds) if (text.includes(id) && !sent.includes(id)) found.push(`id ${id}`);
        return found;
      };

      for (const { method, path, op } of operations()) {
        walked.add(`${method.toUpperCase()} ${path}`);
        const params: Json[] = op.parameters ?? [];
        const pathParams = params.filter((p) => p.in === 'path').map((p) => p.name as string);
        const queryParams = params.filter((p) => p.in === 'query');
        const schema = bodySchema(op);

        // Variants: [path values, query, body], each with the victim's ids somewhere, and the
        // same request with unknown ids in those places.
        type Variant = { label: string; victim: { url: string; body: unknown }; unknown: { url: string; body: unknown } };
        const variants: Variant[] = [];
        const buildUrl = (values: Record<string, string>, query: Record<string, string>) => {
          const p = path.replace(/\{([^}]+)\}/g, (_m, name: string) => encodeURIComponent(values[name]!));
          const q = new URLSearchParams(query).toString();
          return q ? `${p}?${q}` : p;
        };
        const requiredQuery = (ids: (name: string) => string | undefined): Record<string, string> => {
          const out: Record<string, string> = {};
          for (const q of queryParams) if (q.required) out[q.name] = String(sample(q.schema, q.name, ids));
          return out;
        };
        const ownIds = (field: string) => idsOf(attacker, kindOf(`/${field.replace(/_id$/, 's')}/{id}`, 'id'))[0];
        const baseBody = (ids: (field: string) => string | undefined) => (schema ? sample(schema, '', ids) : undefined);

        if (pathParams.length > 0) {
          // Every combination where at least one parameter is the victim's: the others the attacker's own.
          const choices = pathParams.map((p, i) => {
            const kind = kindOf(path, p);
            const victimChoices = idsOf(victim, kind, 12);
            const ownChoice = i < pathParams.length - 1 ? idsOf(attacker, kind, 1) : [];
            return { p, victimChoices, ownChoice };
          });
          const combos: Array<Array<{ value: string; victim: boolean }>> = [[]];
          for (const c of choices) {
            const next: typeof combos = [];
            for (const combo of combos) {
              for (const v of c.victimChoices) next.push([...combo, { value: v, victim: true }]);
              for (const v of c.ownChoice) next.push([...combo, { value: v, victim: false }]);
            }
            combos.splice(0, combos.length, ...next.slice(0, 60));
          }
          for (const combo of combos) {
            if (!combo.some((c) => c.victim)) continue;
            const victimValues: Record<string, string> = {};
            const unknownValues: Record<string, string> = {};
            pathParams.forEach((p, i) => {
              victimValues[p] = combo[i]!.value;
              unknownValues[p] = combo[i]!.victim ? unknownLike(combo[i]!.value) : combo[i]!.value;
            });
            const query = requiredQuery(ownIds);
            const body = baseBody(ownIds);
            variants.push({ label: JSON.stringify(victimValues), victim: { url: buildUrl(victimValues, query), body }, unknown: { url: buildUrl(unknownValues, query), body } });
          }
        } else {
          // Ids in the query and in the body, one field at a time.
          for (const q of queryParams.filter((q) => /_id$/.test(q.name))) {
            for (const id of idsOf(victim, kindOf(`/${q.name.replace(/_id$/, 's')}/{id}`, 'id'), 12)) {
              const query = requiredQuery(ownIds);
              variants.push({ label: `?${q.name}=${id}`, victim: { url: buildUrl({}, { ...query, [q.name]: id }), body: baseBody(ownIds) }, unknown: { url: buildUrl({}, { ...query, [q.name]: unknownLike(id) }), body: baseBody(ownIds) } });
            }
          }
          for (const field of idFields(schema)) {
            for (const id of idsOf(victim, kindOf(`/${field.replace(/_id$/, 's')}/{id}`, 'id'), 12)) {
              const victimBody = { ...(baseBody(ownIds) as object), [field]: id };
              const unknownBody = { ...(baseBody(ownIds) as object), [field]: unknownLike(id) };
              const url = buildUrl({}, requiredQuery(ownIds));
              variants.push({ label: `body.${field}=${id}`, victim: { url, body: victimBody }, unknown: { url, body: unknownBody } });
            }
          }
          // No id anywhere: the plain call must not show the victim's data either.
          const url = buildUrl({}, requiredQuery(ownIds));
          variants.push({ label: 'plain', victim: { url, body: baseBody(ownIds) }, unknown: { url, body: baseBody(ownIds) } });
        }

        for (const v of variants) {
          calls++;
          const sent = `${v.victim.url} ${JSON.stringify(v.victim.body ?? '')}`;
          const got = await http(attacker, method, v.victim.url, v.victim.body);
          const where = `${method.toUpperCase()} ${path} ${v.label}`;
          const ok = got.status >= 200 && got.status < 300;
          if (ok) {
            const found = leaks(got.text, sent);
            if (found.length > 0) problems.push(`${where}: ${got.status} reveals ${found.join(', ')}`);
          }
          if (v.label === 'plain') continue;
          if (ok && pathParams.length > 0) problems.push(`${where}: ${got.status} for another user's id (an unknown id gets 404)`);
          const control = await http(attacker, method, v.unknown.url, v.unknown.body);
          const code = (r: { json: Json }) => r.json?.error?.code;
          if (control.status !== got.status || code(control) !== code(got)) {
            problems.push(`${where}: ${got.status} ${code(got) ?? ''} for another user's id, but ${control.status} ${code(control) ?? ''} for an unknown id`);
          }
        }
      }

      const afterwards = await settled(victim);
      for (const [key, value] of before) {
        if (!afterwards.has(key)) problems.push(`${victim.name}'s ${key} was deleted`);
        else if (afterwards.get(key) !== value) problems.push(`${victim.name}'s ${key} was changed: ${value} → ${afterwards.get(key)}`);
      }
      for (const key of afterwards.keys()) if (!before.has(key)) problems.push(`${victim.name} now owns ${key}, made by ${attacker.name}`);

      t.diagnostic(`${walked.size} operations walked with ${calls} calls naming ${victim.name}'s ${victimIds.length} ids`);
      assert.ok(walked.size >= 40, `the walk covers the API (${walked.size} operations)`);
      assert.deepEqual(problems, [], `isolation problems:\n${problems.join('\n')}`);
    });
  }
});
