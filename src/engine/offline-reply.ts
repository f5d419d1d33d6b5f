/**
 * The offline reply: deterministic text built from matched guideline actions, tool
 * results and the current journey step — no language model, so it states the actions
 * plainly rather than pretending to paraphrase them.
 */
import type { Bot } from '../domain/entities.ts';
import type { ActiveJourneyStep } from './journeys.ts';
import type { GuidelineMatch } from './matcher.ts';
import type { ToolOutcome } from './tool-calls.ts';

/** A tool call as the reply reports it. */
export interface ToolReport {
  name: string;
  outcome: ToolOutcome;
}

/** `text` trimmed, with a capital first letter and closing punctuation. */
export function sentence(text: string): string {
  const t = text.trim().replace(/\s+/g, ' ');
  if (t === '') return '';
  const capital = t[0]!.toUpperCase() + t.slice(1);
  return /[.!?…:)"'”]$/.test(capital) ? capital : `${capital}.`;
}

function label(toolName: string): string {
  return toolName.replace(/[_-]+/g, ' ').trim();
}

function scalar(value: unknown): string | undefined {
  if (value === null) return 'none';
  if (typeof value === 'string') return value.replace(/\s+/g, ' ').trim();
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

function clip(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1).trimEnd()}…`;
}

/** A short human summary of a tool result: scalars as is, objects as `key: value` pairs, arrays counted. */
export function summarize(value: unknown, depth = 0): string {
  const plain = scalar(value);
  if (plain !== undefined) return clip(plain, 300);
  if (Array.isArray(value)) {
    if (value.length === 0) return 'no results';
    const first = value.slice(0, 3).map((v) => summarize(v, depth + 1)).join('; ');
    return depth > 0 ? `${value.length} items` : clip(`${value.length} result${value.length === 1 ? '' : 's'}: ${first}${value.length > 3 ? '; …' : ''}`, 400);
  }
  if (value && typeof value === 'object') {
    if (depth > 1) return '…';
    const parts = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .slice(0, 6)
      .map(([k, v]) => `${k.replace(/_/g, ' ')}: ${summarize(v, depth + 1)}`);
    return clip(parts.join(', ') || 'an empty result', 400);
  }
  return 'no result';
}

/** The maximum number of guideline actions an offline reply states. */
export const OFFLINE_MAX_ACTIONS = 3;

/**
 * Composes the offline reply. With guidelines, tools or a journey step: each matched action
 * (best first, at most three, duplicates once) as a sentence, then each tool's result or
 * failure, then each journey step's instruction. With nothing: a fallback naming the bot and
 * its description. Pure: the same input always gives the same text.
 */
export function composeOfflineReply(input: {
  bot: Pick<Bot, 'name' | 'description'>;
  matches: readonly GuidelineMatch[];
  tools: readonly ToolReport[];
  journeys: readonly ActiveJourneyStep[];
}): string {
  const parts: string[] = [];
  for (const match of input.matches.slice(0, OFFLINE_MAX_ACTIONS)) {
    const text = sentence(match.guideline.action);
    if (text && !parts.includes(text)) parts.push(text);
  }
  for (const { name, outcome } of input.tools) {
    if (outcome.ok) {
      parts.push(sentence(`${label(name)} result — ${outcome.value === undefined ? 'done, with nothing to report' : summarize(outcome.value)}`));
    } else {
      parts.push(`I couldn't look up ${label(name)} just now (${outcome.error ?? 'it failed'}), so I can't confirm those details yet.`);
    }
  }
  for (const step of input.journeys) {
    const text = sentence(step.instruction);
    if (text && !parts.includes(text)) parts.push(text);
  }
  if (parts.length > 0) return parts.join(parts.some((p) => p.length > 160) ? '\n\n' : ' ');
  const about = input.bot.description.trim() ? `I'm ${input.bot.name}: ${sentence(input.bot.description)}` : `I'm ${input.bot.name}.`;
  return `I'm not sure I can help with that yet. ${about} Could you rephrase, or ask about something else?`;
}

