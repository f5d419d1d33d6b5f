/**
 * Otto with a language model: the same operations as the command language, offered as
 * functions with JSON Schemas, run in the shared tool-calling loop.
 */
import type { AgentStep, Criticality, JourneyStep } from '../../domain/entities.ts';
import type { FunctionDefinition, Provider, ToolCall } from '../providers/types.ts';
import { historyMessages } from '../llm-reply.ts';
import { runToolLoop, toolMessage, type ToolLoopResult } from '../tool-loop.ts';
import { builderHelpText } from './help.ts';
import * as ops from './operations.ts';

const bot = { type: 'string', description: 'The bot\'s name (case-insensitive) or id.' };
const obj = (properties: Record<string, unknown>, required: string[]): Record<string, unknown> => ({ type: 'object', properties, required, additionalProperties: false });

/** The functions Otto's model may call. */
export const builderFunctions: FunctionDefinition[] = [
  { name: 'list_bots', description: 'List the user\'s bots.', parameters: obj({}, []) },
  { name: 'describe_bot', description: 'Show a bot with its numbered guidelines, journeys and tools.', parameters: obj({ bot }, ['bot']) },
  {
    name: 'create_bot',
    description: 'Create a new bot.',
    parameters: obj({ name: { type: 'string', description: 'Unique name, e.g. SupportBot.' }, description: { type: 'string', description: 'What the bot is for, one sentence.' } }, ['name']),
  },
  {
    name: 'add_guideline',
    description: 'Give a bot a guideline: when the condition holds for a user message, the bot does the action.',
    parameters: obj(
      {
        bot,
        condition: { type: 'string', description: 'When it applies, e.g. "the user asks about refunds".' },
        action: { type: 'string', description: 'What the bot does, e.g. "explain the 30-day refund policy".' },
        criticality: { type: 'string', enum: ['low', 'medium', 'high'] },
      },
      ['bot', 'condition', 'action'],
    ),
  },
  {
    name: 'add_journey',
    description: 'Give a bot a multi-step journey that starts when one of its conditions matches the user\'s message.',
    parameters: obj(
      {
        bot,
        title: { type: 'string' },
        description: { type: 'string' },
        conditions: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Phrases that start the journey.' },
        steps: {
          type: 'array',
          minItems: 1,
          items: obj({ instruction: { type: 'string' }, advance_when: { type: 'array', items: { type: 'string' }, description: 'Words in the user\'s reply that move past this step; empty: any reply.' } }, ['instruction']),
        },
      },
      ['bot', 'title', 'conditions', 'steps'],
    ),
  },
  {
    name: 'add_tool',
    description: 'Give a bot an HTTP tool it can call.',
    parameters: obj(
      {
        bot,
        name: { type: 'string', description: 'snake_case name, e.g. order_status.' },
        url: { type: 'string', description: 'The endpoint URL (http or https).' },
        method: { type: 'string', enum: ['GET', 'POST'] },
        description: { type: 'string' },
      },
      ['bot', 'name', 'url'],
    ),
  },
  {
    name: 'map_tool',
    description: 'Make a bot call one of its tools whenever one of its guidelines matches.',
    parameters: obj({ bot, tool_name: { type: 'string' }, guideline: { type: 'string', description: 'The guideline\'s number (as describe_bot shows), id, or a word from it.' } }, ['bot', 'tool_name', 'guideline']),
  },
  { name: 'rename_bot', description: 'Rename a bot.', parameters: obj({ bot, new_name: { type: 'string' } }, ['bot', 'new_name']) },
  { name: 'set_description', description: 'Change a bot\'s description.', parameters: obj({ bot, description: { type: 'string' } }, ['bot', 'description']) },
  {
    name: 'delete_bot',
    description: 'Delete a bot. The first call asks the user to confirm; it deletes only after the user has said yes.',
    parameters: obj({ bot }, ['bot']),
  },
];

function str(args: Record<string, unknown>, key: string): string {
  const v = args[key];
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && v.trim() !== '') : typeof value === 'string' && value.trim() ? [value] : [];
}

