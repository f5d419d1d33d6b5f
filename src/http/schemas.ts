/**
 * Response and parameter schemas for the OpenAPI document. Input schemas come from
 * `src/domain/schemas.ts`, the same ones the services validate with.
 */
import { idPattern } from '../domain/schemas.ts';
import { errorBodySchema } from './errors.ts';

const meta = {
  id: { type: 'string' },
  version: { type: 'integer' },
  created_at: { type: 'string', format: 'date-time' },
  updated_at: { type: 'string', format: 'date-time' },
  owner_id: { type: 'string' },
} as const;

const entity = (name: string, properties: Record<string, unknown>) =>
  ({ $id: name, type: 'object', additionalProperties: true, properties: { ...meta, ...properties } }) as const;

/** Entity schemas registered with Fastify (referenced as `Name#`). */
export const entitySchemas = [
  entity('Bot', {
    name: { type: 'string' },
    description: { type: 'string' },
    composition_mode: { type: 'string' },
    max_engine_iterations: { type: 'integer' },
    metadata: { type: 'object', additionalProperties: true },
    built_in: { type: 'boolean', description: 'True for Otto, the built-in bot-builder (never stored).' },
    retention_days: { type: ['integer', 'null'], description: 'Messages older than this many days are deleted (null: kept forever).' },
  }),
  entity('Guideline', { bot_id: { type: 'string' }, condition: { type: 'string' }, action: { type: 'string' }, description: { type: 'string' }, criticality: { type: 'string' }, enabled: { type: 'boolean' } }),
  entity('Journey', { bot_id: { type: 'string' }, title: { type: 'string' }, description: { type: 'string' }, conditions: { type: 'array', items: { type: 'string' } }, steps: { type: 'array', items: { type: 'object', additionalProperties: true } } }),
  entity('Tool', { bot_id: { type: 'string' }, name: { type: 'string' }, description: { type: 'string' }, input_schema: { type: 'object', additionalProperties: true }, endpoint: { type: 'object', additionalProperties: true } }),
  entity('ToolMapping', { bot_id: { type: 'string' }, guideline_id: { type: 'string' }, tool_name: { type: 'string' } }),
  entity('Conversation', { bot_id: { type: 'string' }, user_id: { type: ['string', 'null'] }, title: { type: 'string' }, context: { type: 'object', additionalProperties: true }, last_offset: { type: 'integer' }, journey_state: { type: 'object', additionalProperties: true } }),
  entity('Message', {
    conversation_id: { type: 'string' },
    offset: { type: 'integer' },
    role: { type: 'string', enum: ['user', 'assistant', 'system'] },
    content: { type: 'string' },
    agent_steps: { type: 'array', items: { type: 'object', additionalProperties: true } },
    pdf_names: { type: 'array', items: { type: 'string' } },
    source_citations: { type: 'array', items: { type: 'object', additionalProperties: true } },
    meta_data: { type: 'object', additionalProperties: true },
  }),
  { $id: 'Error', ...errorBodySchema },
];

export const ref = (name: string) => ({ $ref: `${name}#` });

/** A list of entities with the cursor of the next page. */
export const pageOf = (name: string) => ({
  type: 'object',
  required: ['items', 'next'],
  properties: { items: { type: 'array', items: ref(name) }, next: { type: ['string', 'null'], description: 'Pass as `after` for the next page; null on the last page.' } },
});

export const idParam = { type: 'string', pattern: idPattern } as const;

export const pagingQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 1000 },
  after: { type: 'string', maxLength: 4096, description: 'The `next` cursor of the previous page.' },
} as const;

/** Standard error responses for a route. */
export const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, ref('Error')]));
