import type { FastifyInstance } from 'fastify';
import { OttoError } from '../../domain/errors.ts';
import { BUILDER_BOT_ID, canAccess, requirePermission, type Caller, type Services } from '../../services/index.ts';
import { errors, idParam } from '../schemas.ts';

const day = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'A UTC day, YYYY-MM-DD' } as const;
const usd = { type: 'number', minimum: 0 } as const;
const ownerId = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f]+$' } as const;

const totals = {
  type: 'object',
  required: ['calls', 'tokens_in', 'tokens_out', 'cost_usd'],
  properties: { calls: { type: 'integer' }, tokens_in: { type: 'integer' }, tokens_out: { type: 'integer' }, cost_usd: { type: 'number' } },
} as const;

const usageReport = {
  type: 'object',
  required: ['from', 'to', 'group_by', 'rows', 'totals'],
  properties: {
    from: { type: 'string' },
    to: { type: 'string' },
    group_by: { type: 'string', enum: ['day', 'bot', 'model', 'user'] },
    rows: {
      type: 'array',
      items: { type: 'object', required: ['key', ...totals.required], properties: { key: { type: 'string', description: 'The day, bot id, model or user (owner) id' }, ...totals.properties } },
    },
    totals,
  },
} as const;

const pricing = {
  type: 'object',
  properties: {
    model: { type: 'string' },
    input_usd_per_1m: { type: 'number' },
    output_usd_per_1m: { type: 'number' },
    source: { type: 'string', enum: ['seed', 'admin'] },
    as_of: { type: 'string' },
    updated_at: { type: 'string' },
  },
} as const;

const budget = {
  type: 'object',
  properties: {
    scope: { type: 'string', enum: ['user', 'bot'] },
    subject_id: { type: 'string' },
    owner_id: { type: 'string' },
    monthly_usd: { type: 'number' },
    spent_usd: { type: 'number', description: 'Spent this UTC month' },
    resets_at: { type: 'string', description: 'First instant of the next UTC month' },
    exceeded: { type: 'boolean' },
    updated_at: { type: 'string' },
  },
} as const;

const budgetBody = { type: 'object', additionalProperties: false, required: ['monthly_usd'], properties: { monthly_usd: { ...usd, maximum: 1e9, description: 'USD per UTC calendar month' } } } as const;

