/**
 * Parlant's documents, read across its schema versions into one shape.
 *
 * - agents (`agents`): `{id, name, description, max_engine_iterations, composition_mode, creation_utc}`;
 *   their tags in `agent_tags` (`{agent_id, tag_id}`; `agent_groups` with `group_id` in the newest).
 * - guidelines (`guidelines`): `{id, condition, action, description, criticality, enabled, metadata}`;
 *   the oldest (0.1/0.2) carry the agent as `guideline_set`; newer ones are tagged in
 *   `guideline_tag_associations` (`{guideline_id, tag_id}`) with `agent:<agent id>` (or a custom
 *   tag that agents carry, or `journey:<id>`), and untagged ones apply to every agent.
 * - tool associations (`associations`, or `guideline_tool_associations`): `{guideline_id, tool_id}`,
 *   the tool as `"service:tool"`, `{service_name, tool_name}` or `[service, tool]`.
 * - journeys (`journeys`): `{id, title, description, root_id}`, with `journey_conditions`
 *   (`{journey_id, condition: <guideline id>}`), `journey_tags`, `journey_nodes`
 *   (`{node_id, journey_id, action, tools}`) and `journey_edges` (`{journey_id, source, target, condition}`).
 * - tool services (`tool_services`): `{name, kind: sdk|openapi|mcp, url}`.
 * Collection names may carry a prefix (`<prefix>_agents`, …), as the newest Parlant allows.
 */
import type { ParlantData, RawDoc } from './source.ts';

export interface ParlantAgent {
  id: string;
  name: string;
  description: string;
  max_engine_iterations: number | null;
  composition_mode: string | null;
  tags: string[];
}

export interface ParlantGuideline {
  id: string;
  condition: string;
  action: string | null;
  description: string;
  criticality: string;
  enabled: boolean;
  tags: string[];
  /** The agent of an old (0.1/0.2) guideline: its `guideline_set`. */
  guideline_set: string | null;
  has_metadata: boolean;
  composition_mode: string | null;
}

export interface ParlantToolRef {
  service: string;
  tool: string;
}

export interface ParlantAssociation {
  id: string;
  guideline_id: string;
  tool: ParlantToolRef | null;
}

export interface ParlantJourneyNode {
  id: string;
  action: string | null;
  tools: number;
}

export interface ParlantJourneyEdge {
  source: string;
  target: string;
  condition: string | null;
}

export interface ParlantJourney {
  id: string;
  title: string;
  description: string;
  root_id: string | null;
  /** Guideline ids whose conditions start the journey. */
  conditions: string[];
  tags: string[];
  nodes: ParlantJourneyNode[];
  edges: ParlantJourneyEdge[];
  composition_mode: string | null;
}

export interface ParlantService {
  name: string;
  kind: string;
  url: string | null;
}

/** Parlant's data, normalized. `consumed` names the collections read into it. */
export interface ParlantModel {
  agents: ParlantAgent[];
  guidelines: Map<string, ParlantGuideline>;
  associations: ParlantAssociation[];
  journeys: ParlantJourney[];
  services: Map<string, ParlantService>;
  /** Tag ids that are tag documents (`tags`), with their names. */
  tags: Map<string, string>;
  consumed: Set<string>;
  /** The prefix of the collection names (`''` when none). */
  prefix: string;
}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const order = (a: RawDoc, b: RawDoc): number => String(a.creation_utc ?? '').localeCompare(String(b.creation_utc ?? '')) || String(a.id ?? '').localeCompare(String(b.id ?? ''));

/** Reads a tool id in any of the shapes Parlant stored it in; null when it is none of them. */
export function parseToolId(value: unknown): ParlantToolRef | null {
  if (typeof value === 'string') {
    const colon = value.indexOf(':');
    return colon > 0 && colon < value.length - 1 ? { service: value.slice(0, colon), tool: value.slice(colon + 1) } : null;
  }
  if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string') return { service: value[0], tool: value[1] };
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    const service = str(v.service_name);
    const tool = str(v.tool_name);
    if (service && tool) return { service, tool };
  }
  return null;
}

