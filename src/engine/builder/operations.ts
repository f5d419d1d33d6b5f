/**
 * Otto's operations, shared by the offline command language and LLM tool calling: each
 * resolves bot names, calls BuilderActions, and answers in words with `builder_action`
 * steps. Failures of the actions become replies; nothing here throws.
 */
import type { AgentStep, BotDefinition, Criticality, Guideline, JourneyStep, Message } from '../../domain/entities.ts';
import { MATCH_THRESHOLD, prepareCondition, prepareMessage, scoreCondition } from '../matcher.ts';
import type { BuilderActions } from './actions.ts';
import { explicitlyConfirmsDeletion, isAffirmative, pendingDeletion } from './confirm.ts';
import { botLine, describeDefinition } from './describe.ts';

/** What an operation needs: the caller's actions and the turn it runs in. */
export interface OpContext {
  actions: BuilderActions;
  message: string;
  history: readonly Message[];
}

/** What an operation did: success, the reply in words, its steps, and data for a model. */
export interface OpResult {
  ok: boolean;
  reply: string;
  steps: AgentStep[];
  data?: Record<string, unknown>;
}

/** `text` with closing punctuation (added only when missing). */
function stop(text: string): string {
  const t = text.trim();
  return /[.!?…]$/.test(t) ? t : `${t}.`;
}

function step(action: string, ok: boolean, target?: string, detail?: string): AgentStep {
  const s: AgentStep = { type: 'builder_action', action, ok };
  if (target !== undefined) s.target = target;
  if (detail !== undefined) s.detail = detail;
  return s;
}

/** The words of an action's error: its message, plus the field at fault when given. */
export function errorText(error: unknown): string {
  const e = error as { message?: unknown; field?: unknown; code?: unknown } | null;
  const message = typeof e?.message === 'string' && e.message ? e.message : 'something went wrong';
  const field = typeof e?.field === 'string' ? e.field : '';
  const mentioned = field !== '' && new RegExp(`\\b${field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`).test(message);
  return field && !mentioned ? `${message} (${field})` : message;
}

function failed(action: string, target: string | undefined, what: string, error: unknown): OpResult {
  const text = errorText(error);
  return { ok: false, reply: `I couldn't ${what}: ${text.replace(/[.\s]+$/, '')}.`, steps: [step(action, false, target, text)] };
}

async function resolveBot(ctx: OpContext, action: string, ref: string): Promise<BotDefinition | OpResult> {
  const name = ref.trim();
  if (!name) return { ok: false, reply: 'Which bot? Tell me its name.', steps: [step(action, false, undefined, 'no bot named')] };
  try {
    const found = await ctx.actions.findBot(name);
    if (found) return found;
    const bots = await ctx.actions.listBots();
    const key = name.toLowerCase();
    const bot = bots.find((b) => b.id === name || b.name.trim().toLowerCase() === key);
    const definition = bot ? await ctx.actions.findBot(bot.id) : null;
    if (definition) return definition;
    const known = bots.length > 0 ? ` Your bots: ${bots.map((b) => b.name).join(', ')}.` : ' You have no bots yet — try "create a bot called SupportBot".';
    return { ok: false, reply: `I couldn't find a bot called "${name}".${known}`, steps: [step(action, false, name, 'bot not found')] };
  } catch (error) {
    return failed(action, name, `look up "${name}"`, error);
  }
}

function isResult(value: BotDefinition | OpResult): value is OpResult {
  return 'reply' in value;
}

/** Lists the caller's bots. */
export async function listBotsOp(ctx: OpContext): Promise<OpResult> {
  try {
    const bots = await ctx.actions.listBots();
    const detail = `${bots.length} bot${bots.length === 1 ? '' : 's'}`;
    const reply =
      bots.length === 0
        ? 'You don\'t have any bots yet. Try "create a bot called SupportBot for answering order questions".'
        : `You have ${detail}:\n${bots.map(botLine).join('\n')}`;
    return { ok: true, reply, steps: [step('list_bots', true, undefined, detail)], data: { bots: bots.map((b) => ({ id: b.id, name: b.name, description: b.description })) } };
  } catch (error) {
    return failed('list_bots', undefined, 'list your bots', error);
  }
}

