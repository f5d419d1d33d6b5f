/** An in-memory BuilderActions for unit tests: real enough to fail like the services do. */
import type { Bot, BotDefinition, Guideline, Journey, Tool, ToolMapping } from '../../src/domain/entities.ts';
import type { BuilderActions } from '../../src/engine/index.ts';

function fail(code: string, message: string, field?: string): never {
  throw Object.assign(new Error(message), { code, field });
}

export interface FakeActions extends BuilderActions {
  calls: Array<[string, ...unknown[]]>;
  defs: Map<string, BotDefinition>;
}

export function fakeBuilderActions(): FakeActions {
  const defs = new Map<string, BotDefinition>();
  const calls: Array<[string, ...unknown[]]> = [];
  let n = 0;
  const at = '2025-01-01T00:00:00.000Z';
  const meta = (prefix: string) => ({ id: `${prefix}_${++n}`, version: 1, created_at: at, updated_at: at, owner_id: 'owner_1' });
  const byName = (name: string) => [...defs.values()].find((d) => d.bot.name_key === name.trim().toLowerCase());
  const get = (id: string): BotDefinition => defs.get(id) ?? fail('NOT_FOUND', `bot ${id} not found`, 'bot_id');
  return {
    calls,
    defs,
    async listBots() {
      calls.push(['listBots']);
      return [...defs.values()].map((d) => d.bot);
    },
    async findBot(nameOrId) {
      calls.push(['findBot', nameOrId]);
      return structuredClone(defs.get(nameOrId) ?? byName(nameOrId) ?? null);
    },
    async createBot(input) {
      calls.push(['createBot', input]);
      if (!/^[\p{L}\p{N} _.-]{1,60}$/u.test(input.name)) fail('INVALID', 'name must be 1-60 letters, digits, spaces, _ . or -', 'name');
      if (byName(input.name)) fail('DUPLICATE', `a bot named "${input.name}" already exists`, 'name');
      const bot: Bot = { ...meta('bot'), name: input.name, name_key: input.name.toLowerCase(), description: input.description ?? '', composition_mode: 'fluid', max_engine_iterations: 3, metadata: {} };
      defs.set(bot.id, { bot, guidelines: [], journeys: [], tools: [], mappings: [] });
      return bot;
    },
    async addGuideline(botId, input) {
      calls.push(['addGuideline', botId, input]);
      const def = get(botId);
      const g: Guideline = { ...meta('gl'), bot_id: botId, condition: input.condition, action: input.action, description: '', criticality: input.criticality ?? 'medium', enabled: true };
      def.guidelines.push(g);
      return g;
    },
    async addJourney(botId, input) {
      calls.push(['addJourney', botId, input]);
      const def = get(botId);
      const j: Journey = { ...meta('jr'), bot_id: botId, title: input.title, description: input.description ?? '', conditions: input.conditions, steps: input.steps };
      def.journeys.push(j);
      return j;
    },
    async addTool(botId, input) {
      calls.push(['addTool', botId, input]);
      const def = get(botId);
      if (!/^https?:\/\//.test(input.endpoint.url)) fail('INVALID', 'endpoint.url must be an http(s) URL', 'endpoint.url');
      if (def.tools.some((t) => t.name === input.name)) fail('DUPLICATE', `a tool named ${input.name} already exists`, 'name');
      const t: Tool = { ...meta('tool'), bot_id: botId, name: input.name, description: input.description ?? '', input_schema: {}, endpoint: { url: input.endpoint.url, method: input.endpoint.method ?? 'GET', timeout_ms: 10000 } };
      def.tools.push(t);
      return t;
    },
    async mapTool(botId, input) {
      calls.push(['mapTool', botId, input]);
      const def = get(botId);
      if (!def.guidelines.some((g) => g.id === input.guideline_id)) fail('NOT_FOUND', 'no such guideline', 'guideline_id');
      const m: ToolMapping = { ...meta('map'), bot_id: botId, guideline_id: input.guideline_id, tool_name: input.tool_name };
      def.mappings.push(m);
      return m;
    },
    async updateBot(botId, patch) {
      calls.push(['updateBot', botId, patch]);
      const def = get(botId);
      if (patch.name !== undefined) {
        const other = byName(patch.name);
        if (other && other.bot.id !== botId) fail('DUPLICATE', `a bot named "${patch.name}" already exists`, 'name');
        def.bot.name = patch.name;
        def.bot.name_key = patch.name.toLowerCase();
      }
      if (patch.description !== undefined) def.bot.description = patch.description;
      return def.bot;
    },
    async deleteBot(botId) {
      calls.push(['deleteBot', botId]);
      get(botId);
      defs.delete(botId);
    },
  };
}
