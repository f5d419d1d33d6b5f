import { collections, newId, type Bot, type BotDefinition, type Guideline, type Journey, type Tool, type ToolMapping } from '../domain/index.ts';
import { OttoError } from '../domain/errors.ts';
import { validateInput } from '../domain/schemas.ts';
import { and, eq, isStorageError, type Collection, type Page, type Store } from '../storage/index.ts';
import { canAccess, type Caller } from './caller.ts';
import type { BotRegistry } from './registry.ts';

export const BUILDER_BOT_ID = 'otto';

export interface BotInput {
  name: string;
  description?: string;
  composition_mode?: Bot['composition_mode'];
  max_engine_iterations?: number;
  metadata?: Record<string, unknown>;
  /** Delete messages older than this many days; null: keep forever. */
  retention_days?: number | null;
}
export interface GuidelineInput {
  condition: string;
  action: string;
  description?: string;
  criticality?: Guideline['criticality'];
  enabled?: boolean;
}
export interface JourneyInput {
  title: string;
  description?: string;
  conditions: string[];
  steps?: Journey['steps'];
}
export interface ToolInput {
  name: string;
  description?: string;
  input_schema?: Record<string, unknown>;
  endpoint: { url: string; method?: 'GET' | 'POST'; timeout_ms?: number; headers?: Record<string, string> };
}

type Versioned<T> = Partial<T> & { version?: number };

/** Bots and their definitions (guidelines, journeys, tools, tool mappings), scoped to the caller. */
export class BotService {
  private readonly bots: Collection<Bot>;
  private readonly guidelines: Collection<Guideline>;
  private readonly journeys: Collection<Journey>;
  private readonly tools: Collection<Tool>;
  private readonly mappings: Collection<ToolMapping>;
  private readonly registry: BotRegistry;

  private constructor(parts: { bots: Collection<Bot>; guidelines: Collection<Guideline>; journeys: Collection<Journey>; tools: Collection<Tool>; mappings: Collection<ToolMapping>; registry: BotRegistry }) {
    this.bots = parts.bots;
    this.guidelines = parts.guidelines;
    this.journeys = parts.journeys;
    this.tools = parts.tools;
    this.mappings = parts.mappings;
    this.registry = parts.registry;
  }

  /** Opens the collections the service needs. Throws StorageError. */
  static async open(store: Store, registry: BotRegistry): Promise<BotService> {
    return new BotService({
      bots: await store.collection<Bot>(collections.bots),
      guidelines: await store.collection<Guideline>(collections.guidelines),
      journeys: await store.collection<Journey>(collections.journeys),
      tools: await store.collection<Tool>(collections.tools),
      mappings: await store.collection<ToolMapping>(collections.tool_mappings),
      registry,
    });
  }

  /** Creates a bot owned by the caller. Throws INVALID for bad input, DUPLICATE when the caller has a bot of that name. */
  async create(args: { caller: Caller; input: BotInput }): Promise<Bot> {
    const input = validateInput<BotInput>('BotCreate', args.input);
    const name = input.name.trim();
    if (name.toLowerCase() === BUILDER_BOT_ID) throw new OttoError('DUPLICATE', 'the name Otto belongs to the built-in bot-builder', { field: 'name' });
    const bot = await this.write(() =>
      this.bots.insert({
        doc: {
          id: newId('bot'),
          owner_id: args.caller.owner_id,
          name,
          name_key: name.toLowerCase(),
          description: input.description ?? '',
          composition_mode: input.composition_mode ?? 'fluid',
          max_engine_iterations: input.max_engine_iterations ?? 3,
          metadata: input.metadata ?? {},
          retention_days: input.retention_days ?? null,
        },
      }),
    );
    await this.registry.changed(bot.id);
    return bot;
  }

  /** The caller's bots (all bots for an admin), oldest first, one cursor page at a time. */
  async list(args: { caller: Caller; after?: string | null; limit?: number }): Promise<Page<Bot>> {
    const where = args.caller.admin ? undefined : eq('owner_id', args.caller.owner_id);
    return this.bots.find({ where, after: args.after, limit: args.limit ?? 100 });
  }

  /** Returns the bot, or throws NOT_FOUND when it does not exist or is not the caller's. */
  async get(args: { caller: Caller; id: string }): Promise<Bot> {
    const bot = await this.bots.get({ id: args.id });
    if (!bot || !canAccess(args.caller, bot.owner_id)) throw new OttoError('NOT_FOUND', `bot ${args.id} not found`, { field: 'bot_id' });
    return bot;
  }

