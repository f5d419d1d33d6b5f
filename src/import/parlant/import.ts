/**
 * Parlant → Otto: agents become bots, guidelines guidelines, journeys journeys, and tool
 * associations tools with tool mappings, all written through the bot service (so owners, ids,
 * versions, validation and name uniqueness are Otto's own, and running bots reload).
 *
 * Idempotent: each bot remembers what it was imported from in `metadata.parlant`
 * (`{agent_id, name, guidelines: {<parlant id>: <otto id>}, journeys: {…}, tools: {"service:tool": …},
 * tool_mappings: {"<guideline id>|service:tool": …}}`, saved after every item created). Running
 * the import again creates nothing twice: an item already imported is left alone when it is
 * the same and updated when Parlant's differs; one deleted in Otto since is created again.
 *
 * Which bots an item goes to follows Parlant: a guideline's `guideline_set` (old stores), its
 * `agent:<id>` tags, custom tags carried by agents, and untagged ones to every agent. What has
 * no place in Otto is counted in `not_mapped` with the reason (guideline relationships, custom
 * tags, context variables, evaluations, observational guidelines, journey branches, …).
 */
import { compositionModes, criticalities, type Bot, type Guideline, type Journey, type JourneyStep, type Tool, type ToolMapping } from '../../domain/entities.ts';
import { OttoError } from '../../domain/errors.ts';
import type { BotService } from '../../services/bots.ts';
import type { Caller } from '../../services/caller.ts';
import { parlantModel, type ParlantAgent, type ParlantGuideline, type ParlantJourney, type ParlantToolRef } from './model.ts';
import type { ParlantData } from './source.ts';

export interface ParlantImportOptions {
  data: ParlantData;
  bots: BotService;
  /** Who the bots belong to (their owner). */
  caller: Caller;
  /**
   * Where tools of services without a callable URL (OpenAPI, MCP, built-in, unknown) are
   * reached: `<toolBaseUrl>/<service>/<tool>` (POST). Without it such tools are not imported.
   */
  toolBaseUrl?: string;
  /** One line per bot. */
  onProgress?: (line: string) => void;
}

/** What happened to one kind of item. `read` counts Parlant documents; the rest count Otto items (a guideline given to two bots counts twice). */
export interface ImportCounts {
  read: number;
  created: number;
  updated: number;
  unchanged: number;
}

/** Something Parlant has that Otto cannot hold, counted. */
export interface NotMapped {
  kind: string;
  reason: string;
  count: number;
  /** A few ids or names (at most 5). */
  examples: string[];
}

export interface ParlantImportReport {
  source: string;
  agents: ImportCounts;
  guidelines: ImportCounts;
  journeys: ImportCounts;
  tools: ImportCounts;
  tool_mappings: ImportCounts;
  /** Each imported agent and its bot. */
  bots: Array<{ parlant_id: string; bot_id: string; name: string }>;
  not_mapped: NotMapped[];
}

/** What a bot remembers of its import, in `metadata.parlant`. */
interface Ledger {
  agent_id: string;
  name: string;
  source: string;
  guidelines: Record<string, string>;
  journeys: Record<string, string>;
  tools: Record<string, string>;
  tool_mappings: Record<string, string>;
}

interface BotState {
  bot: Bot;
  ledger: Ledger;
  guidelines: Map<string, Guideline>;
  journeys: Map<string, Journey>;
  tools: Map<string, Tool>;
  mappings: ToolMapping[];
}

const COMPOSITION: Record<string, Bot['composition_mode']> = {
  fluid: 'fluid',
  canned_fluid: 'canned_fluid',
  canned_composited: 'composited_canned',
  canned_strict: 'strict_canned',
  fluid_utterance: 'canned_fluid',
  composited_utterance: 'composited_canned',
  strict_utterance: 'strict_canned',
  ...Object.fromEntries(compositionModes.map((m) => [m, m])),
};

