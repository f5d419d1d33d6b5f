import type { FastifyInstance } from 'fastify';
import { OttoError } from '../../domain/errors.ts';
import { inputSchemas } from '../../domain/schemas.ts';
import type { Services } from '../../services/index.ts';
import { authenticate } from '../auth.ts';
import { need } from '../permissions.ts';
import { errors, idParam, pageOf, pagingQuery, ref } from '../schemas.ts';

type Params = { id: string };
const params = { type: 'object', required: ['id'], properties: { id: idParam } } as const;
const offset = { type: 'integer', minimum: 0 } as const;
/** How often an open event stream checks that its access key is still valid. */
const ACCESS_RECHECK_MS = 1_000;

const chatResult = {
  type: 'object',
  properties: { conversation_id: { type: 'string' }, conversation: ref('Conversation'), message: ref('Message'), reply: ref('Message') },
} as const;

const messagePage = {
  type: 'object',
  properties: {
    items: { type: 'array', items: ref('Message') },
    older_before: { type: ['integer', 'null'], description: 'Pass as `before` to read the older page; null at the start.' },
    last_offset: { type: 'integer' },
  },
} as const;

/** Conversations, messages, live events and `POST /chat`. */
export function registerConversationRoutes(app: FastifyInstance, services: Services): void {
  const { conversations, chat } = services;
  const tags = ['conversations'];
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of streams) end();
  });

  app.post('/conversations', {
    preHandler: need('chat'),
    schema: { tags, summary: 'Start a conversation with a bot', body: inputSchemas.ConversationCreate, response: { 201: ref('Conversation'), ...errors(400, 401, 404) } },
    handler: async (request, reply) => {
      const input = request.body as { bot_id: string };
      const definition = chat.definitionFor(request.caller, input.bot_id);
      return reply.status(201).send(await conversations.create({ caller: request.caller, input: request.body as never, ownerId: definition.builtIn ? request.caller.owner_id : definition.bot.owner_id }));
    },
  });

  app.get<{ Querystring: { bot_id?: string; user_id?: string; order?: 'created' | 'recent'; limit?: number; after?: string } }>('/conversations', {
    preHandler: need('conversations:read'),
    schema: {
      tags,
      summary: 'List your conversations, newest first, by cursor page',
      querystring: { type: 'object', additionalProperties: false, properties: { ...pagingQuery, bot_id: idParam, user_id: { type: 'string', maxLength: 200 }, order: { type: 'string', enum: ['created', 'recent'], description: '`created` (default): newest first; `recent`: latest activity first.' } } },
      response: { 200: pageOf('Conversation'), ...errors(400, 401) },
    },
    handler: async (request) => conversations.list({ caller: request.caller, ...request.query }),
  });

  app.get<{ Params: Params; Querystring: { limit?: number } }>('/conversations/:id', {
    preHandler: need('conversations:read'),
    schema: {
      tags,
      summary: 'Get a conversation with its latest messages',
      params,
      querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 200 } } },
      response: { 200: { type: 'object', properties: { conversation: ref('Conversation'), messages: messagePage } }, ...errors(400, 401, 404) },
    },
    handler: async (request) => {
      const conversation = await conversations.get({ caller: request.caller, id: request.params.id });
      const messages = await conversations.messagesPage({ caller: request.caller, id: conversation.id, limit: request.query.limit ?? 50 });
      return { conversation, messages };
    },
  });

  app.get<{ Params: Params; Querystring: { before?: number; after?: number; limit?: number } }>('/conversations/:id/messages', {
    preHandler: need('conversations:read'),
    schema: {
      tags,
      summary: 'Read messages by offset: the latest page, the page `before` an offset, or those `after` one',
      params,
      querystring: { type: 'object', additionalProperties: false, properties: { before: offset, after: offset, limit: { type: 'integer', minimum: 1, maximum: 200 } } },
      response: { 200: messagePage, ...errors(400, 401, 404) },
    },
    handler: async (request) => {
      if (request.query.before !== undefined && request.query.after !== undefined) throw new OttoError('INVALID', 'use before or after, not both', { field: 'before' });
      return conversations.messagesPage({ caller: request.caller, id: request.params.id, ...request.query });
    },
  });

  app.post<{ Params: Params }>('/conversations/:id/messages', {
    preHandler: need('chat'),
    schema: { tags, summary: "Send a user message and get the bot's reply", params, body: inputSchemas.MessageCreate, response: { 201: chatResult, ...errors(400, 401, 404, 502, 504) } },
    handler: async (request, reply) => reply.status(201).send(await chat.post({ caller: request.caller, conversationId: request.params.id, input: request.body as never })),
  });

  app.post('/chat', {
    preHandler: need('chat'),
    schema: {
      tags: ['chat'],
      summary: 'Talk to a bot (Otto, the bot-builder, is `bot_id: "otto"`); creates the conversation when none is given',
      body: inputSchemas.ChatRequest,
      response: { 200: chatResult, ...errors(400, 401, 404, 502, 504) },
    },
    handler: async (request) => chat.send({ caller: request.caller, input: request.body as never }),
  });

  app.get<{ Params: Params; Querystring: { after?: number } }>('/conversations/:id/events', {
    preHandler: need('conversations:read'),
    schema: {
      tags,
      summary: 'Server-sent events: every message after offset `after` (or Last-Event-ID), then new ones as they are written by any Otto process',
      params,
      querystring: { type: 'object', additionalProperties: false, properties: { after: offset } },
      response: { 200: { type: 'string', description: 'text/event-stream; each event is `id: <offset>`, `event: message`, `data: <Message JSON>`' }, ...errors(400, 401, 404) },
    },
    handler: async (request, reply) => {
      const conversation = await conversations.get({ caller: request.caller, id: request.params.id });
      const lastEventId = Number(request.headers['last-event-id']);
      const after = request.query.after ?? (Number.isInteger(lastEventId) && lastEventId >= 0 ? lastEventId : 0);
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      raw.write(': connected\n\n');
      const unsubscribe = conversations.feed.subscribe({
        conversationId: conversation.id,
        afterOffset: after,
        deliver: (message) => raw.write(`id: ${message.offset}\nevent: message\ndata: ${JSON.stringify(message)}\n\n`),
        onError: (error) => {
          request.log.error({ err: error }, 'event stream failed');
          raw.write(`event: error\ndata: ${JSON.stringify({ code: 'UNAVAILABLE', message: 'storage is unavailable; reconnect shortly' })}\n\n`);
        },
      });
      const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), 15000);
      // A stream outlives the request that opened it: its key is checked again, so a revoked or
      // expired key (or a disabled user) stops receiving messages within ACCESS_RECHECK_MS.
      const recheck = setInterval(() => {
        authenticate(request, services.keys).then(
          (caller) => {
            if (caller.owner_id !== request.caller.owner_id) endWith('UNAUTHORIZED', 'the access key of this stream no longer belongs to its caller');
          },
          (error: unknown) => {
            if (error instanceof OttoError && error.code === 'UNAUTHORIZED') endWith('UNAUTHORIZED', error.message);
          },
        );
      }, ACCESS_RECHECK_MS);
      recheck.unref();
      const endWith = (code: string, message: string) => {
        raw.write(`event: error\ndata: ${JSON.stringify({ code, message })}\n\n`);
        end();
      };
      const close = () => {
        clearInterval(heartbeat);
        clearInterval(recheck);
        unsubscribe();
        streams.delete(end);
      };
      const end = () => {
        close();
        raw.end();
      };
      streams.add(end);
      request.raw.on('close', close);
    },
  });
}
