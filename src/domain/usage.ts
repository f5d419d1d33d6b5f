/**
 * Usage and cost: what one provider call costs, the seeded model prices, and the calendar
 * arithmetic of reports and monthly budgets (UTC). Pure: no I/O.
 */
import type { StoredMeta } from '../storage/contract.ts';
import type { Owned } from './entities.ts';

/** How a provider call ended. `budget_refused`: it was never made because a budget was spent. */
export const activityOutcomes = ['ok', 'error', 'timeout', 'budget_refused'] as const;
export type ActivityOutcome = (typeof activityOutcomes)[number];

/**
 * One provider call (the seed's `ai_activity_logs`). `owner_id` is the owner of the
 * conversation (the bot's owner; for Otto, the bot-builder, the caller). `cost_nano_usd` is
 * the cost in billionths of a dollar, an integer, so that sums are exact on every engine;
 * `cost_usd` is the same cost as a decimal, for reading.
 */
export interface ActivityLog extends StoredMeta, Owned {
  bot_id: string;
  conversation_id: string | null;
  provider: string;
  model: string;
  tokens_in: number;
  tokens_out: number;
  latency_ms: number;
  outcome: ActivityOutcome;
  /** The engine's error code when `outcome` is `error` or `timeout` (e.g. `PROVIDER_FAILED`). */
  error_code?: string;
  cost_usd: number;
  cost_nano_usd: number;
  /** False when no price was known for the model at the time (the cost is then 0). */
  priced: boolean;
  /** UTC day of the call, `YYYY-MM-DD`. */
  day: string;
}

/** The price of a model (the seed's `ai_model_configs`); the document id is the model name. */
export interface ModelPricing extends StoredMeta {
  model: string;
  /** USD per 1,000,000 input (prompt) tokens. */
  input_usd_per_1m: number;
  /** USD per 1,000,000 output (completion) tokens. */
  output_usd_per_1m: number;
  /** `seed`: Otto's list price as of `as_of`; `admin`: set through the API. */
  source: 'seed' | 'admin';
  /** When the price was last known to be right (`YYYY-MM-DD`). */
  as_of: string;
}

/** A monthly budget in USD for a user (`user:<owner_id>`) or a bot (`bot:<bot_id>`). */
export interface UsageBudget extends StoredMeta, Owned {
  scope: 'user' | 'bot';
  /** The user's owner id or the bot's id. */
  subject_id: string;
  monthly_usd: number;
}

/** The date the seeded prices were taken from the providers' public price lists. */
export const PRICING_AS_OF = '2025-08-01';

/**
 * Prices the migration seeds (USD per 1M tokens, input / output), from the providers' public
 * price lists as of PRICING_AS_OF. Editable with `PUT /model-pricing/:model`; the migration never
 * overwrites a price that exists.
 */
export const seededPrices: ReadonlyArray<{ model: string; input: number; output: number }> = [
  { model: 'gpt-4o', input: 2.5, output: 10 },
  { model: 'gpt-4o-mini', input: 0.15, output: 0.6 },
  { model: 'gpt-4.1', input: 2, output: 8 },
  { model: 'gpt-4.1-mini', input: 0.4, output: 1.6 },
  { model: 'gpt-4.1-nano', input: 0.1, output: 0.4 },
  { model: 'gpt-5', input: 1.25, output: 10 },
  { model: 'gpt-5-mini', input: 0.25, output: 2 },
  { model: 'gpt-5-nano', input: 0.05, output: 0.4 },
  { model: 'o3', input: 2, output: 8 },
  { model: 'o3-mini', input: 1.1, output: 4.4 },
  { model: 'o4-mini', input: 1.1, output: 4.4 },
  { model: 'claude-opus-4-1', input: 15, output: 75 },
  { model: 'claude-opus-4', input: 15, output: 75 },
  { model: 'claude-sonnet-4', input: 3, output: 15 },
  { model: 'claude-3-7-sonnet', input: 3, output: 15 },
  { model: 'claude-3-5-sonnet', input: 3, output: 15 },
  { model: 'claude-3-5-haiku', input: 0.8, output: 4 },
  { model: 'gemini-2.5-pro', input: 1.25, output: 10 },
  { model: 'gemini-2.5-flash', input: 0.3, output: 2.5 },
  { model: 'gemini-2.0-flash', input: 0.1, output: 0.4 },
];

/** The model name with a trailing release date removed (`gpt-4o-2024-08-06` → `gpt-4o`, `claude-3-5-sonnet-20241022` → `claude-3-5-sonnet`), or null when it has none. */
export function undatedModel(model: string): string | null {
  const m = /^(.+?)-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$/.exec(model);
  return m ? m[1]! : null;
}

/**
 * The cost of a call in billionths of a USD (an integer): tokens × price per 1M tokens × 1000
 * (1 USD per 1M tokens is 1000 nano-USD per token), rounded once.
 */
export function costNanoUsd(args: { tokens_in: number; tokens_out: number; input_usd_per_1m: number; output_usd_per_1m: number }): number {
  return Math.round(args.tokens_in * args.input_usd_per_1m * 1000 + args.tokens_out * args.output_usd_per_1m * 1000);
}

/** Nano-USD as USD (a decimal with at most 9 places). */
export function nanoToUsd(nano: number): number {
  return Math.round(nano) / 1e9;
}

/** USD as nano-USD (an integer). */
export function usdToNano(usd: number): number {
  return Math.round(usd * 1e9);
}

/** The UTC day of an instant, `YYYY-MM-DD`. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** The first and last day of the UTC month holding `at`, and the instant the next month starts (when a monthly budget resets). */
export function utcMonth(at: Date): { first: string; last: string; resets_at: string } {
  const start = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1);
  const next = Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1);
  return { first: utcDay(new Date(start)), last: utcDay(new Date(next - 86_400_000)), resets_at: new Date(next).toISOString() };
}

/** True when `day` is a real calendar date written `YYYY-MM-DD`. */
export function isDay(day: unknown): day is string {
  if (typeof day !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(day)) return false;
  const parsed = new Date(`${day}T00:00:00.000Z`);
  return !Number.isNaN(parsed.getTime()) && utcDay(parsed) === day;
}