/** Describes one bot (numbered guidelines, journeys, tools). */
export async function describeBotOp(ctx: OpContext, ref: string): Promise<OpResult> {
  const found = await resolveBot(ctx, 'describe_bot', ref);
  if (isResult(found)) return found;
  const text = describeDefinition(found);
  return { ok: true, reply: text, steps: [step('describe_bot', true, found.bot.id, found.bot.name)], data: { description: text } };
}

/** Creates a bot. */
export async function createBotOp(ctx: OpContext, input: { name: string; description?: string }): Promise<OpResult> {
  const name = input.name.trim();
  if (!name) return { ok: false, reply: 'What should the bot be called?', steps: [step('create_bot', false, undefined, 'no name given')] };
  try {
    const bot = await ctx.actions.createBot(input.description ? { name, description: input.description } : { name });
    const reply = `${stop(`Created **${bot.name}**${bot.description ? ` — ${bot.description}` : ''}`)} Next, give it a guideline, e.g. "add a guideline to ${bot.name}: when the user asks about refunds, explain the 30-day policy".`;
    return { ok: true, reply, steps: [step('create_bot', true, bot.id, `created "${bot.name}"`)], data: { bot_id: bot.id, name: bot.name } };
  } catch (error) {
    return failed('create_bot', name, `create "${name}"`, error);
  }
}

/** Adds a guideline to a bot. */
export async function addGuidelineOp(ctx: OpContext, input: { bot: string; condition: string; action: string; criticality?: Criticality }): Promise<OpResult> {
  const found = await resolveBot(ctx, 'add_guideline', input.bot);
  if (isResult(found)) return found;
  try {
    const guideline = await ctx.actions.addGuideline(found.bot.id, {
      condition: input.condition,
      action: input.action,
      ...(input.criticality ? { criticality: input.criticality } : {}),
    });
    const number = found.guidelines.length + 1;
    const reply = guideline.criticality === 'high'
      ? `Added guideline ${number} to ${found.bot.name} (high criticality): when ${guideline.condition} → ${stop(guideline.action)}`
      : `Added guideline ${number} to ${found.bot.name}: when ${guideline.condition} → ${stop(guideline.action)}`;
    return { ok: true, reply, steps: [step('add_guideline', true, found.bot.id, `guideline ${number} (${guideline.id})`)], data: { guideline_id: guideline.id, number } };
  } catch (error) {
    return failed('add_guideline', found.bot.id, `add that guideline to ${found.bot.name}`, error);
  }
}

/** Adds a journey to a bot. */
export async function addJourneyOp(ctx: OpContext, input: { bot: string; title: string; description?: string; conditions: string[]; steps: JourneyStep[] }): Promise<OpResult> {
  const found = await resolveBot(ctx, 'add_journey', input.bot);
  if (isResult(found)) return found;
  try {
    const journey = await ctx.actions.addJourney(found.bot.id, {
      title: input.title,
      ...(input.description ? { description: input.description } : {}),
      conditions: input.conditions,
      steps: input.steps,
    });
    const steps = journey.steps.map((s, i) => `${i + 1}) ${s.instruction}`).join(' ');
    const reply = `Added the journey "${journey.title}" to ${found.bot.name}. It starts when ${journey.conditions.map((c) => `"${c}"`).join(' or ')}; steps: ${stop(steps)}`;
    return { ok: true, reply, steps: [step('add_journey', true, found.bot.id, `journey "${journey.title}" (${journey.id})`)], data: { journey_id: journey.id } };
  } catch (error) {
    return failed('add_journey', found.bot.id, `add that journey to ${found.bot.name}`, error);
  }
}

