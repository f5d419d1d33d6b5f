import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { advanceJourneys, createOfflineRulesProvider, runTurn, type TurnOutput } from '../../src/engine/index.ts';
import { conversation, definition, journey } from './fixtures.ts';

const provider = createOfflineRulesProvider();
const onboarding = journey('jr_onboarding', 'Onboarding', ['the user says they are new'], [
  { instruction: 'welcome them to Example Shop' },
  { instruction: 'ask for their name', advance_when: ['name', 'called'] },
  { instruction: 'show them the docs at example.com/docs' },
]);
const def = definition({ journeys: [onboarding] });

async function turn(state: Record<string, number>, message: string): Promise<TurnOutput> {
  return runTurn({ definition: def, conversation: conversation(state), history: [], message }, { provider });
}

describe('journeys', () => {
  it('start when a condition matches and advance across turns through journey_state', async () => {
    const t1 = await turn({}, "Hi, I'm new here");
    assert.deepEqual(t1.journey_state, { jr_onboarding: 0 });
    assert.equal(t1.content, 'Welcome them to Example Shop.');
    assert.deepEqual(t1.agent_steps, [{ type: 'journey_step', journey_id: 'jr_onboarding', title: 'Onboarding', step: 0, instruction: 'welcome them to Example Shop' }]);

    // step 0 has no advance_when: any reply moves on
    const t2 = await turn(t1.journey_state, 'thanks!');
    assert.deepEqual(t2.journey_state, { jr_onboarding: 1 });
    assert.equal(t2.content, 'Ask for their name.');

    // step 1 waits for one of its words
    const t3 = await turn(t2.journey_state, 'what is this place?');
    assert.deepEqual(t3.journey_state, { jr_onboarding: 1 });
    assert.equal(t3.content, 'Ask for their name.');

    const t4 = await turn(t3.journey_state, 'My name is Bob');
    assert.deepEqual(t4.journey_state, { jr_onboarding: 2 });
    assert.equal(t4.content, 'Show them the docs at example.com/docs.');
    assert.deepEqual(t4.agent_steps.map((s) => s.type === 'journey_step' && s.step), [2]);

    // passing the last step finishes the journey
    const t5 = await turn(t4.journey_state, 'great, thanks');
    assert.deepEqual(t5.journey_state, {});
    assert.deepEqual(t5.meta_data.journeys_completed, ['jr_onboarding']);
    assert.equal(t5.agent_steps.length, 0);
  });

  it('do not start on unrelated messages, and drop state of unknown journeys', () => {
    const progress = advanceJourneys([onboarding], { jr_deleted: 1 }, 'where is my order?');
    assert.deepEqual(progress.journey_state, {});
    assert.deepEqual(progress.active, []);
  });

  it('do not modify the given state', () => {
    const state = Object.freeze({ jr_onboarding: 0 });
    const progress = advanceJourneys([onboarding], state, 'ok');
    assert.deepEqual(progress.journey_state, { jr_onboarding: 1 });
    assert.deepEqual(state, { jr_onboarding: 0 });
  });
});
