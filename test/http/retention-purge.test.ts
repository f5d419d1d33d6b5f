/**
 * Message retention (per-bot `retention_days`, swept in batches) and `otto purge --user`, on a
 * real SQLite file and on the MongoDB-wire test server.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { collections } from '../../src/domain/collections.ts';
import { newId, type Message } from '../../src/domain/index.ts';
import type { Otto } from '../../src/http/otto.ts';
import { RetentionSweeper } from '../../src/services/index.ts';
import { eq } from '../../src/storage/index.ts';
import { targetSpec } from '../../src/storage/transfer/collections.ts';
import { mongoTestTarget } from '../support/mongodb-server.ts';
import { call, testOtto } from '../support/otto.ts';
import { cli } from '../support/cli.ts';

const mongo = await mongoTestTarget();
if ('skip' in mongo) process.stderr.write(`${mongo.skip}\n`);
else after(() => mongo.stop());

const DAY = 86_400_000;
const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });


interface Engine {
  name: string;
  skip?: string;
  env: () => Promise<{ env: NodeJS.ProcessEnv; cleanup: () => Promise<void> }>;
}

const engines: Engine[] = [
  {
    name: 'SQLite',
    env: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'otto-retention-'));
      return { env: { OTTO_STORAGE: 'sqlite', OTTO_DATA_DIR: dir, OTTO_SQLITE_SYNC: 'NORMAL', OTTO_SYNC_INTERVAL_MS: '50' }, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'MongoDB (FerretDB)',
    skip: 'skip' in mongo ? mongo.skip : undefined,
    env: async () => ({
      env: { OTTO_STORAGE: 'mongodb', MONGODB_URI: 'uri' in mongo ? mongo.uri : '', MONGODB_DATABASE: `otto_retention_${randomBytes(4).toString('hex')}`, OTTO_SYNC_INTERVAL_MS: '50' },
      cleanup: async () => {},
    }),
  },
];

for (const engine of engines) {
  describe(`retention and purge on ${engine.name}`, { skip: engine.skip }, () => {
    it('deletes messages older than the bot\'s retention_days in batches, keeps offsets going, and leaves other bots alone', async () => {
      const { env, cleanup } = await engine.env();
      let otto: Otto | undefined;
      try {
        otto = await testOtto(env);
        assert.equal((await call(otto, 'POST', '/bots', { name: 'Bad', retention_days: 0 })).status, 400);
        const shortLived = (await call(otto, 'POST', '/bots', { name: 'Short', retention_days: 7 })).json;
        assert.equal(shortLived.retention_days, 7);
        const keeper = (await call(otto, 'POST', '/bots', { name: 'Keeper' })).json;
        assert.equal(keeper.retention_days, null);
        const messages = await otto.storage.store.collection<Message>(collections.messages);
        const old = new Date(Date.now() - 10 * DAY).toISOString();
        const seed = async (botId: string) => {
          const conversation = (await call(otto!, 'POST', '/conversations', { bot_id: botId })).json;
          // Five messages from ten days ago, then a turn today (offsets 6 and 7).
          await messages.insertMany({
            docs: Array.from({ length: 5 }, (_, i) => ({ id: newId('msg'), owner_id: conversation.owner_id, conversation_id: conversation.id, offset: i + 1, role: 'user' as const, content: `old ${i}`, agent_steps: [], pdf_names: [], source_citations: [], meta_data: {}, created_at: old, updated_at: old })),
          });
          const conversations = await otto!.storage.store.collection(collections.conversations);
          await conversations.update({ id: conversation.id, patch: { last_offset: 5 } });
          const turn = await call(otto!, 'POST', `/conversations/${conversation.id}/messages`, { content: 'hello today' });
          assert.equal(turn.status, 201, turn.body);
          assert.equal(turn.json.reply.offset, 7);
          return conversation.id as string;
        };
        const shortConversation = await seed(shortLived.id);
        const keeperConversation = await seed(keeper.id);
        const offsets = async (id: string) => (await messages.find({ where: eq('conversation_id', id), sort: [{ field: 'offset', direction: 'asc' }], limit: 100 })).items.map((m) => m.offset);

        const sweeper = await RetentionSweeper.open({ store: otto.storage.store, batchSize: 2 });
        const lines: string[] = [];
        const result = await sweeper.sweep({ onProgress: (line) => lines.push(line) });
        assert.deepEqual(result, { bots: 1, conversations: 1, deleted: 5 });
        assert.match(lines.join('\n'), /5 message\(s\) older than 7 day\(s\) deleted/);
        assert.deepEqual(await offsets(shortConversation), [6, 7]);
        assert.deepEqual(await offsets(keeperConversation), [1, 2, 3, 4, 5, 6, 7]);
        assert.deepEqual(await sweeper.sweep(), { bots: 1, conversations: 1, deleted: 0 }, 'a second sweep finds nothing');

        // A week later everything of the short-lived bot is gone, yet the next turn continues at 8.
        assert.equal((await sweeper.sweep({ now: Date.now() + 8 * DAY })).deleted, 2);
        assert.deepEqual(await offsets(shortConversation), []);
        const next = await call(otto, 'POST', `/conversations/${shortConversation}/messages`, { content: 'still there?' });
        assert.equal(next.json.message.offset, 8);
        assert.deepEqual(await offsets(keeperConversation), [1, 2, 3, 4, 5, 6, 7]);

        // Turning retention off (null) stops the sweeping.
        const patched = await call(otto, 'PATCH', `/bots/${shortLived.id}`, { retention_days: null });
        assert.equal(patched.json.retention_days, null);
        assert.deepEqual(await sweeper.sweep({ now: Date.now() + 30 * DAY }), { bots: 0, conversations: 0, deleted: 0 });
      } finally {
        await otto?.close();
        await cleanup();
      }
    });

    it('`otto purge --user` deletes everything the user owns, in every collection, and nothing else', async () => {
      const { env, cleanup } = await engine.env();
      let otto: Otto | undefined;
      try {
        otto = await testOtto(env);
        const accounts = otto.services.accounts;
        const people: Record<string, { id: string; secret: string }> = {};
        for (const username of ['alice', 'bob']) {
          const user = await accounts.createUser({ input: { username } });
          people[username] = { id: user.id, secret: (await accounts.createKey({ user_id: user.id })).secret };
          const h = bearer(people[username]!.secret);
          const bot = (await call(otto, 'POST', '/bots', { name: `${username} bot` }, h)).json;
          await call(otto, 'POST', `/bots/${bot.id}/guidelines`, { condition: 'the user says hi', action: 'greet' }, h);
          await call(otto, 'POST', `/bots/${bot.id}/journeys`, { title: 'J', conditions: ['start'] }, h);
          await call(otto, 'POST', '/chat', { bot_id: bot.id, message: 'hi' }, h);
          await call(otto, 'POST', '/chat', { bot_id: 'otto', message: 'list my bots' }, h);
          // A collection Otto does not know yet: owner-scoped documents there go too.
          const extra = await otto.storage.store.collection(targetSpec('test_notes'));
          await extra.insert({ doc: { id: newId('note'), owner_id: user.id, text: 'x' } });
        }
        const owned = async (ownerId: string) => {
          const counts: Record<string, number> = {};
          for (const name of (await otto!.storage.store.listCollections()).filter((n) => !n.startsWith('_'))) {
            const n = await (await otto!.storage.store.collection(targetSpec(name))).count({ where: eq('owner_id', ownerId) });
            if (n > 0) counts[name] = n;
          }
          return counts;
        };
        const aliceBefore = await owned(people.alice!.id);
        const bobBefore = await owned(people.bob!.id);
        for (const name of ['bots', 'guidelines', 'journeys', 'conversations', 'messages', 'api_keys', 'test_notes']) assert.ok(aliceBefore[name]! > 0, `alice owns ${name}`);
        assert.equal((await call(otto, 'GET', '/me', undefined, bearer(people.alice!.secret))).status, 200);

        const purged = await cli(['purge', '--user', 'alice', '--batch-size', '2'], env);
        assert.equal(purged.code, 0, purged.err);
        assert.match(purged.err, /messages: \d+ deleted/);
        const total = Object.values(aliceBefore).reduce((a, b) => a + b, 0);
        assert.match(purged.out, new RegExp(`total ${total} document\\(s\\) deleted; user deleted`));

        assert.deepEqual(await owned(people.alice!.id), {});
        assert.deepEqual(await owned(people.bob!.id), bobBefore);
        const users = await otto.storage.store.collection(collections.users);
        assert.equal(await users.get({ id: people.alice!.id }), null);
        // The running Otto (another "process" as far as the store is concerned) refuses her key at once.
        assert.equal((await call(otto, 'GET', '/me', undefined, bearer(people.alice!.secret))).status, 401);
        assert.equal((await call(otto, 'GET', '/bots', undefined, bearer(people.bob!.secret))).json.length, 2);
        assert.equal((await cli(['purge', '--user', 'alice'], env)).code, 1, 'an unknown user is an error');
      } finally {
        await otto?.close();
        await cleanup();
      }
    });
  });
}