  /** Finds one of the caller's bots by id or (case-insensitive) name; null when none. */
  async findByNameOrId(args: { caller: Caller; nameOrId: string }): Promise<Bot | null> {
    const byId = await this.bots.get({ id: args.nameOrId }).catch(() => null);
    if (byId && canAccess(args.caller, byId.owner_id)) return byId;
    const key = args.nameOrId.trim().toLowerCase();
    const page = await this.bots.find({ where: and(eq('owner_id', args.caller.owner_id), eq('name_key', key)), limit: 1 });
    return page.items[0] ?? null;
  }

  /**
   * Changes a bot's fields. With `version`, only if it is still at that version.
   * Throws NOT_FOUND, INVALID, CONFLICT (someone changed it since), DUPLICATE (name taken).
   */
  async update(args: { caller: Caller; id: string; patch: Versioned<BotInput> }): Promise<Bot> {
    const { version, ...patch } = validateInput<Versioned<BotInput>>('BotPatch', args.patch);
    await this.get(args);
    const changes: Partial<Bot> = { ...patch };
    if (patch.name !== undefined) {
      changes.name = patch.name.trim();
      changes.name_key = changes.name.toLowerCase();
      if (changes.name_key === BUILDER_BOT_ID) throw new OttoError('DUPLICATE', 'the name Otto belongs to the built-in bot-builder', { field: 'name' });
    }
    const bot = await this.write(() => this.bots.update({ id: args.id, patch: changes, expectVersion: version }));
    await this.registry.changed(bot.id);
    return bot;
  }

  /** Deletes the bot and its definitions (guidelines, journeys, tools, mappings); conversations stay. Throws NOT_FOUND. */
  async delete(args: { caller: Caller; id: string; version?: number }): Promise<void> {
    await this.get(args);
    for (const c of [this.mappings, this.tools, this.journeys, this.guidelines] as Array<Collection<Guideline | Journey | Tool | ToolMapping>>) {
      await c.deleteMany({ where: eq('bot_id', args.id) });
    }
    await this.write(() => this.bots.delete({ id: args.id, expectVersion: args.version }));
    await this.registry.changed(args.id);
  }

  /** The bot with all its definitions, read from the store. Throws NOT_FOUND. */
  async definition(args: { caller: Caller; id: string }): Promise<BotDefinition> {
    const bot = await this.get(args);
    return loadDefinition(this, bot);
  }

  /** @internal Reads every definition of one bot (used by the registry too). */
  async readDefinitionParts(botId: string): Promise<Omit<BotDefinition, 'bot'>> {
    const all = async <T extends Guideline | Journey | Tool | ToolMapping>(c: Collection<T>): Promise<T[]> => {
      const out: T[] = [];
      let after: string | null = null;
      do {
        const page: Page<T> = await c.find({ where: eq('bot_id', botId), after, limit: 1000 });
        out.push(...page.items);
        after = page.next;
      } while (after);
      return out;
    };
    return { guidelines: await all(this.guidelines), journeys: await all(this.journeys), tools: await all(this.tools), mappings: await all(this.mappings) };
  }

  // Guidelines

  /** Adds a guideline to the caller's bot. Throws NOT_FOUND, INVALID. */
  async addGuideline(args: { caller: Caller; bot_id: string; input: GuidelineInput }): Promise<Guideline> {
    const input = validateInput<GuidelineInput>('GuidelineCreate', args.input);
    const bot = await this.get({ caller: args.caller, id: args.bot_id });
    const guideline = await this.write(() =>
      this.guidelines.insert({
        doc: {
          id: newId('gdl'),
          owner_id: bot.owner_id,
          bot_id: bot.id,
          condition: input.condition.trim(),
          action: input.action.trim(),
          description: input.description ?? '',
          criticality: input.criticality ?? 'medium',
          enabled: input.enabled ?? true,
        },
      }),
    );
    await this.registry.changed(bot.id);
    return guideline;
  }

  /** The bot's guidelines, oldest first. Throws NOT_FOUND. */
  async listGuidelines(args: { caller: Caller; bot_id: string; after?: string | null; limit?: number }): Promise<Page<Guideline>> {
    await this.get({ caller: args.caller, id: args.bot_id });
    return this.guidelines.find({ where: eq('bot_id', args.bot_id), after: args.after, limit: args.limit ?? 100 });
  }

