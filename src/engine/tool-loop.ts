/**
 * The tool-calling loop shared by bot turns and Otto: ask the model, run the tools it
 * calls, feed the results back, until it answers in text.
 */
import type { AgentStep } from '../domain/entities.ts';
import { EngineError } from './errors.ts';
import type { ChatMessage, FunctionDefinition, Provider, ToolCall } from './providers/types.ts';

/** What the loop needs. */
export interface ToolLoopInput {
  provider: Provider;
  messages: readonly ChatMessage[];
  tools: readonly FunctionDefinition[];
  /** Rounds in which the model may call tools; after them it is asked once more without tools. */
  maxRounds: number;
  /** Runs one call and returns the text the model sees as the tool's result; should not throw. */
  execute(call: ToolCall): Promise<string>;
  signal?: AbortSignal;
  /** Where `provider` steps are appended (pass the array `execute` records into, to keep them in order); default a new array. */
  steps?: AgentStep[];
}

/** What the loop produced. */
export interface ToolLoopResult {
  content: string;
  /** `input.steps` (or a new array) with one `provider` step appended per completion. */
  steps: AgentStep[];
  tokens_in: number;
  tokens_out: number;
  /** Time spent waiting for the provider, in ms. */
  latency_ms: number;
  /** Completions requested. */
  calls: number;
}

/**
 * Runs the loop: while rounds remain and tools exist, the model is offered the tools;
 * its tool calls run in order and their results are appended as `tool` messages. The loop
 * ends with the first answer without tool calls, so it makes at most `maxRounds + 1`
 * completions. Throws the provider's EngineError, or `PROVIDER_BAD_RESPONSE` when the final
 * answer is empty. `messages` is not modified.
 */
export async function runToolLoop(input: ToolLoopInput): Promise<ToolLoopResult> {
  const messages = [...input.messages];
  const steps: AgentStep[] = input.steps ?? [];
  const result: ToolLoopResult = { content: '', steps, tokens_in: 0, tokens_out: 0, latency_ms: 0, calls: 0 };
  let rounds = 0;
  for (;;) {
    if (input.signal?.aborted) throw new EngineError('ABORTED', 'the turn was aborted');
    const offer = input.tools.length > 0 && rounds < Math.max(0, input.maxRounds);
    const started = performance.now();
    const completion = await input.provider.complete(
      { messages, ...(offer ? { tools: [...input.tools] } : {}) },
      input.signal ? { signal: input.signal } : {},
    );
    const duration = Math.round(performance.now() - started);
    result.calls++;
    result.latency_ms += duration;
    result.tokens_in += completion.usage.tokens_in;
    result.tokens_out += completion.usage.tokens_out;
    steps.push({
      type: 'provider',
      provider: input.provider.name,
      model: input.provider.model,
      duration_ms: duration,
      tokens_in: completion.usage.tokens_in,
      tokens_out: completion.usage.tokens_out,
    });
    if (offer && completion.tool_calls.length > 0) {
      rounds++;
      messages.push({ role: 'assistant', content: completion.content || null, tool_calls: completion.tool_calls });
      for (const call of completion.tool_calls) {
        messages.push({ role: 'tool', tool_call_id: call.id, content: await input.execute(call) });
      }
      continue;
    }
    if (completion.content.trim() === '') throw new EngineError('PROVIDER_BAD_RESPONSE', 'provider answered with an empty reply');
    result.content = completion.content.trim();
    return result;
  }
}

/** A JSON text of `value` of at most `limit` characters, for a `tool` message. */
export function toolMessage(value: unknown, limit = 4000): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? 'null';
  return text.length <= limit ? text : `${text.slice(0, limit)}…(truncated)`;
}