/** Adds an HTTP tool to a bot. */
export async function addToolOp(ctx: OpContext, input: { bot: string; name: string; url: string; method?: 'GET' | 'POST'; description?: string }): Promise<OpResult> {
  const found = await resolveBot(ctx, 'add_tool', input.bot);
  if (isResult(found)) return found;
  try {
    const tool = await ctx.actions.addTool(found.bot.id, {
      name: input.name,
      ...(input.description ? { description: input.description } : {}),
      endpoint: { url: input.url, ...(input.method ? { method: input.method } : {}) },
    });
    const hint = found.guidelines.length > 0 ? ` To call it when a guideline matches, say "map tool ${tool.name} to guideline 1 of ${found.bot.name}".` : ' Add a guideline, then map the tool to it so it gets called.';
    const reply = `Added the tool ${tool.name} to ${found.bot.name} (${tool.endpoint.method} ${tool.endpoint.url}).${hint}`;
    return { ok: true, reply, steps: [step('add_tool', true, found.bot.id, `tool ${tool.name}`)], data: { tool_name: tool.name } };
  } catch (error) {
    return failed('add_tool', found.bot.id, `add that tool to ${found.bot.name}`, error);
  }
}

/** Finds a guideline by 1-based number, id, or words from its condition/action. */
export function findGuideline(guidelines: readonly Guideline[], ref: string): { guideline: Guideline; number: number } | { error: string } {
  const r = ref.trim().replace(/^(?:guideline|rule|number|no\.?)\s*/i, '').replace(/^#/, '');
  if (/^\d+$/.test(r)) {
    const n = Number(r);
    const g = guidelines[n - 1];
    return g ? { guideline: g, number: n } : { error: `there is no guideline ${n} (it has ${guidelines.length})` };
  }
  const byId = guidelines.findIndex((g) => g.id === r);
  if (byId >= 0) return { guideline: guidelines[byId]!, number: byId + 1 };
  const profile = prepareCondition(r.replace(/\b(?:the|one|about|guideline|rule)\b/gi, ' '));
  const scored = guidelines
    .map((g, i) => ({ g, i, score: scoreCondition(profile, prepareMessage(`${g.condition} ${g.action}`)) }))
    .filter((x) => x.score >= MATCH_THRESHOLD)
    .sort((a, b) => b.score - a.score || a.i - b.i);
  if (scored.length === 0) return { error: `no guideline mentions "${r}"` };
  if (scored.length > 1 && scored[1]!.score === scored[0]!.score) {
    return { error: `"${r}" fits guidelines ${scored.filter((x) => x.score === scored[0]!.score).map((x) => x.i + 1).join(' and ')}; say the number` };
  }
  return { guideline: scored[0]!.g, number: scored[0]!.i + 1 };
}

/** Maps a tool to a guideline, so the tool is called when the guideline matches. */
export async function mapToolOp(ctx: OpContext, input: { bot: string; tool: string; guideline: string }): Promise<OpResult> {
  const found = await resolveBot(ctx, 'map_tool', input.bot);
  if (isResult(found)) return found;
  const tool = found.tools.find((t) => t.name.toLowerCase() === input.tool.trim().toLowerCase());
  if (!tool) {
    const known = found.tools.length > 0 ? `Its tools: ${found.tools.map((t) => t.name).join(', ')}.` : 'It has no tools yet — add one first.';
    return { ok: false, reply: `${found.bot.name} has no tool called ${input.tool}. ${known}`, steps: [step('map_tool', false, found.bot.id, `no tool ${input.tool}`)] };
  }
  const target = findGuideline(found.guidelines, input.guideline);
  if ('error' in target) {
    return { ok: false, reply: `I couldn't tell which guideline of ${found.bot.name} you mean: ${target.error}. "describe ${found.bot.name}" shows them numbered.`, steps: [step('map_tool', false, found.bot.id, target.error)] };
  }
  try {
    await ctx.actions.mapTool(found.bot.id, { guideline_id: target.guideline.id, tool_name: tool.name });
    const reply = `${found.bot.name} will now call ${tool.name} when guideline ${target.number} matches ("${target.guideline.condition}").`;
    return { ok: true, reply, steps: [step('map_tool', true, found.bot.id, `${tool.name} → guideline ${target.number} (${target.guideline.id})`)], data: { guideline_id: target.guideline.id, tool_name: tool.name } };
  } catch (error) {
    return failed('map_tool', found.bot.id, `map ${tool.name} to that guideline`, error);
  }
}

/** Renames a bot. */
export async function renameBotOp(ctx: OpContext, input: { bot: string; name: string }): Promise<OpResult> {
  const found = await resolveBot(ctx, 'rename_bot', input.bot);
  if (isResult(found)) return found;
  try {
    const bot = await ctx.actions.updateBot(found.bot.id, { name: input.name.trim() });
    return { ok: true, reply: `Renamed ${found.bot.name} to **${bot.name}**.`, steps: [step('rename_bot', true, bot.id, `"${found.bot.name}" → "${bot.name}"`)], data: { bot_id: bot.id, name: bot.name } };
  } catch (error) {
    return failed('rename_bot', found.bot.id, `rename ${found.bot.name}`, error);
  }
}

/** Changes a bot's description. */
export async function setDescriptionOp(ctx: OpContext, input: { bot: string; description: string }): Promise<OpResult> {
  const found = await resolveBot(ctx, 'update_bot', input.bot);
  if (isResult(found)) return found;
  try {
    const bot = await ctx.actions.updateBot(found.bot.id, { description: input.description.trim() });
    return { ok: true, reply: stop(`Updated ${bot.name}'s description: ${bot.description}`), steps: [step('update_bot', true, bot.id, 'description')], data: { bot_id: bot.id } };
  } catch (error) {
    return failed('update_bot', found.bot.id, `update ${found.bot.name}`, error);
  }
}

async function deleteNow(ctx: OpContext, id: string, name: string): Promise<OpResult> {
  try {
    await ctx.actions.deleteBot(id);
    return { ok: true, reply: `Deleted ${name}.`, steps: [step('delete_bot', true, id, `deleted "${name}"`)], data: { deleted: true } };
  } catch (error) {
    return failed('delete_bot', id, `delete ${name}`, error);
  }
}

/**
 * Deletes a bot once confirmed: immediately when `confirmed` (or the message itself
 * confirms, or it says yes to Otto's question about this bot); otherwise asks, recording a
 * `confirm_delete_bot` step that the next "yes" answers.
 */
export async function deleteBotOp(ctx: OpContext, input: { bot: string; confirmed?: boolean }): Promise<OpResult> {
  const found = await resolveBot(ctx, 'delete_bot', input.bot);
  if (isResult(found)) return found;
  const { id, name } = found.bot;
  const confirmed =
    input.confirmed === true || explicitlyConfirmsDeletion(ctx.message) || (pendingDeletion(ctx.history) === id && isAffirmative(ctx.message));
  if (confirmed) return deleteNow(ctx, id, name);
  const counts = `${found.guidelines.length} guideline${found.guidelines.length === 1 ? '' : 's'}, ${found.journeys.length} journey${found.journeys.length === 1 ? '' : 's'} and ${found.tools.length} tool${found.tools.length === 1 ? '' : 's'}`;
  return {
    ok: true,
    reply: `Are you sure you want to delete **${name}** with its ${counts}? Reply "yes" to delete it, or "no" to keep it.`,
    steps: [step('confirm_delete_bot', true, id, `awaiting confirmation to delete "${name}"`)],
    data: { needs_confirmation: true, instruction: 'Ask the user to confirm; the bot is deleted when they answer yes.' },
  };
}

/** Answers "yes"/"no" to Otto's pending question (only deletions ask one). */
export async function answerPendingOp(ctx: OpContext, yes: boolean): Promise<OpResult> {
  const pending = pendingDeletion(ctx.history);
  if (!pending) {
    return { ok: true, reply: yes ? 'There\'s nothing waiting for your confirmation. Say "help" to see what I can do.' : 'OK. Say "help" to see what I can do.', steps: [] };
  }
  const found = await resolveBot(ctx, 'delete_bot', pending);
  if (isResult(found)) return found;
  if (!yes) return { ok: true, reply: `OK, I'll keep ${found.bot.name}.`, steps: [step('delete_bot', false, found.bot.id, 'cancelled by the user')] };
  return deleteNow(ctx, found.bot.id, found.bot.name);
}