/** Reasons for collections Otto has no place for, by collection name. */
const UNMAPPED_COLLECTIONS: Record<string, [kind: string, reason: string]> = {
  relationships: ['guideline relationships', 'Otto guidelines have no relationships (entailment, priority, dependency, disambiguation)'],
  guideline_connections: ['guideline relationships', 'Otto guidelines have no relationships (entailment, priority, dependency, disambiguation)'],
  variables: ['context variables', 'Otto has no context variables'],
  context_variables: ['context variables', 'Otto has no context variables'],
  values: ['context variable values', 'Otto has no context variables'],
  context_variable_values: ['context variable values', 'Otto has no context variables'],
  variable_tag_associations: ['context variables', 'Otto has no context variables'],
  evaluations: ['evaluations', "Parlant's own analyses of its guidelines; Otto's matcher needs none"],
  sessions: ['sessions', 'only definitions are imported, not conversations'],
  events: ['session events', 'only definitions are imported, not conversations'],
  inspections: ['session inspections', 'only definitions are imported, not conversations'],
  customers: ['customers', 'Otto has no customer records'],
  customer_tag_associations: ['customers', 'Otto has no customer records'],
  canned_responses: ['canned responses', 'Otto has no canned responses'],
  canned_response_tag_associations: ['canned responses', 'Otto has no canned responses'],
  utterances: ['canned responses', 'Otto has no canned responses'],
  fragments: ['canned responses', 'Otto has no canned responses'],
  terms: ['glossary terms', 'Otto has no glossary'],
  glossary: ['glossary terms', 'Otto has no glossary'],
  capabilities: ['capabilities', 'Otto has no capabilities'],
};

const clip = (text: string, max: number): string => (text.length > max ? text.slice(0, max) : text);
const toolName = (text: string): string => {
  const name = text.replace(/[^A-Za-z0-9_-]/g, '_').replace(/^[^A-Za-z_]+/, '');
  return clip(name === '' ? 'tool' : name, 64);
};
const counts = (): ImportCounts => ({ read: 0, created: 0, updated: 0, unchanged: 0 });

/**
 * Imports Parlant's definitions as the caller's bots (see the file comment). Returns the
 * report; never prompts or exits. Throws OttoError/StorageError only for failures of the
 * store itself; an item Otto cannot take (too long, invalid) is reported in `not_mapped`.
 */
