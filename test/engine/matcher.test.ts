import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOfflineRulesProvider, MATCH_THRESHOLD, matchGuidelines, runTurn, scoreCondition } from '../../src/engine/index.ts';
import { stem } from '../../src/engine/text/tokenize.ts';
import { bot, conversation, definition, guideline, refundGuideline } from './fixtures.ts';

const provider = createOfflineRulesProvider();

describe('guideline matching', () => {
  it('answers "can I get my money back?" with the refund guideline', async () => {
    const matches = matchGuidelines([refundGuideline], 'can I get my money back?');
    assert.equal(matches.length, 1);
    assert.ok(matches[0]!.score >= MATCH_THRESHOLD);

    const out = await runTurn({ definition: definition({ guidelines: [refundGuideline] }), conversation: conversation(), history: [], message: 'can I get my money back?' }, { provider });
    assert.equal(out.content, 'Explain the 30-day refund policy.');
    assert.deepEqual(out.agent_steps, [
      { type: 'guideline_matched', guideline_id: 'gl_refund', condition: refundGuideline.condition, action: refundGuideline.action, score: matches[0]!.score },
    ]);
    assert.equal(out.usage, undefined);
    assert.equal(out.meta_data.mode, 'offline');
  });

  it('matches the built-in concepts of common support intents', () => {
    const cases: Array<[condition: string, message: string]> = [
      ['the user asks about refunds', 'I want to be reimbursed'],
      ['the user asks about refunds', 'how do I return this and get a refund'],
      ['the customer wants to cancel their subscription', 'I want to end my subscription'],
      ['the customer wants to cancel their subscription', 'how do I unsubscribe?'],
      ['the user asks about pricing', 'how much does it cost?'],
      ['the user asks about opening hours', 'when are you open on Sunday?'],
      ['the user asks about shipping', 'when will my delivery arrive?'],
      ['the user forgot their password', "I can't log in"],
      ['the user wants to talk to a human', 'can I speak to a real person?'],
      ['the user asks for an agent', 'get me a representative'],
      ['the user says hello', 'hey there!'],
      ['the user thanks the bot', 'thank you so much'],
    ];
    for (const [condition, message] of cases) {
      assert.ok(scoreCondition(condition, message) >= MATCH_THRESHOLD, `${JSON.stringify(condition)} should match ${JSON.stringify(message)} (${scoreCondition(condition, message)})`);
    }
  });

  it('does not match unrelated messages', () => {
    const guidelines = [
      refundGuideline,
      guideline('gl_ship', 'the user asks about shipping', 'give the delivery times'),
      guideline('gl_pw', 'the user forgot their password', 'send the reset link'),
      guideline('gl_hours', 'the user asks about opening hours', 'list the opening hours'),
    ];
    for (const message of ["what's the weather like in Paris?", 'tell me a joke', 'my name is Anna', 'I like turtles', '']) {
      assert.deepEqual(matchGuidelines(guidelines, message), [], message);
    }
  });

  it('never matches disabled guidelines', async () => {
    const disabled = { ...refundGuideline, enabled: false };
    assert.deepEqual(matchGuidelines([disabled], 'I want a refund'), []);
    const out = await runTurn({ definition: definition({ guidelines: [disabled] }), conversation: conversation(), history: [], message: 'I want a refund' }, { provider });
    assert.equal(out.agent_steps.length, 0);
    assert.equal(out.meta_data.fallback, true);
    assert.match(out.content, /^I'm not sure I can help with that yet\. I'm ShopBot: Answers questions about orders at Example Shop\./);
  });

  it('lets high criticality break ties, then keeps the given order', () => {
    const low = guideline('gl_low', 'the user asks about refunds', 'say A', { criticality: 'low' });
    const high = guideline('gl_high', 'the user asks about refunds', 'say B', { criticality: 'high' });
    const medium = guideline('gl_med', 'the user asks about refunds', 'say C');
    assert.deepEqual(matchGuidelines([low, medium, high], 'refund please').map((m) => m.guideline.id), ['gl_high', 'gl_med', 'gl_low']);
  });

  it('ranks the better-covered condition first', () => {
    const specific = guideline('gl_a', 'the user wants to cancel their subscription', 'explain cancellation');
    const general = guideline('gl_b', 'the user mentions their subscription', 'describe the plans');
    const matches = matchGuidelines([general, specific], 'please cancel my subscription');
    assert.equal(matches[0]!.guideline.id, 'gl_a');
  });

  it('stems words simply and consistently', () => {
    assert.equal(stem('refunds'), 'refund');
    assert.equal(stem('asking'), 'ask');
    assert.equal(stem('shipped'), stem('shipping'));
    assert.equal(stem('policies'), 'policy');
    assert.equal(stem('cancellation'), stem('cancelled'));
    assert.equal(stem('pricing'), stem('price'));
  });

  it('is deterministic: the same input gives the same output', async () => {
    const def = definition({
      bot: bot(),
      guidelines: [refundGuideline, guideline('gl_ship', 'the user asks about shipping', 'give the delivery times', { criticality: 'high' })],
    });
    const input = { definition: def, conversation: conversation(), history: [], message: 'where is my parcel, and can I get my money back?' };
    const first = await runTurn(input, { provider });
    const second = await runTurn(structuredClone(input), { provider });
    assert.deepEqual(second, first);
    // equal scores (both via a concept): the high-criticality guideline comes first
    assert.equal(first.content, 'Give the delivery times. Explain the 30-day refund policy.');
  });
});
