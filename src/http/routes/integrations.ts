import type { FastifyInstance } from 'fastify';
import { OttoError } from '../../domain/errors.ts';
import { requirePermission } from '../../services/caller.ts';
import type { Integrations } from '../../services/integrations.ts';
import type { Store } from '../../storage/index.ts';
import { WEBHOOK_EVENTS, listDeliveries } from '../../webhooks/index.ts';
import { errors, idParam, pagingQuery } from '../schemas.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A public route: the auth hook lets it through without an API key because it
     * authenticates its caller itself (a platform's signature or secret token).
     */
    public?: boolean;
  }
}

/** The tag of the public inbound routes (the tenant-isolation walker allow-lists it). */
export const INBOUND_TAG = 'channels-inbound';
/** Largest inbound update accepted (platform updates are a few KB). */
export const INBOUND_BODY_LIMIT = 256 * 1024;

const meta = { id: { type: 'string' }, version: { type: 'integer' }, created_at: { type: 'string' }, updated_at: { type: 'string' } } as const;
const providerKey = {
  type: 'object',
  properties: { ...meta, owner_id: { type: 'string' }, provider: { type: 'string' }, name: { type: 'string' }, masked: { type: 'string', description: 'The key shown safely, e.g. `sk-…abcd`; the key itself is never returned.' }, scope: { type: 'string', enum: ['user', 'global'] } },
} as const;
const providerKeyInput = {
  type: 'object',
  additionalProperties: false,
  required: ['provider', 'value'],
  properties: { provider: { type: 'string', maxLength: 40, description: 'e.g. `openai`' }, name: { type: 'string', maxLength: 64 }, value: { type: 'string', minLength: 8, maxLength: 4096, description: 'The key; stored encrypted (AES-256-GCM), never returned.' } },
} as const;
const channel = {
  type: 'object',
  properties: {
    ...meta,
    owner_id: { type: 'string' },
    bot_id: { type: 'string' },
    platform: { type: 'string', enum: ['telegram', 'slack'] },
    name: { type: 'string' },
    enabled: { type: 'boolean' },
    bot_token_masked: { type: 'string' },
    signing_secret_masked: { type: 'string' },
    platform_bot: { type: 'object', additionalProperties: true },
    inbound_url: { type: 'string', description: 'Where the platform sends updates (Telegram: registered with setWebhook; Slack: paste it as the Events API Request URL).' },
  },
} as const;
const channelInput = {
  type: 'object',
  additionalProperties: false,
  required: ['bot_id', 'platform', 'bot_token'],
  properties: {
    bot_id: idParam,
    platform: { type: 'string', enum: ['telegram', 'slack'] },
    bot_token: { type: 'string', minLength: 10, maxLength: 512, description: 'Telegram: the token from @BotFather. Slack: the Bot User OAuth Token (xoxb-…). Stored encrypted.' },
    signing_secret: { type: 'string', minLength: 16, maxLength: 256, description: "Slack only: the app's Signing Secret. Stored encrypted." },
    name: { type: 'string', maxLength: 200 },
  },
} as const;
const webhook = {
  type: 'object',
  properties: {
    ...meta,
    owner_id: { type: 'string' },
    bot_id: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string', enum: [...WEBHOOK_EVENTS] } },
    description: { type: 'string' },
    enabled: { type: 'boolean' },
    secret_masked: { type: 'string' },
    secret: { type: 'string', description: 'The signing secret in full: only in the answer to the POST that created the webhook.' },
  },
} as const;
const webhookInput = {
  type: 'object',
  additionalProperties: false,
  required: ['bot_id', 'url'],
  properties: {
    bot_id: idParam,
    url: { type: 'string', maxLength: 2000 },
    events: { type: 'array', minItems: 1, maxItems: 3, items: { type: 'string', enum: [...WEBHOOK_EVENTS] } },
    description: { type: 'string', maxLength: 500 },
    enabled: { type: 'boolean' },
    secret: { type: 'string', minLength: 16, maxLength: 256, description: 'The signing secret; Otto makes one (`whsec_…`) when omitted.' },
  },
} as const;
const webhookPatch = {
  type: 'object',
  additionalProperties: false,
  properties: { url: webhookInput.properties.url, events: webhookInput.properties.events, description: webhookInput.properties.description, enabled: { type: 'boolean' }, version: { type: 'integer', minimum: 1 } },
} as const;
const delivery = {
  type: 'object',
  properties: {
    ...meta,
    webhook_id: { type: 'string' },
    owner_id: { type: 'string' },
    bot_id: { type: 'string' },
    event: { type: 'string' },
    event_id: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'sending', 'delivered', 'failed', 'cancelled'] },
    attempt_count: { type: 'integer' },
    next_attempt_at: { type: 'string' },
    last_error: { type: ['string', 'null'] },
    delivered_at: { type: ['string', 'null'] },
    attempts: { type: 'array', items: { type: 'object', additionalProperties: true } },
    payload: { type: 'object', additionalProperties: true },
  },
} as const;
const page = (item: object) => ({ type: 'object', required: ['items', 'next'], properties: { items: { type: 'array', items: item }, next: { type: ['string', 'null'] } } });
const params = { type: 'object', required: ['id'], properties: { id: idParam } } as const;
const listQuery = { type: 'object', additionalProperties: false, properties: { ...pagingQuery, bot_id: idParam } } as const;
const inboundResult = { type: 'object', additionalProperties: true, properties: { ok: { type: 'boolean' }, status: { type: 'string', enum: ['accepted', 'duplicate', 'ignored'] }, reason: { type: 'string' }, challenge: { type: 'string' } } } as const;