  /** Changes a guideline (guarded by `version` when given). Throws NOT_FOUND, INVALID, CONFLICT. */
  async updateGuideline(args: { caller: Caller; bot_id: string; id: string; patch: Versioned<GuidelineInput> }): Promise<Guideline> {
    const { version, ...patch } = validateInput<Versioned<GuidelineInput>>('GuidelinePatch', args.patch);
    await this.child(this.guidelines, args, 'guideline');
    const updated = await this.write(() => this.guidelines.update({ id: args.id, patch, expectVersion: version }));
    await this.registry.changed(args.bot_id);
    return updated;
  }

  /** Deletes a guideline and the tool mappings that point at it. Throws NOT_FOUND. */
  async deleteGuideline(args: { caller: Caller; bot_id: string; id: string }): Promise<void> {
    await this.child(this.guidelines, args, 'guideline');
    await this.mappings.deleteMany({ where: and(eq('bot_id', args.bot_id), eq('guideline_id', args.id)) });
    await this.guidelines.delete({ id: args.id });
    await this.registry.changed(args.bot_id);
  }

  // Journeys

  /** Adds a journey. Throws NOT_FOUND, INVALID. */
  async addJourney(args: { caller: Caller; bot_id: string; input: JourneyInput }): Promise<Journey> {
    const input = validateInput<JourneyInput>('JourneyCreate', args.input);
    const bot = await this.get({ caller: args.caller, id: args.bot_id });
    const journey = await this.write(() =>
      this.journeys.insert({
        doc: { id: newId('jrn'), owner_id: bot.owner_id, bot_id: bot.id, title: input.title.trim(), description: input.description ?? '', conditions: input.conditions, steps: input.steps ?? [] },
      }),
    );
    await this.registry.changed(bot.id);
    return journey;
  }

  /** The bot's journeys. Throws NOT_FOUND. */
  async listJourneys(args: { caller: Caller; bot_id: string; after?: string | null; limit?: number }): Promise<Page<Journey>> {
    await this.get({ caller: args.caller, id: args.bot_id });
    return this.journeys.find({ where: eq('bot_id', args.bot_id), after: args.after, limit: args.limit ?? 100 });
  }

  /** Changes a journey (guarded by `version` when given). Throws NOT_FOUND, INVALID, CONFLICT. */
  async updateJourney(args: { caller: Caller; bot_id: string; id: string; patch: Versioned<JourneyInput> }): Promise<Journey> {
    const { version, ...patch } = validateInput<Versioned<JourneyInput>>('JourneyPatch', args.patch);
    await this.child(this.journeys, args, 'journey');
    const updated = await this.write(() => this.journeys.update({ id: args.id, patch, expectVersion: version }));
    await this.registry.changed(args.bot_id);
    return updated;
  }

  /** Deletes a journey. Throws NOT_FOUND. */
  async deleteJourney(args: { caller: Caller; bot_id: string; id: string }): Promise<void> {
    await this.child(this.journeys, args, 'journey');
    await this.journeys.delete({ id: args.id });
    await this.registry.changed(args.bot_id);
  }

  // Tools and mappings

  /** Adds a tool (an HTTP endpoint). Throws NOT_FOUND, INVALID, DUPLICATE (name taken on this bot). */
  async addTool(args: { caller: Caller; bot_id: string; input: ToolInput }): Promise<Tool> {
    const input = validateInput<ToolInput>('ToolCreate', args.input);
    const bot = await this.get({ caller: args.caller, id: args.bot_id });
    const tool = await this.write(() =>
      this.tools.insert({
        doc: {
          id: newId('tool'),
          owner_id: bot.owner_id,
          bot_id: bot.id,
          name: input.name,
          description: input.description ?? '',
          input_schema: input.input_schema ?? { type: 'object', properties: { message: { type: 'string' } } },
          endpoint: { url: input.endpoint.url, method: input.endpoint.method ?? 'POST', timeout_ms: input.endpoint.timeout_ms ?? 5000, ...(input.endpoint.headers ? { headers: input.endpoint.headers } : {}) },
        },
      }),
    );
    await this.registry.changed(bot.id);
    return tool;
  }