/** `GET /usage`, model pricing and monthly budgets. */
export function registerUsageRoutes(app: FastifyInstance, services: Services): void {
  const { usage, bots } = services;
  const tags = ['usage'];

  app.get<{ Querystring: { from: string; to: string; group_by: string; bot_id?: string; user_id?: string } }>('/usage', {
    schema: {
      tags,
      summary: 'Usage and cost over a date range (UTC days, both included), grouped by day, bot, model or user; non-admins see their own',
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['from', 'to', 'group_by'],
        properties: { from: day, to: day, group_by: { type: 'string', enum: ['day', 'bot', 'model', 'user'] }, bot_id: idParam, user_id: ownerId },
      },
      response: { 200: usageReport, ...errors(400, 401, 403) },
    },
    handler: async (request) => {
      requirePermission(request.caller, 'usage:read');
      return usage.report({ caller: request.caller, ...request.query });
    },
  });

  app.get('/model-pricing', {
    schema: { tags, summary: 'Price of each model in USD per 1M input and output tokens (seeded, editable by admins)', response: { 200: { type: 'array', items: pricing }, ...errors(401, 403) } },
    handler: async (request) => {
      requirePermission(request.caller, 'usage:read');
      return usage.listPricing();
    },
  });

  app.put<{ Params: { model: string }; Body: { input_usd_per_1m: number; output_usd_per_1m: number } }>('/model-pricing/:model', {
    schema: {
      tags,
      summary: "Set a model's price (admin); calls recorded before keep their cost",
      params: { type: 'object', required: ['model'], properties: { model: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f]+$' } } },
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['input_usd_per_1m', 'output_usd_per_1m'],
        properties: { input_usd_per_1m: { ...usd, maximum: 1e6 }, output_usd_per_1m: { ...usd, maximum: 1e6 } },
      },
      response: { 200: pricing, ...errors(400, 401, 403) },
    },
    handler: async (request) => usage.setPricing({ caller: request.caller, model: request.params.model, input: request.body }),
  });

  app.get('/budgets', {
    schema: { tags, summary: 'Monthly budgets you can see (yours and your bots\'; admins: all), with this month\'s spending', response: { 200: { type: 'array', items: budget }, ...errors(401, 403) } },
    handler: async (request) => {
      requirePermission(request.caller, 'usage:read');
      return usage.listBudgets({ caller: request.caller });
    },
  });

  const userParams = { type: 'object', required: ['user_id'], properties: { user_id: ownerId } } as const;
  const botParams = { type: 'object', required: ['bot_id'], properties: { bot_id: idParam } } as const;

  /** The owner of a bot the caller may reach; NOT_FOUND otherwise (another owner's bot looks like none). */
  const botOwner = async (caller: Caller, botId: string): Promise<string> => {
    if (botId === BUILDER_BOT_ID) {
      if (!caller.admin) throw new OttoError('NOT_FOUND', `bot ${botId} not found`, { field: 'bot_id' });
      return caller.owner_id;
    }
    const bot = await bots.get({ caller, id: botId });
    return bot.owner_id;
  };

  app.get<{ Params: { user_id: string } }>('/budgets/users/:user_id', {
    schema: { tags, summary: "A user's monthly budget with this month's spending (yours, or anyone's for admins)", params: userParams, response: { 200: budget, ...errors(400, 401, 403, 404) } },
    handler: async (request) => {
      requirePermission(request.caller, 'usage:read');
      const found = canAccess(request.caller, request.params.user_id) ? await usage.getBudget({ scope: 'user', subject_id: request.params.user_id }) : null;
      if (!found) throw new OttoError('NOT_FOUND', `no budget for user ${request.params.user_id}`, { field: 'user_id' });
      return found;
    },
  });

  app.put<{ Params: { user_id: string }; Body: { monthly_usd: number } }>('/budgets/users/:user_id', {
    schema: { tags, summary: "Set a user's monthly budget in USD (admin)", params: userParams, body: budgetBody, response: { 200: budget, ...errors(400, 401, 403) } },
    handler: async (request) => usage.setBudget({ caller: request.caller, scope: 'user', subject_id: request.params.user_id, owner_id: request.params.user_id, monthly_usd: request.body.monthly_usd }),
  });

  app.delete<{ Params: { user_id: string } }>('/budgets/users/:user_id', {
    schema: { tags, summary: "Remove a user's monthly budget (admin)", params: userParams, response: { 204: { type: 'null' }, ...errors(400, 401, 403, 404) } },
    handler: async (request, reply) => {
      if (!request.caller.admin) throw new OttoError('FORBIDDEN', "only an admin can remove a user's budget");
      if (!(await usage.deleteBudget({ scope: 'user', subject_id: request.params.user_id }))) throw new OttoError('NOT_FOUND', `no budget for user ${request.params.user_id}`, { field: 'user_id' });
      return reply.status(204).send();
    },
  });

  app.get<{ Params: { bot_id: string } }>('/budgets/bots/:bot_id', {
    schema: { tags, summary: "A bot's monthly budget with this month's spending", params: botParams, response: { 200: budget, ...errors(400, 401, 403, 404) } },
    handler: async (request) => {
      requirePermission(request.caller, 'usage:read');
      await botOwner(request.caller, request.params.bot_id);
      const found = await usage.getBudget({ scope: 'bot', subject_id: request.params.bot_id });
      if (!found) throw new OttoError('NOT_FOUND', `no budget for bot ${request.params.bot_id}`, { field: 'bot_id' });
      return found;
    },
  });

  app.put<{ Params: { bot_id: string }; Body: { monthly_usd: number } }>('/budgets/bots/:bot_id', {
    schema: { tags, summary: "Set a bot's monthly budget in USD (its owner, or an admin)", params: botParams, body: budgetBody, response: { 200: budget, ...errors(400, 401, 403, 404) } },
    handler: async (request) => {
      requirePermission(request.caller, 'bots:write');
      const owner = await botOwner(request.caller, request.params.bot_id);
      return usage.setBudget({ caller: request.caller, scope: 'bot', subject_id: request.params.bot_id, owner_id: owner, monthly_usd: request.body.monthly_usd });
    },
  });

  app.delete<{ Params: { bot_id: string } }>('/budgets/bots/:bot_id', {
    schema: { tags, summary: "Remove a bot's monthly budget (its owner, or an admin)", params: botParams, response: { 204: { type: 'null' }, ...errors(400, 401, 403, 404) } },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'bots:write');
      await botOwner(request.caller, request.params.bot_id);
      if (!(await usage.deleteBudget({ scope: 'bot', subject_id: request.params.bot_id }))) throw new OttoError('NOT_FOUND', `no budget for bot ${request.params.bot_id}`, { field: 'bot_id' });
      return reply.status(204).send();
    },
  });
}
