/**
 * Usage and cost: every provider call is recorded in `ai_activity_logs` with its tokens,
 * latency, outcome and cost (from `ai_model_configs` at the time), reports are computed by the
 * store's own aggregation, and monthly budgets refuse provider calls once spent.
 */
import {
  collections,
  costNanoUsd,
  isDay,
  nanoToUsd,
  newId,
  undatedModel,
  usdToNano,
  utcDay,
  utcMonth,
  type ActivityLog,
  type ActivityOutcome,
  type ModelPricing,
  type UsageBudget,
} from '../domain/index.ts';
import { OttoError } from '../domain/errors.ts';
import { isEngineError, isOfflineProvider, type CompletionRequest, type CompletionResult, type Provider } from '../engine/index.ts';
import { and, eq, gte, isIn, isStorageError, lte, type Collection, type NewDoc, type Store } from '../storage/index.ts';
import type { Caller } from './caller.ts';

/** What a report groups by, and the stored field each means. */
export const usageGroupings = { day: 'day', bot: 'bot_id', model: 'model', user: 'owner_id' } as const;
export type UsageGrouping = keyof typeof usageGroupings;

/** One row of a usage report. */
export interface UsageRow {
  /** The day (`YYYY-MM-DD`), bot id, model name or user (owner) id. */
  key: string;
  calls: number;
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
}

/** `GET /usage` and `otto usage`: rows in ascending key order and their totals. */
export interface UsageReport {
  from: string;
  to: string;
  group_by: UsageGrouping;
  rows: UsageRow[];
  totals: { calls: number; tokens_in: number; tokens_out: number; cost_usd: number };
}

/** A budget as the API shows it, with this month's spending. */
export interface BudgetView {
  scope: 'user' | 'bot';
  subject_id: string;
  owner_id: string;
  monthly_usd: number;
  spent_usd: number;
  /** First instant of the next UTC month, when spending starts again from 0. */
  resets_at: string;
  exceeded: boolean;
  updated_at: string;
}

/** How recording is going, for `/health`. */
export interface UsageRecordingStatus {
  /** Activity records written since start. */
  recorded: number;
  /** Records whose write failed and that wait for the next write (kept in memory, at most MAX_PENDING). */
  pending: number;
  /** Records dropped because more than MAX_PENDING waited. */
  dropped: number;
  last_error?: string;
  last_error_at?: string;
}

/** Most unwritten activity records kept for a retry. */
export const MAX_PENDING = 10_000;

/** Calls that reached (or tried to reach) a provider: what reports count. Refusals cost nothing and are not calls. */
const COUNTED_OUTCOMES: ActivityOutcome[] = ['ok', 'error', 'timeout'];

/** The error a spent budget throws: 429 BUDGET_EXCEEDED. */
export function budgetExceeded(args: { scope: 'user' | 'bot'; subject_id: string; monthly_usd: number; spent_usd: number; resets_at: string }): OttoError {
  const whose = args.scope === 'user' ? `user ${args.subject_id}` : `bot ${args.subject_id}`;
  return new OttoError(
    'BUDGET_EXCEEDED',
    `the monthly budget of ${whose} ($${args.monthly_usd}) is spent ($${round2(args.spent_usd)} this month); it resets at ${args.resets_at}`,
    { detail: { budget: args.scope, subject_id: args.subject_id, monthly_usd: args.monthly_usd, spent_usd: args.spent_usd, resets_at: args.resets_at } },
  );
}

/** True when `error` is the refusal of a spent budget. */
export function isBudgetExceeded(error: unknown): error is OttoError {
  return error instanceof OttoError && error.code === 'BUDGET_EXCEEDED';
}

function round2(usd: number): string {
  return (Math.ceil(usd * 100) / 100).toFixed(2);
}

/** Usage, pricing and budgets on one store. */
export class UsageService {
  private readonly logs: Collection<ActivityLog>;
  private readonly pricing: Collection<ModelPricing>;
  private readonly budgets: Collection<UsageBudget>;
  private readonly onError: (error: unknown) => void;
  private readonly now: () => Date;
  private pending: Array<NewDoc<ActivityLog>> = [];
  private readonly counters = { recorded: 0, dropped: 0 };
  private lastError: { message: string; at: string } | undefined;

