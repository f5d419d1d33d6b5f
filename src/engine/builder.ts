/**
 * Otto, the built-in bot-builder: people create and edit bots by talking to it. Offline it
 * understands a documented command language (`builderHelpText`); with a language model the
 * same operations are offered through tool calling.
 */
import type { Message } from '../domain/entities.ts';
import type { BuilderActions } from './builder/actions.ts';
import { runBuilderLlm } from './builder/llm.ts';
import { runOfflineCommand } from './builder/offline.ts';
import { ottoDefinition } from './builder/otto.ts';
import { EngineError } from './errors.ts';
import { isOfflineProvider } from './providers/offline-rules.ts';
import type { Provider } from './providers/types.ts';
import type { TurnOutput } from './turn.ts';

export type { BuilderActions } from './builder/actions.ts';
export { builderHelpText } from './builder/help.ts';
export { OTTO_BOT_ID, ottoDefinition } from './builder/otto.ts';
export { parseBuilderCommand, type BuilderCommand } from './builder/parse-command.ts';
export { builderFunctions } from './builder/llm.ts';

/**
 * One turn with Otto. Offline (`provider.name === 'offline'`): the message is parsed as a
 * command and run. Otherwise: the model calls Otto's functions in a loop of up to
 * `max_engine_iterations` (3) rounds. Every operation records a `builder_action` step (ok
 * or not, with detail); errors thrown by `actions` (duplicate name, not found, invalid
 * field) are answered in words, never thrown. Deleting a bot asks for confirmation first
 * (answered by "yes", using `history`). Throws only the provider's EngineError (LLM mode) or
 * `ABORTED`. `journey_state` is always `{}`.
 */
export async function runBuilderTurn(
  input: { message: string; history: Message[] },
  deps: { actions: BuilderActions; provider: Provider; signal?: AbortSignal },
): Promise<TurnOutput> {
  if (deps.signal?.aborted) throw new EngineError('ABORTED', 'the turn was aborted');
  const ctx = { actions: deps.actions, message: input.message, history: input.history };
  if (isOfflineProvider(deps.provider)) {
    const result = await runOfflineCommand(ctx);
    return {
      content: result.reply,
      agent_steps: result.steps,
      source_citations: [],
      meta_data: { mode: 'offline', builder: true, command: result.command },
      journey_state: {},
    };
  }
  const { loop, steps } = await runBuilderLlm(ctx, deps.provider, ottoDefinition().bot.max_engine_iterations, deps.signal);
  return {
    content: loop.content,
    agent_steps: steps,
    source_citations: [],
    meta_data: { mode: 'llm', builder: true, completions: loop.calls },
    journey_state: {},
    usage: { provider: deps.provider.name, model: deps.provider.model, tokens_in: loop.tokens_in, tokens_out: loop.tokens_out, latency_ms: loop.latency_ms },
  };
}
