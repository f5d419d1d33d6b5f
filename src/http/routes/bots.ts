import type { FastifyInstance } from 'fastify';
import { OttoError } from '../../domain/errors.ts';
import { inputSchemas } from '../../domain/schemas.ts';
import { BUILDER_BOT_ID, type Services } from '../../services/index.ts';
import { need } from '../permissions.ts';
import { errors, idParam, pageOf, pagingQuery, ref } from '../schemas.ts';

type Params = { id: string; child_id: string };
type Paging = { limit?: number; after?: string };

function refuseBuiltIn(id: string): void {
  if (id === BUILDER_BOT_ID) throw new OttoError('FORBIDDEN', 'Otto is the built-in bot-builder: it cannot be changed or deleted', { field: 'id' });
}

/** Sets an RFC 8288 `Link: <…>; rel="next"` header when another page follows. */
function linkNext(url: string, next: string | null): Record<string, string> {
  if (!next) return {};
  const base = url.split('?')[0];
  const query = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  query.set('after', next);
  return { link: `<${base}?${query.toString()}>; rel="next"`, 'otto-next-cursor': next };
}

/**
 * Bots and their definitions under `prefix` (`/bots`, and `/agents` as an alias).
 * Lists of bots are bare arrays (Otto first on the first page); `Link` gives the next page.
 */