  private constructor(parts: { logs: Collection<ActivityLog>; pricing: Collection<ModelPricing>; budgets: Collection<UsageBudget>; onError: (error: unknown) => void; now: () => Date }) {
    this.logs = parts.logs;
    this.pricing = parts.pricing;
    this.budgets = parts.budgets;
    this.onError = parts.onError;
    this.now = parts.now;
  }

  /**
   * Opens the collections (created by migration 0004 with their indexes). `onError` hears about
   * activity records that could not be written; `now` is the clock (tests). Throws StorageError.
   */
  static async open(args: { store: Store; onError?: (error: unknown) => void; now?: () => Date }): Promise<UsageService> {
    return new UsageService({
      logs: await args.store.collection<ActivityLog>(collections.ai_activity_logs),
      pricing: await args.store.collection<ModelPricing>(collections.ai_model_configs),
      budgets: await args.store.collection<UsageBudget>(collections.usage_budgets),
      onError: args.onError ?? (() => {}),
      now: args.now ?? (() => new Date()),
    });
  }

  /** The current time, by the service's clock. */
  clock(): Date {
    return this.now();
  }

  // ---------------------------------------------------------------- pricing

  /** The price of a model: its own entry, else that of its undated name (`gpt-4o-2024-08-06` → `gpt-4o`), else null. Throws StorageError. */
  async priceFor(model: string): Promise<ModelPricing | null> {
    if (!model || model.length > 256) return null;
    const exact = await this.pricing.get({ id: model });
    if (exact) return exact;
    const base = undatedModel(model);
    return base ? this.pricing.get({ id: base }) : null;
  }

