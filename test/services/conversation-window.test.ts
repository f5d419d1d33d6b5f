/**
 * A turn's window (ConversationService.window): kept in memory between turns, yet always
 * equal to what a fresh read of the store returns, including messages and changes written
 * through another service (another Otto process) on the same SQLite file.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { collections, type Conversation, type Message } from '../../src/domain/index.ts';
import { ConversationService } from '../../src/services/conversations.ts';
import type { Caller } from '../../src/services/caller.ts';
import type { FindOptions, Store } from '../../src/storage/contract.ts';
import { createSqliteStore } from '../../src/storage/sqlite/sqlite-store.ts';

const caller: Caller = { owner_id: 'local', admin: true, user_id: null, username: 'local', role: 'admin', auth: 'local' };
const LIMIT = 4;

/** The store, with every `find` on messages recorded (whether it read the whole window or only what follows an offset). */
function recordingStore(store: Store, finds: FindOptions[]): Store {
  return new Proxy(store, {
    get(target, key, receiver) {
      if (key !== 'collection') return Reflect.get(target, key, receiver);
      return async (spec: { name: string }) => {
        const collection = await target.collection(spec as never);
        if (spec.name !== collections.messages.name) return collection;
        return new Proxy(collection, {
          get(c, k, r) {
            if (k !== 'find') return Reflect.get(c, k, r);
            return (args: FindOptions) => (finds.push(args), c.find(args));
          },
        });
      };
    },
  });
}

const offsets = (messages: Message[]) => messages.map((m) => m.offset);

