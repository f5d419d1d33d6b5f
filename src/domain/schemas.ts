/**
 * JSON Schemas of what callers send. One source: the HTTP routes validate and document
 * (OpenAPI) with them, and the services validate with them too, so the bot-builder and the
 * CLI get the same rules and messages as the API.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { compositionModes, criticalities } from './entities.ts';
import { allPermissions, roles } from './permissions.ts';
import { OttoError } from './errors.ts';

const text = (max: number, min = 0) => ({ type: 'string', minLength: min, maxLength: max }) as const;
const freeObject = { type: 'object', additionalProperties: true, maxProperties: 100 } as const;
export const idPattern = '^[A-Za-z0-9_-]{1,128}$';
const id = { type: 'string', pattern: idPattern } as const;
const version = { type: 'integer', minimum: 1, description: 'The version you read; the write fails with 409 CONFLICT when the stored one is newer.' } as const;

const botFields = {
  name: { ...text(100, 1), pattern: '\\S' },
  description: text(2000),
  composition_mode: { type: 'string', enum: [...compositionModes] },
  max_engine_iterations: { type: 'integer', minimum: 1, maximum: 10 },
  metadata: freeObject,
  retention_days: { type: ['integer', 'null'], minimum: 1, maximum: 36500, description: 'Delete messages older than this many days (null: keep forever).' },
} as const;

const guidelineFields = {
  condition: { ...text(1000, 1), pattern: '\\S' },
  action: { ...text(2000, 1), pattern: '\\S' },
  description: text(2000),
  criticality: { type: 'string', enum: [...criticalities] },
  enabled: { type: 'boolean' },
} as const;

const journeyStep = {
  type: 'object',
  additionalProperties: false,
  required: ['instruction'],
  properties: { instruction: text(1000, 1), advance_when: { type: 'array', maxItems: 20, items: text(200, 1) } },
} as const;

const journeyFields = {
  title: { ...text(200, 1), pattern: '\\S' },
  description: text(2000),
  conditions: { type: 'array', minItems: 1, maxItems: 20, items: text(500, 1) },
  steps: { type: 'array', maxItems: 50, items: journeyStep },
} as const;

const toolFields = {
  name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_-]{0,63}$' },
  description: text(2000),
  input_schema: freeObject,
  endpoint: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', maxLength: 2000, pattern: '^https?://[^\\s]+$' },
      method: { type: 'string', enum: ['GET', 'POST'] },
      timeout_ms: { type: 'integer', minimum: 100, maximum: 60000 },
      headers: { type: 'object', maxProperties: 20, additionalProperties: text(2000) },
    },
  },
} as const;

const username = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'Letters, digits, `_`, `.`, `-`; stored lowercase; unique.' } as const;
const userFields = {
  email: { anyOf: [{ type: 'string', maxLength: 320, pattern: '^[^\\s@]+@[^\\s@]+$' }, { type: 'null' }] },
  display_name: text(200),
  role: { type: 'string', enum: [...roles] },
  disabled: { type: 'boolean' },
} as const;
const keyFields = {
  name: text(200),
  expires_at: { anyOf: [{ type: 'string', maxLength: 64, pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})$' }, { type: 'null' }], description: 'When the key stops working (null: never).' },
  expires_in_days: { type: 'integer', minimum: 1, maximum: 36500, description: 'Alternative to expires_at: days from now.' },
} as const;

/** Every input schema, by name. */
export const inputSchemas = {
  UserCreate: { type: 'object', additionalProperties: false, required: ['username'], properties: { username, ...userFields } },
  UserPatch: { type: 'object', additionalProperties: false, minProperties: 1, properties: { ...userFields, version } },
  KeyCreate: { type: 'object', additionalProperties: false, properties: keyFields },
  RolePermissionsPut: {
    type: 'object',
    additionalProperties: false,
    required: ['permissions'],
    properties: { permissions: { type: 'array', maxItems: 100, uniqueItems: true, items: { type: 'string', enum: [...allPermissions] } } },
  },
  BotCreate: { type: 'object', additionalProperties: false, required: ['name'], properties: botFields },
  BotPatch: { type: 'object', additionalProperties: false, minProperties: 1, properties: { ...botFields, version } },
  GuidelineCreate: { type: 'object', additionalProperties: false, required: ['condition', 'action'], properties: guidelineFields },
  GuidelinePatch: { type: 'object', additionalProperties: false, minProperties: 1, properties: { ...guidelineFields, version } },
  JourneyCreate: { type: 'object', additionalProperties: false, required: ['title', 'conditions'], properties: journeyFields },
  JourneyPatch: { type: 'object', additionalProperties: false, minProperties: 1, properties: { ...journeyFields, version } },
  ToolCreate: { type: 'object', additionalProperties: false, required: ['name', 'endpoint'], properties: toolFields },
  ToolMappingCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['guideline_id', 'tool_name'],
    properties: { guideline_id: id, tool_name: toolFields.name },
  },
  ConversationCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['bot_id'],
    properties: { bot_id: id, user_id: { type: ['string', 'null'], maxLength: 200 }, title: text(200), context: freeObject },
  },
  MessageCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['content'],
    properties: {
      content: { ...text(20000, 1), pattern: '\\S' },
      pdf_names: { type: 'array', maxItems: 50, items: text(500, 1) },
      meta_data: freeObject,
    },
  },
  ChatRequest: {
    type: 'object',
    additionalProperties: false,
    required: ['message'],
    properties: {
      bot_id: id,
      conversation_id: id,
      message: { ...text(20000, 1), pattern: '\\S' },
      user_id: { type: ['string', 'null'], maxLength: 200 },
    },
  },
} as const;

export type InputSchemaName = keyof typeof inputSchemas;

const ajv = new Ajv({ allErrors: false, strict: true, coerceTypes: false, useDefaults: false });
const compiled = new Map<InputSchemaName, ValidateFunction>();

/** Names the field an Ajv error is about, as a dotted path. */
export function fieldOf(error: ErrorObject | undefined): string | undefined {
  if (!error) return undefined;
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  const path = error.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const leaf = params.missingProperty ?? params.additionalProperty;
  if (leaf) return path ? `${path}.${leaf}` : leaf;
  return path || undefined;
}

/** A sentence for an Ajv error, naming the field. */
export function describeError(error: ErrorObject | undefined): string {
  if (!error) return 'invalid input';
  const field = fieldOf(error);
  const params = error.params as { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] };
  if (error.keyword === 'required') return `${field} is required`;
  if (error.keyword === 'additionalProperties') return `${field} is not a known field`;
  if (error.keyword === 'enum') return `${field} must be one of ${params.allowedValues?.join(', ')}`;
  if (error.keyword === 'pattern' && error.schemaPath.endsWith('pattern') && /\\S/.test(String((error.params as { pattern?: string }).pattern))) return `${field} must not be blank`;
  if (error.keyword === 'minProperties' && !field) return 'send at least one field to change';
  return `${field ?? 'body'} ${error.message ?? 'is invalid'}`;
}

/**
 * Validates input against a named schema and returns it typed.
 * Throws OttoError INVALID naming the first offending field.
 */
export function validateInput<T>(name: InputSchemaName, value: unknown): T {
  let validate = compiled.get(name);
  if (!validate) {
    validate = ajv.compile(inputSchemas[name]);
    compiled.set(name, validate);
  }
  if (!validate(value)) {
    const error = validate.errors?.[0];
    throw new OttoError('INVALID', describeError(error), { field: fieldOf(error) });
  }
  return value as T;
}