type Id = { Params: { id: string } };
type List = { Querystring: { limit?: number; after?: string; bot_id?: string } };

/** Provider keys, channels, outgoing webhooks and the public inbound routes of channels. */
export function registerIntegrationRoutes(app: FastifyInstance, integrations: Integrations, store: Store): void {
  const { providerKeys, channels, webhooks } = integrations;

  // --- provider keys ----------------------------------------------------------------------
  const keyTags = ['secrets'];
  app.get<List>('/provider-keys', {
    schema: { tags: keyTags, summary: 'Your provider API keys (masked)', querystring: { type: 'object', additionalProperties: false, properties: pagingQuery }, response: { 200: page(providerKey), ...errors(400, 401, 403) } },
    handler: async (request) => {
      requirePermission(request.caller, 'secrets:read');
      return providerKeys.listUser({ caller: request.caller, ...request.query });
    },
  });
  app.post('/provider-keys', {
    schema: { tags: keyTags, summary: "Store a provider API key of yours (encrypted); your bots' turns use it", body: providerKeyInput, response: { 201: providerKey, ...errors(400, 401, 403, 409) } },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'secrets:write');
      return reply.status(201).send(await providerKeys.createUser({ caller: request.caller, input: request.body as never }));
    },
  });
  app.delete<Id>('/provider-keys/:id', {
    schema: { tags: keyTags, summary: 'Delete one of your provider keys', params, response: { 204: { type: 'null' }, ...errors(400, 401, 403, 404) } },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'secrets:write');
      await providerKeys.deleteUser({ caller: request.caller, id: request.params.id });
      return reply.status(204).send();
    },
  });
  app.get<List>('/provider-keys/global', {
    schema: { tags: keyTags, summary: 'Global provider keys, used when a bot owner has none (admin; masked)', querystring: { type: 'object', additionalProperties: false, properties: pagingQuery }, response: { 200: page(providerKey), ...errors(400, 401, 403) } },
    handler: async (request) => providerKeys.listGlobal({ caller: request.caller, ...request.query }),
  });
  app.post('/provider-keys/global', {
    schema: { tags: keyTags, summary: 'Store a global provider key (admin; encrypted)', body: providerKeyInput, response: { 201: providerKey, ...errors(400, 401, 403, 409) } },
    handler: async (request, reply) => reply.status(201).send(await providerKeys.createGlobal({ caller: request.caller, input: request.body as never })),
  });
  app.delete<Id>('/provider-keys/global/:id', {
    schema: { tags: keyTags, summary: 'Delete a global provider key (admin)', params, response: { 204: { type: 'null' }, ...errors(400, 401, 403, 404) } },
    handler: async (request, reply) => {
      await providerKeys.deleteGlobal({ caller: request.caller, id: request.params.id });
      return reply.status(204).send();
    },
  });

  // --- channels ---------------------------------------------------------------------------
  const channelTags = ['channels'];
  app.post('/channels', {
    schema: { tags: channelTags, summary: 'Connect a bot to Telegram (registers the webhook) or Slack; tokens are stored encrypted', body: channelInput, response: { 201: channel, ...errors(400, 401, 403, 404, 409, 502) } },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'channels:write');
      return reply.status(201).send(await channels.connect({ caller: request.caller, input: request.body as never }));
    },
  });
  app.get<List>('/channels', {
    schema: { tags: channelTags, summary: 'Your connected channels (tokens masked)', querystring: listQuery, response: { 200: page(channel), ...errors(400, 401, 403) } },
    handler: async (request) => {
      requirePermission(request.caller, 'channels:read');
      return channels.list({ caller: request.caller, ...request.query });
    },
  });
  app.get<Id>('/channels/:id', {
    schema: { tags: channelTags, summary: 'One channel (tokens masked)', params, response: { 200: channel, ...errors(400, 401, 403, 404) } },
    handler: async (request) => {
      requirePermission(request.caller, 'channels:read');
      return channels.get({ caller: request.caller, id: request.params.id });
    },
  });
  app.delete<Id>('/channels/:id', {
    schema: { tags: channelTags, summary: "Disconnect a channel (removes Telegram's webhook)", params, response: { 200: { type: 'object', properties: { webhook_removed: { type: 'boolean' } } }, ...errors(400, 401, 403, 404) } },
    handler: async (request) => {
      requirePermission(request.caller, 'channels:write');
      return channels.disconnect({ caller: request.caller, id: request.params.id });
    },
  });

  // --- outgoing webhooks ------------------------------------------------------------------
  const webhookTags = ['webhooks'];
  app.post('/webhooks', {
    schema: { tags: webhookTags, summary: "Subscribe a URL to a bot's events; the answer holds the signing secret (shown once)", body: webhookInput, response: { 201: webhook, ...errors(400, 401, 403, 404, 409) } },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'channels:write');
      return reply.status(201).send(await webhooks.create({ caller: request.caller, input: request.body as never }));
    },
  });
  app.get<List>('/webhooks', {
    schema: { tags: webhookTags, summary: 'Your webhooks (secrets masked)', querystring: listQuery, response: { 200: page(webhook), ...errors(400, 401, 403) } },
    handler: async (request) => {
      requirePermission(request.caller, 'channels:read');
      return webhooks.list({ caller: request.caller, ...request.query });
    },
  });
  app.get<Id>('/webhooks/:id', {
    schema: { tags: webhookTags, summary: 'One webhook (secret masked)', params, response: { 200: webhook, ...errors(400, 401, 403, 404) } },
    handler: async (request) => {
      requirePermission(request.caller, 'channels:read');
      return webhooks.get({ caller: request.caller, id: request.params.id });
    },
  });
  app.patch<Id>('/webhooks/:id', {
    schema: { tags: webhookTags, summary: 'Change url, events, description or enabled (`version` → 409 when changed since)', params, body: webhookPatch, response: { 200: webhook, ...errors(400, 401, 403, 404, 409) } },
    handler: async (request) => {
      requirePermission(request.caller, 'channels:write');
      return webhooks.update({ caller: request.caller, id: request.params.id, patch: request.body as never });
    },
  });
  app.delete<Id>('/webhooks/:id', {
    schema: { tags: webhookTags, summary: 'Delete a webhook (its pending deliveries are cancelled)', params, response: { 204: { type: 'null' }, ...errors(400, 401, 403, 404) } },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'channels:write');
      await webhooks.delete({ caller: request.caller, id: request.params.id });
      return reply.status(204).send();
    },
  });
  app.get<Id & { Querystring: { limit?: number; after?: string } }>('/webhooks/:id/deliveries', {
    schema: {
      tags: webhookTags,
      summary: "A webhook's deliveries, newest first, with every attempt and its outcome",
      params,
      querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 200 }, after: pagingQuery.after } },
      response: { 200: page(delivery), ...errors(400, 401, 403, 404) },
    },
    handler: async (request) => {
      requirePermission(request.caller, 'channels:read');
      return listDeliveries({ store, caller: request.caller, webhookId: request.params.id, limit: request.query.limit, after: request.query.after });
    },
  });

  // --- inbound (public: authenticated by the platform's secret) ----------------------------
  void app.register(async (scope) => {
    // The raw bytes are kept: Slack signs them, and both parse them here.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: INBOUND_BODY_LIMIT }, (_request, body, done) => done(null, body));
    const inbound = { tags: [INBOUND_TAG], security: [] };
    scope.post<{ Params: { account_id: string } }>('/channels/telegram/:account_id', {
      config: { public: true },
      bodyLimit: INBOUND_BODY_LIMIT,
      schema: {
        ...inbound,
        summary: 'Telegram webhook (public): checks X-Telegram-Bot-Api-Secret-Token, answers text messages with sendMessage; redeliveries of an update_id are acknowledged once',
        params: { type: 'object', required: ['account_id'], properties: { account_id: idParam } },
        response: { 200: inboundResult, ...errors(400, 401, 404, 413, 415) },
      },
      handler: async (request) => {
        const header = request.headers['x-telegram-bot-api-secret-token'];
        return channels.telegramUpdate({ accountId: request.params.account_id, secretToken: typeof header === 'string' ? header : undefined, body: parseJson(request.body as Buffer) });
      },
    });
    scope.post<{ Params: { account_id: string } }>('/channels/slack/:account_id', {
      config: { public: true },
      bodyLimit: INBOUND_BODY_LIMIT,
      schema: {
        ...inbound,
        summary: 'Slack Events API (public): verifies X-Slack-Signature and the timestamp, answers url_verification, replies with chat.postMessage; retries of an event_id are acknowledged once',
        params: { type: 'object', required: ['account_id'], properties: { account_id: idParam } },
        response: { 200: inboundResult, ...errors(400, 401, 404, 413, 415) },
      },
      handler: async (request) => {
        const header = (name: string) => (typeof request.headers[name] === 'string' ? (request.headers[name] as string) : undefined);
        return channels.slackRequest({ accountId: request.params.account_id, timestamp: header('x-slack-request-timestamp'), signature: header('x-slack-signature'), rawBody: request.body as Buffer });
      },
    });
  });
}

/** Parses a raw JSON body; throws INVALID_JSON. */
function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new OttoError('INVALID_JSON', 'the body is not valid JSON');
  }
}