export async function importParlant(options: ParlantImportOptions): Promise<ParlantImportReport> {
  const { bots, caller } = options;
  const model = parlantModel(options.data);
  const report: ParlantImportReport = {
    source: options.data.source,
    agents: counts(),
    guidelines: counts(),
    journeys: counts(),
    tools: counts(),
    tool_mappings: counts(),
    bots: [],
    not_mapped: [],
  };
  const notes = new Map<string, NotMapped>();
  const note = (kind: string, reason: string, example: string, count = 1): void => {
    const key = `${kind}\u0000${reason}`;
    const entry = notes.get(key) ?? { kind, reason, count: 0, examples: [] };
    entry.count += count;
    if (entry.examples.length < 5 && !entry.examples.includes(example)) entry.examples.push(clip(example, 120));
    notes.set(key, entry);
  };
  const invalid = (kind: string, id: string, error: unknown): void => {
    if (error instanceof OttoError && (error.code === 'INVALID' || error.code === 'DUPLICATE')) note(kind, `Otto refused it: ${error.message}`, id);
    else throw error;
  };

  for (const [name, docs] of options.data.collections) {
    if (model.consumed.has(name) || docs.length === 0) continue;
    const bare = model.prefix && name.startsWith(model.prefix) ? name.slice(model.prefix.length) : name;
    const [kind, reason] = UNMAPPED_COLLECTIONS[bare] ?? [`collection ${name}`, 'not an Otto concept'];
    note(kind, reason, String(docs[0]?.id ?? name), docs.length);
  }
  if (options.data.failedMigrations > 0) note('failed migrations', 'documents Parlant itself could not migrate', 'failed_migrations', options.data.failedMigrations);
  for (const [id, name] of model.tags) {
    if (!id.startsWith('agent:') && !id.startsWith('journey:')) note('tags', 'Otto has no tags; guidelines and journeys carrying one went to the agents that carry it', name);
  }

  // Bots
  const states = new Map<string, BotState>();
  const imported = new Map<string, Bot>();
  let after: string | null = null;
  do {
    const page = await bots.list({ caller, after, limit: 1000 });
    for (const bot of page.items) {
      const ledger = (bot.metadata as { parlant?: Partial<Ledger> } | undefined)?.parlant;
      if (ledger && typeof ledger.agent_id === 'string' && bot.owner_id === caller.owner_id) imported.set(ledger.agent_id, bot);
    }
    after = page.next;
  } while (after);

  for (const agent of model.agents) {
    report.agents.read++;
    try {
      const state = await ensureBot(agent, imported.get(agent.id));
      states.set(agent.id, state);
      report.bots.push({ parlant_id: agent.id, bot_id: state.bot.id, name: state.bot.name });
      options.onProgress?.(`agent ${agent.name} → bot ${state.bot.name} (${state.bot.id})`);
    } catch (error) {
      invalid('agents', agent.id, error);
    }
  }

  async function ensureBot(agent: ParlantAgent, existing: Bot | undefined): Promise<BotState> {
    const desired = {
      description: clip(agent.description, 2000),
      composition_mode: COMPOSITION[agent.composition_mode ?? 'fluid'] ?? 'fluid',
      max_engine_iterations: Math.min(10, Math.max(1, agent.max_engine_iterations ?? 3)),
    };
    if (agent.composition_mode && !COMPOSITION[agent.composition_mode]) note('agent composition modes', `unknown composition mode ${agent.composition_mode}; the bot is fluid`, agent.id);
    if ((agent.max_engine_iterations ?? 3) > 10) note('agent settings', 'max_engine_iterations above 10 was lowered to 10', agent.id);
    let bot: Bot;
    if (existing) {
      const old = (existing.metadata as { parlant: Ledger }).parlant;
      const patch: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(desired)) if ((existing as unknown as Record<string, unknown>)[key] !== value) patch[key] = value;
      if (old.name !== agent.name) patch.name = clip(agent.name.trim(), 100);
      bot = existing;
      if (Object.keys(patch).length > 0) {
        bot = await bots.update({ caller, id: existing.id, patch: { ...patch, metadata: { ...existing.metadata, parlant: { ...old, name: agent.name } } } }).catch(async (error: unknown) => {
          if (!(error instanceof OttoError && error.code === 'DUPLICATE' && 'name' in patch)) throw error;
          const { name: _name, ...rest } = patch;
          return bots.update({ caller, id: existing.id, patch: { ...rest, metadata: { ...existing.metadata, parlant: { ...old, name: agent.name } } } });
        });
        report.agents.updated++;
      } else {
        report.agents.unchanged++;
      }
    } else {
      const base = clip(agent.name.trim() || agent.id, 100);
      const ledger: Ledger = { agent_id: agent.id, name: agent.name, source: report.source, guidelines: {}, journeys: {}, tools: {}, tool_mappings: {} };
      let created: Bot | null = null;
      for (let attempt = 0; created === null; attempt++) {
        const suffix = attempt === 0 ? '' : attempt === 1 ? ' (Parlant)' : ` (Parlant ${attempt})`;
        try {
          created = await bots.create({ caller, input: { name: `${clip(base, 100 - suffix.length)}${suffix}`, ...desired, metadata: { parlant: ledger } } });
        } catch (error) {
          if (!(error instanceof OttoError && error.code === 'DUPLICATE') || attempt >= 20) throw error;
        }
      }
      bot = created;
      if (bot.name !== base) note('agent names', 'the name was taken by another bot; a suffix was added', `${agent.name} → ${bot.name}`);
      report.agents.created++;
    }
    const def = await bots.definition({ caller, id: bot.id });
    const ledger = (bot.metadata as { parlant: Ledger }).parlant;
    for (const key of ['guidelines', 'journeys', 'tools', 'tool_mappings'] as const) ledger[key] ??= {};
    return {
      bot,
      ledger,
      guidelines: new Map(def.guidelines.map((g) => [g.id, g])),
      journeys: new Map(def.journeys.map((j) => [j.id, j])),
      tools: new Map(def.tools.map((t) => [t.id, t])),
      mappings: def.mappings,
    };
  }

  /** Saves the bot's ledger (after each item created, so a stopped import never creates twice). */
  async function saveLedger(state: BotState): Promise<void> {
    state.bot = await bots.update({ caller, id: state.bot.id, patch: { metadata: { ...state.bot.metadata, parlant: state.ledger } } });
  }

  /** The agents an item goes to, or a reason it goes nowhere. */
  function agentsFor(tags: string[], guidelineSet: string | null): string[] | string {
    if (guidelineSet) return states.has(guidelineSet) ? [guidelineSet] : `its agent ${guidelineSet} was not imported`;
    if (tags.length === 0) return [...states.keys()];
    const out = new Set<string>();
    let journeyScoped = false;
    for (const tag of tags) {
      if (tag.startsWith('agent:')) {
        const id = tag.slice('agent:'.length);
        if (states.has(id)) out.add(id);
      } else if (tag.startsWith('journey:')) {
        journeyScoped = true;
      } else {
        for (const agent of model.agents) if (agent.tags.includes(tag) && states.has(agent.id)) out.add(agent.id);
      }
    }
    if (out.size > 0) return [...out];
    if (journeyScoped) return 'it applies only inside a journey; Otto guidelines apply to the whole bot';
    return 'none of its tags names an imported agent or a tag an agent carries';
  }

  // Guidelines
  const journeyConditions = new Set(model.journeys.flatMap((j) => j.conditions));
  for (const g of model.guidelines.values()) {
    report.guidelines.read++;
    if (g.action === null) {
      if (!journeyConditions.has(g.id)) note('observational guidelines', 'a condition without an action (Otto guidelines need an action)', g.id);
      continue;
    }
    const targets = agentsFor(g.tags, g.guideline_set);
    if (typeof targets === 'string') {
      note('guidelines', targets, g.id);
      continue;
    }
    if (g.has_metadata) note('guideline metadata', 'Otto guidelines have no metadata', g.id);
    if (g.composition_mode) note('guideline composition modes', 'Otto sets the composition mode per bot', g.id);
    if (!(criticalities as readonly string[]).includes(g.criticality)) note('guideline criticality', `unknown criticality ${g.criticality}; imported as medium`, g.id);
    for (const agentId of targets) await ensureGuideline(states.get(agentId)!, g);
  }

  /**
   * Creates the Otto guideline or journey for a Parlant one (found again through the ledger),
   * or updates the fields that differ from `desired`; counts the outcome in the report and
   * records a refused one as invalid. Never throws.
   */
  async function reconcile<K extends 'guidelines' | 'journeys', D extends object>(
    state: BotState,
    kind: K,
    sourceId: string,
    desired: D,
    write: { update: (id: string, patch: Partial<D>) => Promise<Guideline | Journey>; add: (input: D) => Promise<Guideline | Journey> },
  ): Promise<void> {
    const known = state[kind] as Map<string, Guideline | Journey>;
    const ledger: Record<string, string> = state.ledger[kind];
    try {
      const existing = known.get(ledger[sourceId] ?? '');
      if (existing) {
        const current = existing as unknown as Record<string, unknown>;
        const patch = Object.fromEntries(Object.entries(desired).filter(([k, v]) => JSON.stringify(current[k]) !== JSON.stringify(v))) as Partial<D>;
        if (Object.keys(patch).length === 0) {
          report[kind].unchanged++;
          return;
        }
        known.set(existing.id, await write.update(existing.id, patch));
        report[kind].updated++;
        return;
      }
      const created = await write.add(desired);
      known.set(created.id, created);
      ledger[sourceId] = created.id;
      await saveLedger(state);
      report[kind].created++;
    } catch (error) {
      invalid(kind, sourceId, error);
    }
  }

  async function ensureGuideline(state: BotState, g: ParlantGuideline): Promise<void> {
    const desired = {
      condition: clip(g.condition, 1000),
      action: clip(g.action!, 2000),
      description: clip(g.description, 2000),
      criticality: ((criticalities as readonly string[]).includes(g.criticality) ? g.criticality : 'medium') as Guideline['criticality'],
      enabled: g.enabled,
    };
    if (g.condition.length > 1000 || g.action!.length > 2000 || g.description.length > 2000) note('long guidelines', 'text longer than Otto allows was cut', g.id);
    await reconcile(state, 'guidelines', g.id, desired, {
      update: (id, patch) => bots.updateGuideline({ caller, bot_id: state.bot.id, id, patch }),
      add: (input) => bots.addGuideline({ caller, bot_id: state.bot.id, input }),
    });
  }

  // Tools and tool mappings
  const toolsSeen = new Set<string>();
  report.tools.read = new Set(model.associations.flatMap((a) => (a.tool ? [`${a.tool.service}:${a.tool.tool}`] : []))).size;
  for (const assoc of model.associations) {
    report.tool_mappings.read++;
    const g = model.guidelines.get(assoc.guideline_id);
    if (!assoc.tool) {
      note('tool associations', 'the tool id is not service:tool', assoc.id);
      continue;
    }
    if (!g) {
      note('tool associations', 'its guideline does not exist', assoc.id);
      continue;
    }
    const key = `${assoc.tool.service}:${assoc.tool.tool}`;
    let placed = false;
    for (const state of states.values()) {
      const guidelineId = state.ledger.guidelines[g.id];
      if (!guidelineId || !state.guidelines.has(guidelineId)) continue;
      placed = true;
      const tool = await ensureTool(state, assoc.tool);
      if (!tool) continue;
      await ensureMapping(state, guidelineId, tool.name, `${g.id}|${key}`);
    }
    if (!placed) note('tool associations', 'its guideline was not imported', assoc.id);
  }

  /** The endpoint a Parlant tool is called at, or a reason there is none. */
  function endpointOf(ref: ParlantToolRef): string | { reason: string } {
    const service = model.services.get(ref.service);
    const base = options.toolBaseUrl?.replace(/\/+$/, '');
    if (service?.kind === 'sdk' && service.url && /^https?:\/\//.test(service.url)) return `${service.url.replace(/\/+$/, '')}/tools/${encodeURIComponent(ref.tool)}/calls`;
    if (base) return `${base}/${encodeURIComponent(ref.service)}/${encodeURIComponent(ref.tool)}`;
    if (!service) return { reason: `its service ${ref.service} is not in the Parlant store (pass a tool base URL to import it)` };
    return { reason: `its service ${ref.service} is ${service.kind}, which has no per-tool URL (pass a tool base URL to import it)` };
  }

  async function ensureTool(state: BotState, ref: ParlantToolRef): Promise<Tool | null> {
    const key = `${ref.service}:${ref.tool}`;
    const known = state.tools.get(state.ledger.tools[key] ?? '');
    if (known) {
      if (!toolsSeen.has(`${state.bot.id}|${key}`)) report.tools.unchanged++;
      toolsSeen.add(`${state.bot.id}|${key}`);
      return known;
    }
    const endpoint = endpointOf(ref);
    if (typeof endpoint !== 'string') {
      note('tools', endpoint.reason, key);
      return null;
    }
    const taken = new Set([...state.tools.values()].map((t) => t.name));
    for (const name of [toolName(ref.tool), toolName(`${ref.service}_${ref.tool}`), toolName(`${ref.service}_${ref.tool}_parlant`)]) {
      if (taken.has(name)) continue;
      try {
        const tool = await bots.addTool({ caller, bot_id: state.bot.id, input: { name, description: `Parlant tool ${ref.tool} of service ${ref.service}`, endpoint: { url: endpoint, method: 'POST' } } });
        state.tools.set(tool.id, tool);
        state.ledger.tools[key] = tool.id;
        await saveLedger(state);
        toolsSeen.add(`${state.bot.id}|${key}`);
        report.tools.created++;
        return tool;
      } catch (error) {
        if (error instanceof OttoError && error.code === 'DUPLICATE') continue;
        invalid('tools', key, error);
        return null;
      }
    }
    note('tools', 'every name for it is taken on the bot', key);
    return null;
  }

  async function ensureMapping(state: BotState, guidelineId: string, name: string, key: string): Promise<void> {
    const existing = state.mappings.find((m) => m.guideline_id === guidelineId && m.tool_name === name);
    if (existing) {
      report.tool_mappings.unchanged++;
      if (state.ledger.tool_mappings[key] !== existing.id) {
        state.ledger.tool_mappings[key] = existing.id;
        await saveLedger(state);
      }
      return;
    }
    try {
      const mapping = await bots.mapTool({ caller, bot_id: state.bot.id, input: { guideline_id: guidelineId, tool_name: name } });
      state.mappings.push(mapping);
      state.ledger.tool_mappings[key] = mapping.id;
      await saveLedger(state);
      report.tool_mappings.created++;
    } catch (error) {
      invalid('tool associations', key, error);
    }
  }

  // Journeys
  for (const j of model.journeys) {
    report.journeys.read++;
    const targets = agentsFor(j.tags, null);
    if (typeof targets === 'string') {
      note('journeys', targets, j.id);
      continue;
    }
    const desired = journeyInput(j);
    for (const agentId of targets) await ensureJourney(states.get(agentId)!, j, desired);
  }

  function journeyInput(j: ParlantJourney): { title: string; description: string; conditions: string[]; steps: JourneyStep[] } {
    let conditions = j.conditions.map((id) => model.guidelines.get(id)?.condition ?? '').filter((c) => c.trim() !== '').map((c) => clip(c, 500));
    if (conditions.length === 0) {
      note('journey conditions', 'the journey has no condition Otto can read; its title starts it', j.id);
      conditions = [clip(j.title, 500)];
    }
    if (conditions.length > 20) {
      note('journey conditions', 'more than 20 conditions; the first 20 were kept', j.id);
      conditions = conditions.slice(0, 20);
    }
    const steps = journeySteps(j);
    return { title: clip(j.title, 200), description: clip(j.description, 2000), conditions, steps };
  }

  /** The journey's states in the order its transitions reach them (breadth first from the root). */
  function journeySteps(j: ParlantJourney): JourneyStep[] {
    if (j.nodes.length === 0) return [];
    const nodes = new Map(j.nodes.map((n) => [n.id, n]));
    const out = new Map<string, string[]>();
    for (const e of j.edges) out.set(e.source, [...(out.get(e.source) ?? []), e.target]);
    const conditioned = j.edges.filter((e) => e.condition && e.condition.trim() !== '').length;
    if (conditioned > 0) note('journey transition conditions', 'Otto steps move on when the reply has one of their words; the conditions were dropped', j.id, conditioned);
    if ([...out.values()].some((targets) => targets.length > 1)) note('journey branches', 'Otto journeys are a sequence; branches were laid out one after another', j.id);
    const withTools = j.nodes.filter((n) => n.tools > 0).length;
    if (withTools > 0) note('journey step tools', 'Otto calls tools from guidelines, not journey steps', j.id, withTools);
    const start = j.root_id && nodes.has(j.root_id) ? j.root_id : j.nodes[0]!.id;
    const seen = new Set<string>([start]);
    const queue = [start];
    const steps: JourneyStep[] = [];
    while (queue.length > 0) {
      const id = queue.shift()!;
      const node = nodes.get(id);
      const action = node?.action?.trim();
      if (action && !action.startsWith('<<JOURNEY ROOT')) steps.push({ instruction: clip(action, 1000) });
      for (const next of out.get(id) ?? []) {
        if (!seen.has(next)) {
          seen.add(next);
          queue.push(next);
        }
      }
    }
    const unreachable = j.nodes.filter((n) => !seen.has(n.id) && n.action).length;
    if (unreachable > 0) note('journey states', 'not reachable from the journey root', j.id, unreachable);
    if (steps.length > 50) {
      note('journey states', 'more than 50 steps; the first 50 were kept', j.id, steps.length - 50);
      return steps.slice(0, 50);
    }
    return steps;
  }

  async function ensureJourney(state: BotState, j: ParlantJourney, desired: ReturnType<typeof journeyInput>): Promise<void> {
    if (j.composition_mode) note('journey composition modes', 'Otto sets the composition mode per bot', j.id);
    await reconcile(state, 'journeys', j.id, desired, {
      update: (id, patch) => bots.updateJourney({ caller, bot_id: state.bot.id, id, patch }),
      add: (input) => bots.addJourney({ caller, bot_id: state.bot.id, input }),
    });
  }

  report.not_mapped = [...notes.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.reason.localeCompare(b.reason));
  return report;
}