  /** Every model price, by model name. Throws StorageError. */
  async listPricing(): Promise<ModelPricing[]> {
    const out: ModelPricing[] = [];
    for await (const batch of this.pricing.scan()) out.push(...batch);
    return out.sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0));
  }

  /**
   * Sets (creates or replaces) a model's price; admins only. New calls are priced with it;
   * recorded calls keep the cost of their time. Throws FORBIDDEN, INVALID, StorageError.
   */
  async setPricing(args: { caller: Caller; model: string; input: { input_usd_per_1m: number; output_usd_per_1m: number } }): Promise<ModelPricing> {
    if (!args.caller.admin) throw new OttoError('FORBIDDEN', 'only an admin can change model pricing');
    const model = args.model;
    if (typeof model !== 'string' || model.length === 0 || model.length > 200 || /[\u0000-\u001f]/.test(model)) {
      throw new OttoError('INVALID', 'model must be a name of 1 to 200 printable characters', { field: 'model' });
    }
    const price = (value: unknown, field: string): number => {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1_000_000) throw new OttoError('INVALID', `${field} must be a number of USD from 0 to 1000000`, { field });
      return value;
    };
    return this.pricing.upsert({
      doc: {
        id: model,
        model,
        input_usd_per_1m: price(args.input?.input_usd_per_1m, 'input_usd_per_1m'),
        output_usd_per_1m: price(args.input?.output_usd_per_1m, 'output_usd_per_1m'),
        source: 'admin',
        as_of: utcDay(this.now()),
      },
    });
  }

  // -------------------------------------------------------------- recording

  /**
   * A meter for one turn: `provider` is `args.provider` with every completion recorded (and,
   * before each, the budgets checked); `offline()` records a turn of the offline provider;
   * `flush()` writes what was recorded. See the class `TurnMeter`.
   */
  meter(args: { owner_id: string; bot_id: string; conversation_id: string | null; provider: Provider }): TurnMeter {
    return new TurnMeter(this, args);
  }

  /**
   * Writes activity records, with any that failed before, in one write. Never throws: a failed
   * write keeps them in memory (at most MAX_PENDING, oldest dropped first) for the next write,
   * reports the error to `onError`, and shows it in `status()` (so in `/health`).
   */
  async record(docs: Array<NewDoc<ActivityLog>>): Promise<void> {
    const retry = this.pending;
    this.pending = [];
    try {
      // Records that failed before may have been partly written (engines without transactions): upsert is idempotent.
      for (const doc of retry) await this.logs.upsert({ doc, verbatim: true });
      if (docs.length > 0) await this.logs.insertMany({ docs });
      this.counters.recorded += retry.length + docs.length;
    } catch (error) {
      const waiting = [...retry, ...docs];
      const overflow = Math.max(0, waiting.length + this.pending.length - MAX_PENDING);
      this.counters.dropped += overflow;
      this.pending = [...waiting, ...this.pending].slice(overflow);
      this.lastError = { message: isStorageError(error) ? `${error.code}: ${error.message}` : String((error as Error)?.message ?? error), at: this.now().toISOString() };
      this.onError(error);
    }
  }

  /** How recording is going (for `/health`). */
  status(): UsageRecordingStatus {
    return {
      recorded: this.counters.recorded,
      pending: this.pending.length,
      dropped: this.counters.dropped,
      ...(this.lastError ? { last_error: this.lastError.message, last_error_at: this.lastError.at } : {}),
    };
  }

  /** Builds an activity record (id, day and cost filled in). Throws StorageError when pricing cannot be read. */
  async activity(
    args: Pick<ActivityLog, 'owner_id' | 'bot_id' | 'conversation_id' | 'provider' | 'model' | 'tokens_in' | 'tokens_out' | 'latency_ms' | 'outcome' | 'error_code'> & {
      at?: Date;
      price?: ModelPricing | null;
    },
  ): Promise<NewDoc<ActivityLog>> {
    const at = args.at ?? this.now();
    const price = args.price === undefined ? (args.provider === 'offline' ? null : await this.priceFor(args.model)) : args.price;
    const nano = price ? costNanoUsd({ tokens_in: args.tokens_in, tokens_out: args.tokens_out, input_usd_per_1m: price.input_usd_per_1m, output_usd_per_1m: price.output_usd_per_1m }) : 0;
    return {
      id: newId('act'),
      owner_id: args.owner_id,
      bot_id: args.bot_id,
      conversation_id: args.conversation_id,
      provider: args.provider,
      model: args.model,
      tokens_in: args.tokens_in,
      tokens_out: args.tokens_out,
      latency_ms: Math.max(0, Math.round(args.latency_ms)),
      outcome: args.outcome,
      ...(args.error_code ? { error_code: args.error_code } : {}),
      cost_usd: nanoToUsd(nano),
      cost_nano_usd: nano,
      // The offline provider has no model and costs nothing: it is priced, at 0.
      priced: price !== null || args.provider === 'offline',
      day: utcDay(at),
      created_at: at.toISOString(),
    };
  }

  // ---------------------------------------------------------------- reports

  /**
   * The usage report over `[from, to]` (UTC days, both included) grouped by day, bot, model or
   * user, computed by the store's aggregation. Non-admins see only their own usage (filters
   * for someone else's bot or user simply match nothing). Refused calls (budget) are not counted.
   * Throws INVALID for a malformed or reversed range or grouping, StorageError.
   */
  async report(args: { caller: Caller; from: string; to: string; group_by: string; bot_id?: string; user_id?: string }): Promise<UsageReport> {
    if (!isDay(args.from)) throw new OttoError('INVALID', 'from must be a date written YYYY-MM-DD', { field: 'from' });
    if (!isDay(args.to)) throw new OttoError('INVALID', 'to must be a date written YYYY-MM-DD', { field: 'to' });
    if (args.from > args.to) throw new OttoError('INVALID', 'from must not be after to', { field: 'from' });
    if (!Object.hasOwn(usageGroupings, args.group_by)) throw new OttoError('INVALID', 'group_by must be day, bot, model or user', { field: 'group_by' });
    const groupBy = args.group_by as UsageGrouping;
    const field = usageGroupings[groupBy];
    const where = and(
      args.caller.admin ? undefined : eq('owner_id', args.caller.owner_id),
      args.user_id === undefined ? undefined : eq('owner_id', args.user_id),
      args.bot_id === undefined ? undefined : eq('bot_id', args.bot_id),
      gte('day', args.from),
      lte('day', args.to),
      isIn('outcome', COUNTED_OUTCOMES),
    );
    const grouped = await this.logs.aggregate({ where, groupBy: [field], sum: ['tokens_in', 'tokens_out', 'cost_nano_usd'] });
    let nano = 0;
    const totals = { calls: 0, tokens_in: 0, tokens_out: 0, cost_usd: 0 };
    const rows = grouped.map((g): UsageRow => {
      totals.calls += g.count;
      totals.tokens_in += g.sums.tokens_in!;
      totals.tokens_out += g.sums.tokens_out!;
      nano += g.sums.cost_nano_usd!;
      return { key: String(g.group[field] ?? ''), calls: g.count, tokens_in: g.sums.tokens_in!, tokens_out: g.sums.tokens_out!, cost_usd: nanoToUsd(g.sums.cost_nano_usd!) };
    });
    totals.cost_usd = nanoToUsd(nano);
    return { from: args.from, to: args.to, group_by: groupBy, rows, totals };
  }

  // ---------------------------------------------------------------- budgets

  /** Nano-USD spent this UTC month by a user (their conversations) or a bot. Throws StorageError. */
  async spentThisMonth(args: { scope: 'user' | 'bot'; subject_id: string; at?: Date }): Promise<number> {
    const month = utcMonth(args.at ?? this.now());
    const [row] = await this.logs.aggregate({
      where: and(eq(args.scope === 'user' ? 'owner_id' : 'bot_id', args.subject_id), gte('day', month.first), lte('day', month.last)),
      groupBy: [],
      sum: ['cost_nano_usd'],
    });
    return row?.sums.cost_nano_usd ?? 0;
  }

  /** The budgets that apply to a call by `owner_id` to `bot_id` (user's first). Throws StorageError. */
  async budgetsFor(args: { owner_id: string; bot_id: string }): Promise<UsageBudget[]> {
    const [user, bot] = await Promise.all([this.budgets.get({ id: `user:${args.owner_id}` }), this.budgets.get({ id: `bot:${args.bot_id}` })]);
    return [user, bot].filter((b): b is UsageBudget => b !== null);
  }

  /**
   * Sets a monthly budget. A user's: admins only. A bot's: its owner or an admin; `owner_id` is
   * the bot's owner (the caller resolves it). Throws FORBIDDEN, INVALID, StorageError.
   */
  async setBudget(args: { caller: Caller; scope: 'user' | 'bot'; subject_id: string; owner_id: string; monthly_usd: number }): Promise<BudgetView> {
    if (args.scope === 'user' && !args.caller.admin) throw new OttoError('FORBIDDEN', "only an admin can set a user's budget");
    if (args.scope === 'bot' && !args.caller.admin && args.caller.owner_id !== args.owner_id) throw new OttoError('NOT_FOUND', `bot ${args.subject_id} not found`, { field: 'bot_id' });
    if (typeof args.monthly_usd !== 'number' || !Number.isFinite(args.monthly_usd) || args.monthly_usd < 0 || args.monthly_usd > 1e9) {
      throw new OttoError('INVALID', 'monthly_usd must be a number of USD from 0 to 1000000000', { field: 'monthly_usd' });
    }
    const stored = await this.budgets.upsert({ doc: { id: `${args.scope}:${args.subject_id}`, scope: args.scope, subject_id: args.subject_id, owner_id: args.owner_id, monthly_usd: args.monthly_usd } });
    return this.view(stored);
  }

  /** A budget with this month's spending, or null when none is set. Tenancy is the caller's (route's) concern. Throws StorageError. */
  async getBudget(args: { scope: 'user' | 'bot'; subject_id: string }): Promise<BudgetView | null> {
    const stored = await this.budgets.get({ id: `${args.scope}:${args.subject_id}` });
    return stored ? this.view(stored) : null;
  }

  /** Removes a budget; true when there was one. Tenancy and roles are the caller's (route's) concern. Throws StorageError. */
  async deleteBudget(args: { scope: 'user' | 'bot'; subject_id: string }): Promise<boolean> {
    return this.budgets.delete({ id: `${args.scope}:${args.subject_id}` });
  }

  /** The budgets the caller may see (admins: all; others: their own user budget and their bots'), with spending. Throws StorageError. */
  async listBudgets(args: { caller: Caller }): Promise<BudgetView[]> {
    const out: UsageBudget[] = [];
    let after: string | null = null;
    do {
      const page = await this.budgets.find({ where: args.caller.admin ? undefined : eq('owner_id', args.caller.owner_id), sort: [{ field: 'id', direction: 'asc' }], limit: 1000, after });
      out.push(...page.items);
      after = page.next;
    } while (after);
    return Promise.all(out.map((b) => this.view(b)));
  }

  private async view(budget: UsageBudget): Promise<BudgetView> {
    const month = utcMonth(this.now());
    const spent = await this.spentThisMonth({ scope: budget.scope, subject_id: budget.subject_id });
    return {
      scope: budget.scope,
      subject_id: budget.subject_id,
      owner_id: budget.owner_id,
      monthly_usd: budget.monthly_usd,
      spent_usd: nanoToUsd(spent),
      resets_at: month.resets_at,
      exceeded: spent >= usdToNano(budget.monthly_usd),
      updated_at: budget.updated_at,
    };
  }
}

