/**
 * One turn of a bot: match guidelines, move journeys, call mapped tools, compose the reply
 * (offline rules or an LLM). Persists nothing; the service layer stores what it returns.
 */
import type { AgentStep, BotDefinition, Conversation, Message } from '../domain/entities.ts';
import { EngineError } from './errors.ts';
import { advanceJourneys } from './journeys.ts';
import { composeLlmReply } from './llm-reply.ts';
import { matchGuidelines } from './matcher.ts';
import { composeOfflineReply, type ToolReport } from './offline-reply.ts';
import { isOfflineProvider } from './providers/offline-rules.ts';
import type { Provider } from './providers/types.ts';
import { callTool, eligibleTools, toolStep } from './tool-calls.ts';

/** The most guidelines a turn applies (best first); further matches are ignored. */
export const MAX_APPLIED_GUIDELINES = 5;

/** What a turn produced: the assistant message's fields, the new journey state and usage. */
export interface TurnOutput {
  content: string;
  agent_steps: AgentStep[];
  source_citations: Array<Record<string, unknown>>;
  meta_data: Record<string, unknown>;
  /** The conversation's new journey state (journeys in progress only). */
  journey_state: Record<string, number>;
  /** Present when a language model was used: totals over the turn's completions. */
  usage?: { provider: string; model: string; tokens_in: number; tokens_out: number; latency_ms: number };
}

/** A turn's input: the bot, the conversation, its recent messages (oldest first) and the user's message. */
export interface TurnInput {
  definition: BotDefinition;
  conversation: Conversation;
  /** Recent window, oldest first; may end with the user's message already stored (it is not repeated). */
  history: Message[];
  message: string;
}

/** A turn's collaborators. */
export interface TurnDeps {
  provider: Provider;
  /** Used for tool calls (not for the provider); default global fetch. */
  fetch?: typeof fetch;
  /** Caps every tool's timeout (the smaller of this and `endpoint.timeout_ms` applies). */
  toolTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Runs one turn.
 * - Guidelines: enabled guidelines matched lexically (see `matchGuidelines`), at most five,
 *   each recorded as a `guideline_matched` step with its score.
 * - Journeys: advanced from `conversation.journey_state` (see `advanceJourneys`), recorded
 *   as `journey_step` steps; the new state is returned, not stored.
 * - Tools: only tools mapped to the matched guidelines are eligible. Offline, each is called
 *   with `{message}`; with an LLM, the model chooses among them. Each call is a
 *   `tool_called` step; a failed call does not fail the turn.
 * - Reply: offline, composed deterministically (same input, same content); otherwise by the
 *   provider in a tool-calling loop of up to `bot.max_engine_iterations` rounds, with a
 *   `provider` step per completion and `usage` totals.
 * Throws EngineError from the provider (`PROVIDER_TIMEOUT`, `PROVIDER_FAILED`,
 * `PROVIDER_BAD_RESPONSE`) or `ABORTED` when `deps.signal` fires.
 */
export async function runTurn(input: TurnInput, deps: TurnDeps): Promise<TurnOutput> {
  if (deps.signal?.aborted) throw new EngineError('ABORTED', 'the turn was aborted');
  const { definition, conversation, message } = input;
  const matches = matchGuidelines(definition.guidelines, message).slice(0, MAX_APPLIED_GUIDELINES);
  const steps: AgentStep[] = matches.map(({ guideline, score }) => ({
    type: 'guideline_matched',
    guideline_id: guideline.id,
    condition: guideline.condition,
    action: guideline.action,
    score,
  }));
  const journeys = advanceJourneys(definition.journeys, conversation.journey_state ?? {}, message);
  steps.push(...journeys.steps);
  const tools = eligibleTools(definition, matches);
  const meta: Record<string, unknown> = {
    mode: isOfflineProvider(deps.provider) ? 'offline' : 'llm',
    guidelines_matched: matches.map((m) => m.guideline.id),
  };
  if (journeys.completed.length > 0) meta.journeys_completed = journeys.completed;

  if (isOfflineProvider(deps.provider)) {
    const outcomes = await Promise.all(
      tools.map((eligible) =>
        callTool(eligible.tool, { message }, {
          conversation_id: conversation.id,
          bot_id: definition.bot.id,
          fetch: deps.fetch,
          timeoutMs: deps.toolTimeoutMs,
          signal: deps.signal,
        }),
      ),
    );
    const reports: ToolReport[] = tools.map((eligible, i) => ({ name: eligible.tool.name, outcome: outcomes[i]! }));
    tools.forEach((eligible, i) => steps.push(toolStep(eligible.tool.name, eligible.guideline_id, outcomes[i]!)));
    const content = composeOfflineReply({ bot: definition.bot, matches, tools: reports, journeys: journeys.active });
    meta.fallback = matches.length === 0 && tools.length === 0 && journeys.active.length === 0;
    meta.tool_calls = tools.length;
    return {
      content,
      agent_steps: steps,
      source_citations: tools.flatMap((eligible, i) =>
        outcomes[i]!.ok ? [{ type: 'tool', tool_name: eligible.tool.name, guideline_id: eligible.guideline_id }] : [],
      ),
      meta_data: meta,
      journey_state: journeys.journey_state,
    };
  }

  const reply = await composeLlmReply({
    definition,
    conversation,
    history: input.history,
    message,
    matches,
    journeys: journeys.active,
    tools,
    provider: deps.provider,
    fetch: deps.fetch,
    toolTimeoutMs: deps.toolTimeoutMs,
    signal: deps.signal,
  });
  steps.push(...reply.steps);
  meta.tool_calls = reply.toolCalls;
  meta.completions = reply.loop.calls;
  return {
    content: reply.loop.content,
    agent_steps: steps,
    source_citations: reply.citations,
    meta_data: meta,
    journey_state: journeys.journey_state,
    usage: {
      provider: deps.provider.name,
      model: deps.provider.model,
      tokens_in: reply.loop.tokens_in,
      tokens_out: reply.loop.tokens_out,
      latency_ms: reply.loop.latency_ms,
    },
  };
}
