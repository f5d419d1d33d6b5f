import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { OttoConfig } from '../config.ts';
import { OttoError } from '../domain/errors.ts';
import { describeError, fieldOf } from '../domain/schemas.ts';
import type { Services } from '../services/index.ts';
import type { MirrorSet } from '../storage/changes/index.ts';
import type { StorageStartup } from '../storage/index.ts';
import { ottoVersion } from '../version.ts';
import { PUBLIC_ROUTES, authenticate } from './auth.ts';
import { toErrorResponse } from './errors.ts';
import { registerBotRoutes } from './routes/bots.ts';
import { registerConversationRoutes } from './routes/conversations.ts';
import { entitySchemas } from './schemas.ts';

/** What the app is built from. */
export interface AppContext {
  config: OttoConfig;
  storage: StorageStartup;
  services: Services;
  /** Mirrors fed from the change log, shown in /health. */
  mirrors?: MirrorSet;
  /** Fastify's logger; off by default (the CLI prints its own startup block). */
  logger?: boolean;
}

/** The body of `GET /health`. */
export interface HealthReport {
  status: 'ok' | 'down';
  version: string;
  uptime_s: number;
  storage: {
    engine: string;
    location: string;
    ok: boolean;
    latency_ms: number;
    server_version?: string;
    error?: string;
    capabilities: Record<string, boolean>;
    migrations: { applied: number; pending: number; total: number };
  };
  bots: { rehydrated: number; loaded: number };
  /** Each mirror (OTTO_MIRRORS): its URL without credentials, cursor, lag in changes and in seconds. */
  mirrors: Array<{ url: string; seq: number; lag: number; seconds_behind: number; status: 'ok' | 'behind' | 'down'; last_error?: string }>;
}

/** Builds the report `GET /health` serves and the startup block prints. Never throws. */
export async function healthReport(ctx: Pick<AppContext, 'storage' | 'services' | 'mirrors'>, startedAt: number): Promise<HealthReport> {
  const { store, migrations } = ctx.storage;
  const [probe, mirrors] = await Promise.all([store.health(), ctx.mirrors?.status() ?? []]);
  return {
    status: probe.ok ? 'ok' : 'down',
    version: ottoVersion,
    uptime_s: Math.round((Date.now() - startedAt) / 1000),
    storage: {
      engine: store.engine,
      location: store.location,
      ok: probe.ok,
      latency_ms: probe.latency_ms,
      ...(probe.server_version ? { server_version: probe.server_version } : {}),
      ...(probe.error ? { error: 'storage probe failed' } : {}),
      capabilities: { ...store.capabilities },
      migrations: { applied: migrations.applied, pending: migrations.pending, total: migrations.total },
    },
    bots: { rehydrated: ctx.services.rehydrated, loaded: ctx.services.registry.size },
    mirrors: mirrors.map(({ active: _active, ...m }) => m),
  };
}

/** Maps Fastify's own errors (body parsing, validation, limits) onto the error registry. */
function mapFastifyError(error: FastifyError, bodyLimit: number): unknown {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new OttoError('PAYLOAD_TOO_LARGE', `the body is larger than ${bodyLimit} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new OttoError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new OttoError('INVALID_JSON', 'the body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new OttoError('INVALID_JSON', 'the body is not valid JSON');
  }
  if (error.validation) {
    const first = error.validation[0] as Parameters<typeof fieldOf>[0];
    const where = error.validationContext ?? 'body';
    const field = fieldOf(first) ?? where;
    return new OttoError('INVALID', `${where === 'body' ? '' : `${where} `}${describeError(first)}`.trim(), { field });
  }
  if (error instanceof SyntaxError || (error.statusCode === 400 && /JSON/i.test(error.message))) return new OttoError('INVALID_JSON', 'the body is not valid JSON');
  if (error.statusCode === 415) return new OttoError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
  if (error.statusCode === 413) return new OttoError('PAYLOAD_TOO_LARGE', `the body is larger than ${bodyLimit} bytes`);
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) return new OttoError('BAD_REQUEST', error.message);
  return error;
}

/**
 * Builds the Fastify app (routes, auth, errors, OpenAPI at /openapi.json, docs at /docs)
 * without listening, so tests can use `app.inject()`. The caller owns storage and services.
 */
export async function buildApp(ctx: AppContext): Promise<FastifyInstance> {
  const startedAt = Date.now();
  const bodyLimit = ctx.config.http.bodyLimitBytes;
  const app = Fastify({
    logger: ctx.logger ?? false,
    bodyLimit,
    return503OnClosing: true,
  });
  // Bodies are validated exactly as sent; query strings and path params are text, so their
  // numbers and booleans are coerced. Neither strips or fills anything.
  const strictAjv = new Ajv({ coerceTypes: false, allErrors: false, strict: false });
  const coercingAjv = new Ajv({ coerceTypes: 'array', allErrors: false, strict: false });
  // The API speaks JSON only: anything else is 415, not a string body.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema));

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { status, body } = toErrorResponse(mapFastifyError(error, bodyLimit));
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    void reply.status(status).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const { status, body } = toErrorResponse(new OttoError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
    void reply.status(status).send(body);
  });

  app.decorateRequest('caller', null as never);
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0]!;
    if (PUBLIC_ROUTES.has(path)) return;
    request.caller = authenticate(request, ctx.services.keys);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Otto', version: ottoVersion, description: 'Self-hosted bot platform: bots, guidelines, journeys, tools and conversations.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key from OTTO_API_KEYS (needed when keys are configured).' } } },
      security: [{ apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  for (const schema of entitySchemas) { app.addSchema(schema); strictAjv.addSchema(schema); coercingAjv.addSchema(schema); }

  app.get('/health', { schema: { tags: ['system'], summary: 'Storage engine, location, migrations, capabilities', security: [] } }, async () => healthReport(ctx, startedAt));
  app.get('/ready', { schema: { tags: ['system'], summary: '200 while storage answers, 503 otherwise', security: [] } }, async (_request, reply) => {
    const probe = await ctx.storage.store.health();
    if (!probe.ok) return reply.status(503).send({ ready: false });
    return { ready: true };
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerBotRoutes(app, ctx.services, '/bots');
  registerBotRoutes(app, ctx.services, '/agents');
  registerConversationRoutes(app, ctx.services);
  return app;
}