function journeySteps(value: unknown): JourneyStep[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((s): JourneyStep[] => {
    if (typeof s === 'string') return s.trim() ? [{ instruction: s }] : [];
    const instruction = typeof s?.instruction === 'string' ? s.instruction : '';
    if (!instruction.trim()) return [];
    const advance = strings(s.advance_when);
    return [advance.length > 0 ? { instruction, advance_when: advance } : { instruction }];
  });
}

/** Runs one function call; unknown functions and bad arguments come back as `{ok: false}`. */
export async function runBuilderFunction(ctx: ops.OpContext, call: ToolCall): Promise<ops.OpResult> {
  const a = call.arguments;
  switch (call.name) {
    case 'list_bots':
      return ops.listBotsOp(ctx);
    case 'describe_bot':
      return ops.describeBotOp(ctx, str(a, 'bot'));
    case 'create_bot':
      return ops.createBotOp(ctx, { name: str(a, 'name'), ...(str(a, 'description') ? { description: str(a, 'description') } : {}) });
    case 'add_guideline': {
      const c = str(a, 'criticality');
      const criticality = c === 'low' || c === 'medium' || c === 'high' ? (c as Criticality) : undefined;
      return ops.addGuidelineOp(ctx, { bot: str(a, 'bot'), condition: str(a, 'condition'), action: str(a, 'action'), ...(criticality ? { criticality } : {}) });
    }
    case 'add_journey':
      return ops.addJourneyOp(ctx, {
        bot: str(a, 'bot'),
        title: str(a, 'title'),
        ...(str(a, 'description') ? { description: str(a, 'description') } : {}),
        conditions: strings(a.conditions),
        steps: journeySteps(a.steps),
      });
    case 'add_tool': {
      const m = str(a, 'method').toUpperCase();
      return ops.addToolOp(ctx, {
        bot: str(a, 'bot'),
        name: str(a, 'name'),
        url: str(a, 'url'),
        ...(m === 'GET' || m === 'POST' ? { method: m } : {}),
        ...(str(a, 'description') ? { description: str(a, 'description') } : {}),
      });
    }
    case 'map_tool':
      return ops.mapToolOp(ctx, { bot: str(a, 'bot'), tool: str(a, 'tool_name'), guideline: str(a, 'guideline') });
    case 'rename_bot':
      return ops.renameBotOp(ctx, { bot: str(a, 'bot'), name: str(a, 'new_name') });
    case 'set_description':
      return ops.setDescriptionOp(ctx, { bot: str(a, 'bot'), description: str(a, 'description') });
    case 'delete_bot':
      return ops.deleteBotOp(ctx, { bot: str(a, 'bot') });
    default:
      return { ok: false, reply: `There is no function called ${call.name}.`, steps: [] };
  }
}

/** Otto's system prompt for a language model. */
export const builderSystemPrompt = [
  'You are Otto, the bot-builder of a self-hosted bot platform. You create and edit the user\'s bots by calling the functions you are given.',
  'A bot has guidelines (when a condition holds for a user\'s message, the bot does an action), journeys (multi-step flows started by conditions), and HTTP tools, which are called when a guideline they are mapped to matches.',
  'Only say something was done when its function returned ok: true; when it returned ok: false, tell the user why in plain words.',
  'To delete a bot call delete_bot; it asks the user to confirm first, and deletes when called again after the user says yes.',
  'Keep replies short. If the request is unclear, ask one question. The offline command reference, for context:',
  builderHelpText,
].join('\n');

/** Runs Otto's LLM turn. Throws the provider's EngineError; action failures are answered in words. */
export async function runBuilderLlm(
  ctx: ops.OpContext,
  provider: Provider,
  maxRounds: number,
  signal?: AbortSignal,
): Promise<{ loop: ToolLoopResult; steps: AgentStep[] }> {
  const steps: AgentStep[] = [];
  const loop = await runToolLoop({
    provider,
    messages: [{ role: 'system', content: builderSystemPrompt }, ...historyMessages(ctx.history, ctx.message)],
    tools: builderFunctions,
    maxRounds,
    signal,
    steps,
    execute: async (call) => {
      const result = await runBuilderFunction(ctx, call);
      steps.push(...result.steps);
      return toolMessage({ ok: result.ok, message: result.reply, ...(result.data ?? {}) });
    },
  });
  return { loop, steps };
}