describe('a turn\'s window of recent messages', () => {
  let dir: string;
  let stores: Store[];
  let here: ConversationService;
  let elsewhere: ConversationService;
  const finds: FindOptions[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'otto-window-'));
    stores = [await createSqliteStore({ path: join(dir, 'otto.db') }), await createSqliteStore({ path: join(dir, 'otto.db') })];
    here = await ConversationService.open(recordingStore(stores[0]!, finds));
    elsewhere = await ConversationService.open(stores[1]!);
  });
  after(async () => {
    for (const store of stores) await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** What a process that never saw the conversation reads. */
  async function fresh(id: string): Promise<Message[]> {
    const reader = await ConversationService.open(stores[1]!);
    return reader.window(id, LIMIT);
  }

  const say = (service: ConversationService, conversation: Conversation, content: string) => service.append({ conversation, message: { role: 'user', content } });

  it('is read once, then kept current with this process\'s appends without reading it again', async () => {
    const conversation = await here.create({ caller, input: { bot_id: 'bot_x' } });
    assert.deepEqual(await here.window(conversation.id, LIMIT), []);
    for (let i = 1; i <= 6; i++) await say(here, conversation, `message ${i}`);
    finds.length = 0;
    const window = await here.window(conversation.id, LIMIT);
    assert.deepEqual(offsets(window), [3, 4, 5, 6]);
    assert.deepEqual(window, await fresh(conversation.id));
    // Only what follows the last known offset was read.
    assert.equal(finds.length, 1);
    assert.ok(JSON.stringify(finds[0]!.where).includes('"gt"'), JSON.stringify(finds[0]));
  });

  it('includes messages and error steps another process wrote since', async () => {
    const conversation = await here.create({ caller, input: { bot_id: 'bot_x' } });
    await say(here, conversation, 'one');
    await here.window(conversation.id, LIMIT);
    await say(elsewhere, conversation, 'two, from another process');
    const mine = await say(here, conversation, 'three');
    assert.equal(mine.offset, 3);
    const failed = await here.recordError({ message: mine, step: { type: 'error', code: 'PROVIDER_FAILED', message: 'down' } });
    const window = await here.window(conversation.id, LIMIT);
    assert.deepEqual(offsets(window), [1, 2, 3]);
    assert.equal(window[1]!.content, 'two, from another process');
    assert.deepEqual(window[2], failed);
    assert.deepEqual(window, await fresh(conversation.id));
  });

  it('stays exact when another process writes many messages at once (more than the window)', async () => {
    const conversation = await here.create({ caller, input: { bot_id: 'bot_x' } });
    await say(here, conversation, 'first');
    await here.window(conversation.id, LIMIT);
    for (let i = 0; i < 7; i++) await say(elsewhere, conversation, `burst ${i}`);
    const window = await here.window(conversation.id, LIMIT);
    assert.deepEqual(offsets(window), [5, 6, 7, 8]);
    assert.deepEqual(window, await fresh(conversation.id));
    await say(here, conversation, 'after the burst');
    assert.deepEqual(offsets(await here.window(conversation.id, LIMIT)), [6, 7, 8, 9]);
  });

  it('is read again in full once forgotten, as after a degraded-mode recovery renumbered messages', async () => {
    const conversation = await here.create({ caller, input: { bot_id: 'bot_x' } });
    await say(here, conversation, 'one');
    const mine = await say(here, conversation, 'two, spooled while the primary was away');
    await here.window(conversation.id, LIMIT);
    // Recovery found offset 2 taken by another process meanwhile: its message moves to 3.
    const messages = await stores[1]!.collection<Message>(collections.messages);
    await messages.update({ id: mine.id, patch: { offset: 3 } });
    const taken = await messages.insert({ doc: { ...mine, id: 'msg_elsewhere', offset: 2, content: 'two, from elsewhere' } });
    assert.equal(taken.offset, 2);
    here.forgetWindows();
    const window = await here.window(conversation.id, LIMIT);
    assert.deepEqual(window.map((m) => m.content), ['one', 'two, from elsewhere', 'two, spooled while the primary was away']);
    assert.deepEqual(window, await fresh(conversation.id));
  });

  describe('starting a turn (beginTurn: the window, then the user\'s message)', () => {
    const turn = (service: ConversationService, conversation: Conversation, content: string) => service.beginTurn({ conversation, message: { role: 'user', content }, limit: LIMIT });

    it('reads nothing when the window is kept: the message takes the offset after the window\'s last', async () => {
      const conversation = await here.create({ caller, input: { bot_id: 'bot_x' } });
      for (let i = 1; i <= 5; i++) await say(here, conversation, `message ${i}`);
      const before = await here.window(conversation.id, LIMIT);
      finds.length = 0;
      const started = await turn(here, conversation, 'six');
      assert.equal(finds.length, 0, JSON.stringify(finds));
      assert.deepEqual(started.history, before);
      assert.deepEqual(offsets(started.history), [2, 3, 4, 5]);
      assert.equal(started.message.offset, 6);
      assert.deepEqual(offsets(await here.window(conversation.id, LIMIT)), [3, 4, 5, 6]);
    });

    it('brings in what another process appended meanwhile (its offset is taken), however much', async () => {
      const conversation = await here.create({ caller, input: { bot_id: 'bot_x' } });
      await turn(here, conversation, 'one');
      await say(elsewhere, conversation, 'two, from another process');
      const second = await turn(here, conversation, 'three');
      assert.deepEqual(second.history.map((m) => m.content), ['one', 'two, from another process']);
      assert.equal(second.message.offset, 3);
      for (let i = 0; i < 7; i++) await say(elsewhere, conversation, `burst ${i}`);
      const third = await turn(here, conversation, 'after the burst');
      assert.deepEqual(offsets(third.history), [7, 8, 9, 10]);
      assert.equal(third.message.offset, 11);
      assert.deepEqual([...third.history, third.message].slice(-LIMIT), await fresh(conversation.id));
    });

    it('never reuses an offset the conversation has used, even when its message is gone', async () => {
      const conversation = await here.create({ caller, input: { bot_id: 'bot_x' } });
      await turn(here, conversation, 'one');
      await turn(here, conversation, 'two');
      // Another process appends offset 3 and saves it as the conversation's last; then it is deleted (retention).
      const third = await say(elsewhere, conversation, 'three');
      await elsewhere.saveTurnState({ conversation, journey_state: {}, last_offset: 3 });
      await (await stores[1]!.collection<Message>(collections.messages)).delete({ id: third.id });
      const current = await here.get({ caller, id: conversation.id });
      const started = await turn(here, current, 'four');
      assert.equal(started.message.offset, 4);
      assert.deepEqual(offsets(started.history), [1, 2]);
    });

    it('two turns at once in one process on one conversation take distinct offsets, each seeing the window before its message', async () => {
      const conversation = await here.create({ caller, input: { bot_id: 'bot_x' } });
      await turn(here, conversation, 'one');
      const [a, b] = await Promise.all([turn(here, conversation, 'a'), turn(here, conversation, 'b')]);
      assert.deepEqual([a.message.offset, b.message.offset].sort(), [2, 3]);
      const [first, second] = a.message.offset === 2 ? [a, b] : [b, a];
      assert.deepEqual(offsets(first.history), [1]);
      assert.deepEqual(offsets(second.history), [1, 2]);
    });
  });

  it('hands out copies: changing a returned window changes nothing kept', async () => {
    const conversation = await here.create({ caller, input: { bot_id: 'bot_x' } });
    await say(here, conversation, 'a');
    const window = await here.window(conversation.id, LIMIT);
    window.push(window[0]!);
    window.length = 0;
    assert.deepEqual(offsets(await here.window(conversation.id, LIMIT)), [1]);
  });
});