/**
 * Meters one turn. Its `provider` wraps the turn's provider (same name and model, so the engine
 * takes the same path): before each completion it checks the budgets that apply (the user's and
 * the bot's, read once per turn, plus what this turn spent so far) and refuses with
 * BUDGET_EXCEEDED (recording a `budget_refused` activity) once one is spent; after it, it
 * records tokens, latency, outcome and cost. Nothing is written until `flush()`, which the
 * chat service calls once the turn is over, success or failure, in the same request.
 */
export class TurnMeter {
  private readonly usage: UsageService;
  private readonly context: { owner_id: string; bot_id: string; conversation_id: string | null };
  private readonly inner: Provider;
  private readonly records: Array<NewDoc<ActivityLog>> = [];
  private limits: Array<{ budget: UsageBudget; spentNano: number }> | undefined;
  private price: ModelPricing | null | undefined;
  private turnNano = 0;
  /** The wrapped provider to hand to the engine. */
  readonly provider: Provider;

  constructor(usage: UsageService, args: { owner_id: string; bot_id: string; conversation_id: string | null; provider: Provider }) {
    this.usage = usage;
    this.context = { owner_id: args.owner_id, bot_id: args.bot_id, conversation_id: args.conversation_id };
    this.inner = args.provider;
    this.provider = Object.freeze({
      name: args.provider.name,
      model: args.provider.model,
      complete: (request: CompletionRequest, options?: { signal?: AbortSignal }) => this.complete(request, options),
    });
  }

