/** Builders of engine inputs for tests (plain objects shaped like stored entities). */
import type { Bot, BotDefinition, Conversation, Guideline, Journey, Message, Tool, ToolMapping } from '../../src/domain/entities.ts';

const at = '2025-01-01T00:00:00.000Z';
const meta = (id: string) => ({ id, version: 1, created_at: at, updated_at: at, owner_id: 'owner_1' });

export function bot(over: Partial<Bot> = {}): Bot {
  const name = over.name ?? 'ShopBot';
  return { ...meta('bot_1'), name, name_key: name.toLowerCase(), description: 'Answers questions about orders at Example Shop.', composition_mode: 'fluid', max_engine_iterations: 2, metadata: {}, ...over };
}

export function guideline(id: string, condition: string, action: string, over: Partial<Guideline> = {}): Guideline {
  return { ...meta(id), bot_id: 'bot_1', condition, action, description: '', criticality: 'medium', enabled: true, ...over };
}

export function journey(id: string, title: string, conditions: string[], steps: Journey['steps']): Journey {
  return { ...meta(id), bot_id: 'bot_1', title, description: '', conditions, steps };
}

export function tool(name: string, url: string, over: Partial<Tool['endpoint']> = {}, rest: Partial<Tool> = {}): Tool {
  return { ...meta(`tool_${name}`), bot_id: 'bot_1', name, description: `Looks up ${name}`, input_schema: {}, endpoint: { url, method: 'GET', timeout_ms: 5000, ...over }, ...rest };
}

export function mapping(guidelineId: string, toolName: string): ToolMapping {
  return { ...meta(`map_${guidelineId}_${toolName}`), bot_id: 'bot_1', guideline_id: guidelineId, tool_name: toolName };
}

export function definition(parts: Partial<BotDefinition> = {}): BotDefinition {
  return { bot: bot(), guidelines: [], journeys: [], tools: [], mappings: [], ...parts };
}

export function conversation(journey_state: Record<string, number> = {}): Conversation {
  return { ...meta('conv_1'), bot_id: 'bot_1', user_id: null, title: '', context: {}, last_offset: 0, journey_state };
}

let offset = 0;
export function message(role: Message['role'], content: string, agent_steps: Message['agent_steps'] = []): Message {
  offset++;
  return { ...meta(`msg_${offset}`), conversation_id: 'conv_1', offset, role, content, agent_steps, pdf_names: [], source_citations: [], meta_data: {} };
}

/** The refund guideline the issue names. */
export const refundGuideline = guideline('gl_refund', 'the user asks about refunds', 'explain the 30-day refund policy');
