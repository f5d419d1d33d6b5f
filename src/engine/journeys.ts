/**
 * Journey progress. `journey_state[journey_id]` is the index (0-based) of the step the
 * bot is at: its instruction has been given and the journey waits for the user's reply.
 */
import type { AgentStep, Journey } from '../domain/entities.ts';
import { MATCH_THRESHOLD, bestConditionScore, prepareMessage } from './matcher.ts';

/** A journey step the reply should carry out this turn. */
export interface ActiveJourneyStep {
  journey: Journey;
  /** 0-based index into `journey.steps`. */
  step: number;
  instruction: string;
  /** True when the journey started with this message. */
  started: boolean;
}

/** What a message did to the bot's journeys. */
export interface JourneyProgress {
  /** The new state: only journeys still in progress; finished and unknown journeys are dropped. */
  journey_state: Record<string, number>;
  active: ActiveJourneyStep[];
  /** Ids of journeys whose last step was passed with this message. */
  completed: string[];
  /** One `journey_step` agent step per active journey. */
  steps: AgentStep[];
}

/**
 * Moves every journey on by one message, in the bot's journey order:
 * - a journey in progress advances past its current step when one of the step's
 *   `advance_when` words matches the message (any reply does when the list is empty),
 *   and finishes after its last step; otherwise it stays on the step;
 * - a journey not in progress starts at step 0 when one of its `conditions` matches.
 * Pure and deterministic; `state` is not modified.
 */
export function advanceJourneys(journeys: readonly Journey[], state: Readonly<Record<string, number>>, message: string): JourneyProgress {
  const features = prepareMessage(message);
  const next: Record<string, number> = {};
  const active: ActiveJourneyStep[] = [];
  const completed: string[] = [];
  for (const journey of journeys) {
    if (journey.steps.length === 0) continue;
    const current = state[journey.id];
    if (typeof current === 'number' && Number.isInteger(current) && current >= 0 && current < journey.steps.length) {
      const step = journey.steps[current]!;
      const words = (step.advance_when ?? []).filter((w) => w.trim() !== '');
      const advance = words.length === 0 || bestConditionScore(words, features) >= MATCH_THRESHOLD;
      const index = advance ? current + 1 : current;
      if (index >= journey.steps.length) {
        completed.push(journey.id);
        continue;
      }
      next[journey.id] = index;
      active.push({ journey, step: index, instruction: journey.steps[index]!.instruction, started: false });
    } else if (journey.conditions.length > 0 && bestConditionScore(journey.conditions, features) >= MATCH_THRESHOLD) {
      next[journey.id] = 0;
      active.push({ journey, step: 0, instruction: journey.steps[0]!.instruction, started: true });
    }
  }
  const steps: AgentStep[] = active.map((a) => ({
    type: 'journey_step',
    journey_id: a.journey.id,
    title: a.journey.title,
    step: a.step,
    instruction: a.instruction,
  }));
  return { journey_state: next, active, completed, steps };
}