  /** True when the turn's provider is the offline rules provider (no model, no cost). */
  get offline(): boolean {
    return isOfflineProvider(this.inner);
  }

  private async complete(request: CompletionRequest, options?: { signal?: AbortSignal }): Promise<CompletionResult> {
    await this.checkBudgets();
    this.price ??= await this.usage.priceFor(this.inner.model);
    const started = performance.now();
    try {
      const result = await this.inner.complete(request, options);
      await this.add({ tokens_in: result.usage.tokens_in, tokens_out: result.usage.tokens_out, latency_ms: performance.now() - started, outcome: 'ok' });
      return result;
    } catch (error) {
      const code = isEngineError(error) ? error.code : 'INTERNAL';
      await this.add({ tokens_in: 0, tokens_out: 0, latency_ms: performance.now() - started, outcome: code === 'PROVIDER_TIMEOUT' ? 'timeout' : 'error', error_code: code });
      throw error;
    }
  }

  private async checkBudgets(): Promise<void> {
    if (!this.limits) {
      const budgets = await this.usage.budgetsFor(this.context);
      this.limits = await Promise.all(budgets.map(async (budget) => ({ budget, spentNano: await this.usage.spentThisMonth({ scope: budget.scope, subject_id: budget.subject_id }) })));
    }
    for (const { budget, spentNano } of this.limits) {
      const spent = spentNano + this.turnNano;
      if (spent >= usdToNano(budget.monthly_usd)) {
        this.records.push(await this.usage.activity({ ...this.context, provider: this.inner.name, model: this.inner.model, tokens_in: 0, tokens_out: 0, latency_ms: 0, outcome: 'budget_refused', error_code: 'BUDGET_EXCEEDED', price: null }));
        throw budgetExceeded({ scope: budget.scope, subject_id: budget.subject_id, monthly_usd: budget.monthly_usd, spent_usd: nanoToUsd(spent), resets_at: utcMonth(this.usage.clock()).resets_at });
      }
    }
  }

  private async add(args: { tokens_in: number; tokens_out: number; latency_ms: number; outcome: ActivityOutcome; error_code?: string }): Promise<void> {
    const record = await this.usage.activity({ ...this.context, provider: this.inner.name, model: this.inner.model, ...args, price: this.price ?? null });
    this.turnNano += record.cost_nano_usd;
    this.records.push(record);
  }

  /** Records a turn answered by the offline rules provider: model `offline`, 0 tokens, cost 0. */
  async offlineTurn(args: { latency_ms: number }): Promise<void> {
    this.records.push(await this.usage.activity({ ...this.context, provider: 'offline', model: 'offline', tokens_in: 0, tokens_out: 0, latency_ms: args.latency_ms, outcome: 'ok', price: null }));
  }

  /** Writes the turn's records (see `UsageService.record`: never throws). */
  async flush(): Promise<void> {
    const docs = this.records.splice(0);
    await this.usage.record(docs);
  }
}
