import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Message } from '../../src/domain/entities.ts';
import { builderHelpText, createOfflineRulesProvider, createOpenAiCompatibleProvider, ottoDefinition, runBuilderTurn, type TurnOutput } from '../../src/engine/index.ts';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fake-openai.ts';
import { fakeBuilderActions, type FakeActions } from './fake-builder-actions.ts';
import { message } from './fixtures.ts';

const offline = createOfflineRulesProvider();
let actions: FakeActions;
let history: Message[];

/** One offline turn; keeps the conversation (with Otto's steps) as history. */
async function say(text: string): Promise<TurnOutput> {
  const out = await runBuilderTurn({ message: text, history }, { actions, provider: offline });
  history.push(message('user', text), message('assistant', out.content, out.agent_steps));
  return out;
}

function builderSteps(out: TurnOutput) {
  return out.agent_steps.map((s) => (s.type === 'builder_action' ? { action: s.action, ok: s.ok } : s.type));
}

function bot(name: string) {
  return [...actions.defs.values()].find((d) => d.bot.name === name);
}

beforeEach(() => {
  actions = fakeBuilderActions();
  history = [];
});

describe('Otto offline: the command language', () => {
  it('creates bots from several phrasings', async () => {
    const a = await say('Create a bot called TestBot for testing');
    assert.deepEqual(actions.calls.at(-1), ['createBot', { name: 'TestBot', description: 'A bot for testing.' }]);
    assert.match(a.content, /^Created \*\*TestBot\*\* — A bot for testing\./);
    assert.deepEqual(builderSteps(a), [{ action: 'create_bot', ok: true }]);
    assert.equal(a.agent_steps[0]!.type === 'builder_action' && a.agent_steps[0]!.target, bot('TestBot')!.bot.id);

    await say('make a new bot named Pizza Palace that helps with ordering pizza');
    assert.deepEqual(actions.calls.at(-1), ['createBot', { name: 'Pizza Palace', description: 'Helps with ordering pizza.' }]);
    await say('create bot X');
    assert.deepEqual(actions.calls.at(-1), ['createBot', { name: 'X' }]);
    await say('Please create a bot named "Support Bot" to answer billing questions.');
    assert.deepEqual(actions.calls.at(-1), ['createBot', { name: 'Support Bot', description: 'A bot to answer billing questions.' }]);
    assert.equal(a.meta_data.command, 'create');
    assert.deepEqual(a.journey_state, {});
  });

  it('answers action errors in words, never throwing', async () => {
    await say('create bot TestBot');
    const dup = await say('create a bot called testbot');
    assert.equal(dup.content, 'I couldn\'t create "testbot": a bot named "testbot" already exists (name).');
    assert.deepEqual(builderSteps(dup), [{ action: 'create_bot', ok: false }]);

    const missing = await say('Add a guideline to NoSuchBot: when the user asks about refunds, explain the policy');
    assert.equal(missing.content, 'I couldn\'t find a bot called "NoSuchBot". Your bots: TestBot.');
    assert.deepEqual(builderSteps(missing), [{ action: 'add_guideline', ok: false }]);

    const badUrl = await say('Add a tool to TestBot called lookup at ftp://example.com/x');
    assert.match(badUrl.content, /^I couldn't add that tool to TestBot: endpoint\.url must be an http\(s\) URL\.$/);

    actions.listBots = async () => {
      throw new Error('storage unavailable');
    };
    const down = await say('list my bots');
    assert.equal(down.content, "I couldn't list your bots: storage unavailable.");
  });

  it('adds guidelines, with criticality, to bots found case-insensitively', async () => {
    await say('create bot TestBot');
    const out = await say('Add a guideline to testbot: when the user asks about refunds, explain the 30-day policy');
    const id = bot('TestBot')!.bot.id;
    assert.deepEqual(actions.calls.at(-1), ['addGuideline', id, { condition: 'the user asks about refunds', action: 'explain the 30-day policy' }]);
    assert.equal(out.content, 'Added guideline 1 to TestBot: when the user asks about refunds → explain the 30-day policy.');
    assert.deepEqual(builderSteps(out), [{ action: 'add_guideline', ok: true }]);

    await say('TestBot: if the user says hello then greet them warmly');
    assert.deepEqual(actions.calls.at(-1), ['addGuideline', id, { condition: 'the user says hello', action: 'greet them warmly' }]);
    await say('add a high priority guideline to "TestBot": when the user is angry, apologise and offer a human');
    assert.deepEqual(actions.calls.at(-1), ['addGuideline', id, { condition: 'the user is angry', action: 'apologise and offer a human', criticality: 'high' }]);

    const incomplete = await say('add a guideline to TestBot: be nice');
    assert.match(incomplete.content, /I need both a condition and an action/);
  });

  it('adds journeys with steps and advance words', async () => {
    await say('create bot X');
    const out = await say('Add a journey to X called Onboarding: when the user says they are new; steps: greet them; ask for their name (advance when: name, called); show the docs');
    assert.deepEqual(actions.calls.at(-1), [
      'addJourney',
      bot('X')!.bot.id,
      {
        title: 'Onboarding',
        conditions: ['the user says they are new'],
        steps: [{ instruction: 'greet them' }, { instruction: 'ask for their name', advance_when: ['name', 'called'] }, { instruction: 'show the docs' }],
      },
    ]);
    assert.equal(out.content, 'Added the journey "Onboarding" to X. It starts when "the user says they are new"; steps: 1) greet them 2) ask for their name 3) show the docs.');
  });

  it('adds tools and maps them to guidelines by number, id or words', async () => {
    await say('create bot X');
    await say('add a guideline to X: when the user asks about refunds, explain the policy');
    await say('add a guideline to X: when the user asks about shipping, give delivery times');
    const id = bot('X')!.bot.id;
    const [refund, shipping] = bot('X')!.guidelines;

    const added = await say('Add a tool to X called order_status at http://127.0.0.1:9000/orders (GET)');
    assert.deepEqual(actions.calls.at(-1), ['addTool', id, { name: 'order_status', endpoint: { url: 'http://127.0.0.1:9000/orders', method: 'GET' } }]);
    assert.match(added.content, /^Added the tool order_status to X \(GET http:\/\/127\.0\.0\.1:9000\/orders\)\./);
    await say('add a tool to X called track at http://127.0.0.1:9000/track (POST) that tracks parcels');
    assert.deepEqual(actions.calls.at(-1), ['addTool', id, { name: 'track', description: 'Tracks parcels.', endpoint: { url: 'http://127.0.0.1:9000/track', method: 'POST' } }]);

    const byNumber = await say('Map tool order_status to guideline 1 of X');
    assert.deepEqual(actions.calls.at(-1), ['mapTool', id, { guideline_id: refund!.id, tool_name: 'order_status' }]);
    assert.equal(byNumber.content, 'X will now call order_status when guideline 1 matches ("the user asks about refunds").');
    await say(`map track to guideline ${shipping!.id} of X`);
    assert.deepEqual(actions.calls.at(-1), ['mapTool', id, { guideline_id: shipping!.id, tool_name: 'track' }]);
    await say('When the shipping guideline of X matches, call order_status');
    assert.deepEqual(actions.calls.at(-1), ['mapTool', id, { guideline_id: shipping!.id, tool_name: 'order_status' }]);

    const noTool = await say('map tool nope to guideline 1 of X');
    assert.equal(noTool.content, 'X has no tool called nope. Its tools: order_status, track.');
    const noGuideline = await say('map tool track to guideline 7 of X');
    assert.match(noGuideline.content, /there is no guideline 7 \(it has 2\)/);
    assert.deepEqual(builderSteps(noGuideline), [{ action: 'map_tool', ok: false }]);
  });

  it('lists, describes and renames bots', async () => {
    const empty = await say('what bots do I have?');
    assert.match(empty.content, /^You don't have any bots yet/);
    await say('create a bot called TestBot for testing');
    await say('add a guideline to TestBot: when the user asks about refunds, explain the policy (high)');
    const list = await say('List my bots');
    assert.equal(list.content, 'You have 1 bot:\n- **TestBot** — A bot for testing.');
    assert.deepEqual(builderSteps(list), [{ action: 'list_bots', ok: true }]);

    const shown = await say('Describe TestBot');
    assert.match(shown.content, /^\*\*TestBot\*\* \(bot_\d+\) — A bot for testing\./);
    assert.match(shown.content, /1\. When the user asks about refunds → explain the policy \[high\]/);
    assert.deepEqual((await say('show testbot')).content, shown.content);

    const renamed = await say('Rename TestBot to HelpBot');
    assert.equal(renamed.content, 'Renamed TestBot to **HelpBot**.');
    assert.ok(bot('HelpBot'));
    await say('set the description of HelpBot to answers billing questions');
    assert.equal(bot('HelpBot')!.bot.description, 'Answers billing questions.');
  });

  it('asks before deleting, and deletes on "yes" (using history) or "…, confirm"', async () => {
    await say('create bot TestBot');
    const asked = await say('Delete bot TestBot');
    assert.match(asked.content, /^Are you sure you want to delete \*\*TestBot\*\*/);
    assert.deepEqual(builderSteps(asked), [{ action: 'confirm_delete_bot', ok: true }]);
    assert.ok(bot('TestBot'), 'not deleted yet');
    const yes = await say('yes');
    assert.equal(yes.content, 'Deleted TestBot.');
    assert.deepEqual(builderSteps(yes), [{ action: 'delete_bot', ok: true }]);
    assert.equal(bot('TestBot'), undefined);

    await say('create bot Keep');
    await say('delete bot Keep');
    const no = await say('no');
    assert.equal(no.content, "OK, I'll keep Keep.");
    assert.ok(bot('Keep'));
    // a stale question cannot be answered later
    await say('list my bots');
    assert.match((await say('yes')).content, /nothing waiting for your confirmation/);
    assert.ok(bot('Keep'));

    const direct = await say('delete bot Keep, confirm');
    assert.equal(direct.content, 'Deleted Keep.');
    assert.equal(bot('Keep'), undefined);
  });

  it('answers help with the command list and unknown messages with a short help', async () => {
    assert.equal((await say('help')).content, builderHelpText);
    const unknown = await say('blorp the wibble');
    assert.match(unknown.content, /^I didn't catch that\. Try "create a bot called/);
    assert.deepEqual(unknown.agent_steps, []);
    assert.match(builderHelpText, /Create a bot called TestBot for testing/);
  });

  it('describes Otto itself as a built-in bot', () => {
    const otto = ottoDefinition();
    assert.equal(otto.bot.id, 'otto');
    assert.equal(otto.bot.name, 'Otto');
    assert.equal(otto.bot.owner_id, 'system');
    assert.equal(otto.builtIn, true);
    assert.equal(otto.bot.max_engine_iterations, 3);
    assert.notEqual(ottoDefinition(), otto, 'a fresh object each call');
  });
});

describe('Otto with a language model (fake OpenAI server)', () => {
  let fake: FakeOpenAi;
  before(async () => {
    fake = await startFakeOpenAi();
  });
  after(async () => {
    await fake.close();
  });

  it('creates a bot through tool calling', async () => {
    fake.reset();
    fake.enqueue(
      { tool_calls: [{ id: 'c1', name: 'create_bot', arguments: { name: 'PizzaBot', description: 'Takes pizza orders.' } }] },
      { content: 'Done — PizzaBot is ready. Want to add a guideline?' },
    );
    const provider = createOpenAiCompatibleProvider({ baseUrl: fake.baseUrl, apiKey: 'sk-otto', model: 'fake-model' });
    const out = await runBuilderTurn({ message: 'I need a bot that takes pizza orders, call it PizzaBot', history: [] }, { actions, provider });

    assert.equal(out.content, 'Done — PizzaBot is ready. Want to add a guideline?');
    assert.deepEqual(actions.calls.find((c) => c[0] === 'createBot'), ['createBot', { name: 'PizzaBot', description: 'Takes pizza orders.' }]);
    assert.deepEqual(out.agent_steps.map((s) => (s.type === 'builder_action' ? `${s.action}:${s.ok}` : s.type)), ['provider', 'create_bot:true', 'provider']);
    const names = fake.requests[0]!.body.tools.map((t: { function: { name: string } }) => t.function.name);
    assert.deepEqual(names, ['list_bots', 'describe_bot', 'create_bot', 'add_guideline', 'add_journey', 'add_tool', 'map_tool', 'rename_bot', 'set_description', 'delete_bot']);
    assert.match(fake.requests[0]!.body.messages[0].content, /^You are Otto/);
    const result = JSON.parse(fake.requests[1]!.body.messages.at(-1).content);
    assert.equal(result.ok, true);
    assert.equal(result.name, 'PizzaBot');
    assert.equal(out.usage?.tokens_in, 22);
  });

  it('reports action failures to the model and only deletes after a yes', async () => {
    fake.reset();
    await actions.createBot({ name: 'Old' });
    const provider = createOpenAiCompatibleProvider({ baseUrl: fake.baseUrl, model: 'fake-model' });
    fake.enqueue({ tool_calls: [{ name: 'create_bot', arguments: { name: 'old' } }, { name: 'delete_bot', arguments: { bot: 'Old' } }] }, { content: 'Old already exists. Delete it?' });
    const first = await runBuilderTurn({ message: 'recreate Old from scratch', history: [] }, { actions, provider });
    assert.deepEqual(first.agent_steps.filter((s) => s.type === 'builder_action').map((s) => s.type === 'builder_action' && `${s.action}:${s.ok}`), ['create_bot:false', 'confirm_delete_bot:true']);
    const results = fake.requests[1]!.body.messages.filter((m: { role: string }) => m.role === 'tool').map((m: { content: string }) => JSON.parse(m.content));
    assert.equal(results[0].ok, false);
    assert.match(results[0].message, /already exists/);
    assert.equal(results[1].needs_confirmation, true);
    assert.ok(bot('Old'));

    fake.enqueue({ tool_calls: [{ name: 'delete_bot', arguments: { bot: 'Old' } }] }, { content: 'Deleted.' });
    const hist = [message('user', 'recreate Old from scratch'), message('assistant', first.content, first.agent_steps)];
    const second = await runBuilderTurn({ message: 'yes', history: hist }, { actions, provider });
    assert.equal(second.content, 'Deleted.');
    assert.equal(bot('Old'), undefined);
  });
});