export function registerBotRoutes(app: FastifyInstance, services: Services, prefix: '/bots' | '/agents'): void {
  const tags = [prefix === '/bots' ? 'bots' : 'agents (alias of bots)'];
  const { bots, registry } = services;
  const builtIn = () => registry.builtInDefinitions.map((d) => ({ ...d.bot, built_in: true }));

  app.post(prefix, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Create a bot', body: inputSchemas.BotCreate, response: { 201: ref('Bot'), ...errors(400, 401, 409) } },
    handler: async (request, reply) => reply.status(201).send(await bots.create({ caller: request.caller, input: request.body as never })),
  });

  app.get<{ Querystring: Paging }>(prefix, {
    preHandler: need('bots:read'),
    schema: {
      tags,
      summary: 'List bots: Otto (built-in) first, then yours',
      querystring: { type: 'object', additionalProperties: false, properties: pagingQuery },
      response: { 200: { type: 'array', items: ref('Bot') }, ...errors(400, 401) },
    },
    handler: async (request, reply) => {
      const page = await bots.list({ caller: request.caller, after: request.query.after, limit: request.query.limit });
      void reply.headers(linkNext(request.url, page.next));
      return [...(request.query.after ? [] : builtIn()), ...page.items];
    },
  });

  const one = `${prefix}/:id`;
  const params = { type: 'object', required: ['id'], properties: { id: idParam } } as const;

  app.get<{ Params: Params }>(one, {
    preHandler: need('bots:read'),
    schema: { tags, summary: 'Get a bot', params, response: { 200: ref('Bot'), ...errors(401, 404) } },
    handler: async (request) => {
      const def = registry.get(request.params.id);
      if (def?.builtIn) return { ...def.bot, built_in: true };
      return bots.get({ caller: request.caller, id: request.params.id });
    },
  });

  app.patch<{ Params: Params }>(one, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Change a bot; send the `version` you read to guard against lost updates (409 when stale)', params, body: inputSchemas.BotPatch, response: { 200: ref('Bot'), ...errors(400, 401, 403, 404, 409) } },
    handler: async (request) => {
      refuseBuiltIn(request.params.id);
      return bots.update({ caller: request.caller, id: request.params.id, patch: request.body as never });
    },
  });

  app.delete<{ Params: Params; Querystring: { version?: number } }>(one, {
    preHandler: need('bots:write'),
    schema: {
      tags,
      summary: 'Delete a bot with its guidelines, journeys, tools and mappings (conversations stay)',
      params,
      querystring: { type: 'object', additionalProperties: false, properties: { version: { type: 'integer', minimum: 1 } } },
      response: { 204: { type: 'null' }, ...errors(401, 403, 404, 409) },
    },
    handler: async (request, reply) => {
      refuseBuiltIn(request.params.id);
      await bots.delete({ caller: request.caller, id: request.params.id, version: request.query.version });
      return reply.status(204).send();
    },
  });

  const childParams = { type: 'object', required: ['id', 'child_id'], properties: { id: idParam, child_id: idParam } } as const;
  const listQuery = { type: 'object', additionalProperties: false, properties: pagingQuery } as const;

  // Guidelines
  app.post<{ Params: Params }>(`${one}/guidelines`, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Add a guideline (condition → action)', params, body: inputSchemas.GuidelineCreate, response: { 201: ref('Guideline'), ...errors(400, 401, 403, 404) } },
    handler: async (request, reply) => {
      refuseBuiltIn(request.params.id);
      return reply.status(201).send(await bots.addGuideline({ caller: request.caller, bot_id: request.params.id, input: request.body as never }));
    },
  });
  app.get<{ Params: Params; Querystring: Paging }>(`${one}/guidelines`, {
    preHandler: need('bots:read'),
    schema: { tags, summary: "List a bot's guidelines", params, querystring: listQuery, response: { 200: pageOf('Guideline'), ...errors(400, 401, 404) } },
    handler: async (request) => bots.listGuidelines({ caller: request.caller, bot_id: request.params.id, ...request.query }),
  });
  app.patch<{ Params: Params }>(`${one}/guidelines/:child_id`, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Change a guideline (send `version` to guard against lost updates)', params: childParams, body: inputSchemas.GuidelinePatch, response: { 200: ref('Guideline'), ...errors(400, 401, 404, 409) } },
    handler: async (request) => bots.updateGuideline({ caller: request.caller, bot_id: request.params.id, id: request.params.child_id, patch: request.body as never }),
  });
  app.delete<{ Params: Params }>(`${one}/guidelines/:child_id`, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Delete a guideline and its tool mappings', params: childParams, response: { 204: { type: 'null' }, ...errors(401, 404) } },
    handler: async (request, reply) => {
      await bots.deleteGuideline({ caller: request.caller, bot_id: request.params.id, id: request.params.child_id });
      return reply.status(204).send();
    },
  });

  // Journeys
  app.post<{ Params: Params }>(`${one}/journeys`, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Add a journey', params, body: inputSchemas.JourneyCreate, response: { 201: ref('Journey'), ...errors(400, 401, 403, 404) } },
    handler: async (request, reply) => {
      refuseBuiltIn(request.params.id);
      return reply.status(201).send(await bots.addJourney({ caller: request.caller, bot_id: request.params.id, input: request.body as never }));
    },
  });
  app.get<{ Params: Params; Querystring: Paging }>(`${one}/journeys`, {
    preHandler: need('bots:read'),
    schema: { tags, summary: "List a bot's journeys", params, querystring: listQuery, response: { 200: pageOf('Journey'), ...errors(400, 401, 404) } },
    handler: async (request) => bots.listJourneys({ caller: request.caller, bot_id: request.params.id, ...request.query }),
  });
  app.patch<{ Params: Params }>(`${one}/journeys/:child_id`, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Change a journey (send `version` to guard against lost updates)', params: childParams, body: inputSchemas.JourneyPatch, response: { 200: ref('Journey'), ...errors(400, 401, 404, 409) } },
    handler: async (request) => bots.updateJourney({ caller: request.caller, bot_id: request.params.id, id: request.params.child_id, patch: request.body as never }),
  });
  app.delete<{ Params: Params }>(`${one}/journeys/:child_id`, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Delete a journey', params: childParams, response: { 204: { type: 'null' }, ...errors(401, 404) } },
    handler: async (request, reply) => {
      await bots.deleteJourney({ caller: request.caller, bot_id: request.params.id, id: request.params.child_id });
      return reply.status(204).send();
    },
  });

  // Tools
  app.post<{ Params: Params }>(`${one}/tools`, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Add a tool (an HTTP endpoint the bot calls)', params, body: inputSchemas.ToolCreate, response: { 201: ref('Tool'), ...errors(400, 401, 403, 404, 409) } },
    handler: async (request, reply) => {
      refuseBuiltIn(request.params.id);
      return reply.status(201).send(await bots.addTool({ caller: request.caller, bot_id: request.params.id, input: request.body as never }));
    },
  });
  app.get<{ Params: Params; Querystring: Paging }>(`${one}/tools`, {
    preHandler: need('bots:read'),
    schema: { tags, summary: "List a bot's tools", params, querystring: listQuery, response: { 200: pageOf('Tool'), ...errors(400, 401, 404) } },
    handler: async (request) => bots.listTools({ caller: request.caller, bot_id: request.params.id, ...request.query }),
  });
  app.delete<{ Params: Params }>(`${one}/tools/:child_id`, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Delete a tool and its mappings', params: childParams, response: { 204: { type: 'null' }, ...errors(401, 404) } },
    handler: async (request, reply) => {
      await bots.deleteTool({ caller: request.caller, bot_id: request.params.id, id: request.params.child_id });
      return reply.status(204).send();
    },
  });

  // Tool mappings
  app.post<{ Params: Params }>(`${one}/tool-mappings`, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Map a tool to a guideline: the tool runs when the guideline matches', params, body: inputSchemas.ToolMappingCreate, response: { 201: ref('ToolMapping'), ...errors(400, 401, 404, 409) } },
    handler: async (request, reply) => reply.status(201).send(await bots.mapTool({ caller: request.caller, bot_id: request.params.id, input: request.body as never })),
  });
  app.get<{ Params: Params; Querystring: Paging }>(`${one}/tool-mappings`, {
    preHandler: need('bots:read'),
    schema: { tags, summary: "List a bot's tool mappings", params, querystring: listQuery, response: { 200: pageOf('ToolMapping'), ...errors(400, 401, 404) } },
    handler: async (request) => bots.listMappings({ caller: request.caller, bot_id: request.params.id, ...request.query }),
  });
  app.delete<{ Params: Params }>(`${one}/tool-mappings/:child_id`, {
    preHandler: need('bots:write'),
    schema: { tags, summary: 'Remove a tool mapping', params: childParams, response: { 204: { type: 'null' }, ...errors(401, 404) } },
    handler: async (request, reply) => {
      await bots.unmapTool({ caller: request.caller, bot_id: request.params.id, id: request.params.child_id });
      return reply.status(204).send();
    },
  });
}