/** Builds the normalized model from the raw collections. Never throws on odd documents: it skips what has no id. */
export function parlantModel(data: ParlantData): ParlantModel {
  const consumed = new Set<string>();
  // The newest Parlant may prefix its collection names (`<prefix>_agents`, …).
  const prefixed = data.collections.has('agents') ? undefined : [...data.collections.keys()].find((n) => n.endsWith('_agents'));
  const prefix = prefixed ? prefixed.slice(0, -'agents'.length) : '';
  const take = (...names: string[]): RawDoc[] => {
    const out: RawDoc[] = [];
    for (const bare of names) {
      const name = prefix && data.collections.has(`${prefix}${bare}`) ? `${prefix}${bare}` : bare;
      const docs = data.collections.get(name);
      if (!docs) continue;
      consumed.add(name);
      out.push(...docs);
    }
    return out.filter((d) => typeof d.id === 'string' || typeof d.node_id === 'string').sort(order);
  };
  const tagsOf = (docs: RawDoc[], key: string, tagKey = 'tag_id'): Map<string, string[]> => {
    const map = new Map<string, string[]>();
    for (const d of docs) {
      const owner = str(d[key]);
      const tag = str(d[tagKey]) ?? str(d.group_id);
      if (!owner || !tag) continue;
      map.set(owner, [...(map.get(owner) ?? []), tag]);
    }
    return map;
  };

  const agentTags = tagsOf(take('agent_tags', 'agent_groups'), 'agent_id');
  const agents: ParlantAgent[] = take('agents').map((d) => ({
    id: String(d.id),
    name: str(d.name) ?? String(d.id),
    description: str(d.description) ?? '',
    max_engine_iterations: typeof d.max_engine_iterations === 'number' ? d.max_engine_iterations : null,
    composition_mode: str(d.composition_mode),
    tags: agentTags.get(String(d.id)) ?? [],
  }));

  const guidelineTags = tagsOf(take('guideline_tag_associations', 'guideline_tags'), 'guideline_id');
  const guidelines = new Map<string, ParlantGuideline>();
  for (const d of take('guidelines')) {
    const id = String(d.id);
    const action = str(d.action);
    guidelines.set(id, {
      id,
      condition: str(d.condition) ?? '',
      action: action && action.trim() !== '' ? action : null,
      description: str(d.description) ?? '',
      criticality: str(d.criticality) ?? 'medium',
      enabled: d.enabled !== false,
      tags: guidelineTags.get(id) ?? [],
      guideline_set: str(d.guideline_set),
      has_metadata: !!d.metadata && typeof d.metadata === 'object' && Object.keys(d.metadata).length > 0,
      composition_mode: str(d.composition_mode),
    });
  }

  const associations: ParlantAssociation[] = take('associations', 'guideline_tool_associations').map((d) => ({
    id: String(d.id),
    guideline_id: String(d.guideline_id ?? ''),
    tool: parseToolId(d.tool_id),
  }));

  const journeyTags = tagsOf(take('journey_tags'), 'journey_id');
  const conditionDocs = take('journey_conditions');
  const nodeDocs = take('journey_nodes');
  const edgeDocs = take('journey_edges');
  const journeys: ParlantJourney[] = take('journeys').map((d) => {
    const id = String(d.id);
    const inline = Array.isArray(d.conditions) ? (d.conditions as unknown[]).filter((c): c is string => typeof c === 'string') : [];
    return {
      id,
      title: str(d.title) ?? id,
      description: str(d.description) ?? '',
      root_id: str(d.root_id),
      conditions: [...inline, ...conditionDocs.filter((c) => c.journey_id === id).map((c) => String(c.condition))],
      tags: journeyTags.get(id) ?? [],
      nodes: nodeDocs
        .filter((n) => n.journey_id === id)
        .map((n) => ({ id: String(n.node_id ?? n.id), action: str(n.action), tools: Array.isArray(n.tools) ? n.tools.length : 0 })),
      edges: edgeDocs.filter((e) => e.journey_id === id).map((e) => ({ source: String(e.source), target: String(e.target), condition: str(e.condition) })),
      composition_mode: str(d.composition_mode),
    };
  });

  const services = new Map<string, ParlantService>();
  for (const d of take('tool_services', 'services')) {
    const name = str(d.name);
    if (name) services.set(name, { name, kind: str(d.kind) ?? 'unknown', url: str(d.url) });
  }
  const tags = new Map<string, string>();
  for (const d of take('tags')) tags.set(String(d.id), str(d.name) ?? String(d.id));

  return { agents, guidelines, associations, journeys, services, tags, consumed, prefix };
}