  /** The bot's tools. Throws NOT_FOUND. */
  async listTools(args: { caller: Caller; bot_id: string; after?: string | null; limit?: number }): Promise<Page<Tool>> {
    await this.get({ caller: args.caller, id: args.bot_id });
    return this.tools.find({ where: eq('bot_id', args.bot_id), after: args.after, limit: args.limit ?? 100 });
  }

  /** Deletes a tool and its mappings. Throws NOT_FOUND. */
  async deleteTool(args: { caller: Caller; bot_id: string; id: string }): Promise<void> {
    const tool = await this.child(this.tools, args, 'tool');
    await this.mappings.deleteMany({ where: and(eq('bot_id', args.bot_id), eq('tool_name', tool.name)) });
    await this.tools.delete({ id: args.id });
    await this.registry.changed(args.bot_id);
  }

  /**
   * Maps a tool to a guideline of the same bot: when the guideline matches, the tool runs.
   * Throws NOT_FOUND (bot, guideline or tool), DUPLICATE (already mapped), INVALID.
   */
  async mapTool(args: { caller: Caller; bot_id: string; input: { guideline_id: string; tool_name: string } }): Promise<ToolMapping> {
    const input = validateInput<{ guideline_id: string; tool_name: string }>('ToolMappingCreate', args.input);
    const bot = await this.get({ caller: args.caller, id: args.bot_id });
    const guideline = await this.guidelines.get({ id: input.guideline_id });
    if (!guideline || guideline.bot_id !== bot.id) throw new OttoError('NOT_FOUND', `guideline ${input.guideline_id} not found on this bot`, { field: 'guideline_id' });
    const tools = await this.tools.find({ where: and(eq('bot_id', bot.id), eq('name', input.tool_name)), limit: 1 });
    if (tools.items.length === 0) throw new OttoError('NOT_FOUND', `tool ${input.tool_name} not found on this bot`, { field: 'tool_name' });
    const mapping = await this.write(() =>
      this.mappings.insert({ doc: { id: newId('map'), owner_id: bot.owner_id, bot_id: bot.id, guideline_id: guideline.id, tool_name: input.tool_name } }),
    );
    await this.registry.changed(bot.id);
    return mapping;
  }

  /** The bot's tool mappings. Throws NOT_FOUND. */
  async listMappings(args: { caller: Caller; bot_id: string; after?: string | null; limit?: number }): Promise<Page<ToolMapping>> {
    await this.get({ caller: args.caller, id: args.bot_id });
    return this.mappings.find({ where: eq('bot_id', args.bot_id), after: args.after, limit: args.limit ?? 100 });
  }

  /** Removes a tool mapping. Throws NOT_FOUND. */
  async unmapTool(args: { caller: Caller; bot_id: string; id: string }): Promise<void> {
    await this.child(this.mappings, args, 'tool mapping');
    await this.mappings.delete({ id: args.id });
    await this.registry.changed(args.bot_id);
  }

  /** Reads a definition that must belong to the caller's bot; throws NOT_FOUND otherwise. */
  private async child<T extends Guideline | Journey | Tool | ToolMapping>(c: Collection<T>, args: { caller: Caller; bot_id: string; id: string }, what: string): Promise<T> {
    await this.get({ caller: args.caller, id: args.bot_id });
    const doc = await c.get({ id: args.id });
    if (!doc || doc.bot_id !== args.bot_id) throw new OttoError('NOT_FOUND', `${what} ${args.id} not found on this bot`, { field: 'id' });
    return doc;
  }

  /** Runs a write, turning storage DUPLICATE/CONFLICT into messages a person understands. */
  private async write<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (isStorageError(error, 'DUPLICATE')) {
        const field = error.field?.includes('name') ? 'name' : error.field;
        throw new OttoError('DUPLICATE', field === 'name' ? 'that name is already taken' : 'that already exists', { field, cause: error });
      }
      if (isStorageError(error, 'CONFLICT')) {
        throw new OttoError('CONFLICT', 'it was changed by someone else since you read it; reload and apply your change again', { field: 'version', cause: error });
      }
      throw error;
    }
  }
}

/** Assembles a bot's full definition from the store. */
export async function loadDefinition(service: BotService, bot: Bot): Promise<BotDefinition> {
  return { bot, ...(await service.readDefinitionParts(bot.id)) };
}
