/**
 * The LLM reply of a bot turn: a system prompt from the bot, its matched guidelines and
 * journey steps, the history window, and tool calling limited to the eligible tools.
 */
import type { AgentStep, BotDefinition, Conversation, Message } from '../domain/entities.ts';
import type { ActiveJourneyStep } from './journeys.ts';
import type { GuidelineMatch } from './matcher.ts';
import type { ChatMessage, FunctionDefinition, Provider } from './providers/types.ts';
import { callTool, toolStep, type EligibleTool } from './tool-calls.ts';
import { runToolLoop, toolMessage, type ToolLoopResult } from './tool-loop.ts';

/**
 * The system prompt: who the bot is, the guidelines that apply to this message
 * (condition → action, high criticality marked), the journey steps to carry out, and the
 * conversation's context. Deterministic.
 */
export function buildSystemPrompt(input: {
  definition: BotDefinition;
  matches: readonly GuidelineMatch[];
  journeys: readonly ActiveJourneyStep[];
  conversation: Pick<Conversation, 'context'>;
  hasTools: boolean;
}): string {
  const { bot } = input.definition;
  const lines = [`You are ${bot.name}, an assistant talking with a user.`];
  if (bot.description.trim()) lines.push(`About you: ${bot.description.trim()}`);
  if (input.matches.length > 0) {
    lines.push('', 'Guidelines that apply to the user\'s latest message (follow them):');
    for (const { guideline } of input.matches) {
      lines.push(`- When ${guideline.condition.trim()}: ${guideline.action.trim()}${guideline.criticality === 'high' ? ' (important: always do this)' : ''}`);
    }
  } else {
    lines.push('', 'No specific guideline applies to this message: answer briefly within your purpose, and say so plainly when you cannot help.');
  }
  for (const step of input.journeys) {
    lines.push('', `You are guiding the user through "${step.journey.title}", step ${step.step + 1} of ${step.journey.steps.length}: ${step.instruction.trim()}`);
  }
  if (input.hasTools) lines.push('', 'Use the available tools when a guideline calls for information they provide. If a tool fails, tell the user the lookup failed; never invent its result.');
  if (bot.composition_mode !== 'fluid') lines.push('', 'Stay close to the wording of the guidelines\' actions.');
  const context = input.conversation.context && Object.keys(input.conversation.context).length > 0 ? JSON.stringify(input.conversation.context) : '';
  if (context) lines.push('', `Conversation context: ${context.slice(0, 2000)}`);
  lines.push('', 'Reply to the user directly, in plain words.');
  return lines.join('\n');
}

/**
 * The history window as chat messages: user and assistant messages with text, oldest
 * first; a trailing user message equal to `message` is dropped (services may have stored it
 * already), then `message` is appended.
 */
export function historyMessages(history: readonly Message[], message: string): ChatMessage[] {
  const window = history.filter((m) => (m.role === 'user' || m.role === 'assistant') && m.content.trim() !== '');
  const last = window.at(-1);
  if (last && last.role === 'user' && last.content.trim() === message.trim()) window.pop();
  return [...window.map((m): ChatMessage => ({ role: m.role as 'user' | 'assistant', content: m.content })), { role: 'user', content: message }];
}

function functionName(name: string, taken: Set<string>): string {
  const base = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60) || 'tool';
  let candidate = base;
  for (let i = 2; taken.has(candidate); i++) candidate = `${base}_${i}`;
  taken.add(candidate);
  return candidate;
}

function parametersOf(schema: Record<string, unknown> | undefined): Record<string, unknown> {
  if (schema && schema.type === 'object') return schema;
  return { type: 'object', properties: {}, additionalProperties: true };
}

/** What the LLM reply produced. */
export interface LlmReply {
  loop: ToolLoopResult;
  /** `provider` and `tool_called` steps, in the order they happened. */
  steps: AgentStep[];
  /** Tools that answered, as citations. */
  citations: Array<Record<string, unknown>>;
  toolCalls: number;
}

/**
 * Runs the LLM composition with the eligible tools as functions (their `input_schema` as
 * parameters). Tool failures are handed to the model as `{ok: false, error}`. Throws the
 * provider's EngineError.
 */
export async function composeLlmReply(input: {
  definition: BotDefinition;
  conversation: Conversation;
  history: readonly Message[];
  message: string;
  matches: readonly GuidelineMatch[];
  journeys: readonly ActiveJourneyStep[];
  tools: readonly EligibleTool[];
  provider: Provider;
  fetch?: typeof fetch;
  toolTimeoutMs?: number;
  signal?: AbortSignal;
}): Promise<LlmReply> {
  const taken = new Set<string>();
  const byFunction = new Map<string, EligibleTool>();
  const functions: FunctionDefinition[] = input.tools.map((eligible) => {
    const name = functionName(eligible.tool.name, taken);
    byFunction.set(name, eligible);
    return { name, description: eligible.tool.description || `Tool ${eligible.tool.name}`, parameters: parametersOf(eligible.tool.input_schema) };
  });
  const system = buildSystemPrompt({ ...input, hasTools: functions.length > 0 });
  const steps: AgentStep[] = [];
  const citations: Array<Record<string, unknown>> = [];
  let toolCalls = 0;
  const loop = await runToolLoop({
    provider: input.provider,
    messages: [{ role: 'system', content: system }, ...historyMessages(input.history, input.message)],
    tools: functions,
    maxRounds: input.definition.bot.max_engine_iterations,
    signal: input.signal,
    steps,
    execute: async (call) => {
      const eligible = byFunction.get(call.name);
      if (!eligible) return toolMessage({ ok: false, error: `no tool named ${call.name} is available` });
      toolCalls++;
      const outcome = await callTool(eligible.tool, call.arguments, {
        conversation_id: input.conversation.id,
        bot_id: input.definition.bot.id,
        fetch: input.fetch,
        timeoutMs: input.toolTimeoutMs,
        signal: input.signal,
      });
      steps.push(toolStep(eligible.tool.name, eligible.guideline_id, outcome));
      if (outcome.ok) citations.push({ type: 'tool', tool_name: eligible.tool.name, guideline_id: eligible.guideline_id });
      return toolMessage(outcome.ok ? { ok: true, result: outcome.value ?? null } : { ok: false, error: outcome.error, status: outcome.status });
    },
  });
  return { loop, steps, citations, toolCalls };
}
