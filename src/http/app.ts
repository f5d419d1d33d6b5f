import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { OttoConfig } from '../config.ts';
import { OttoError } from '../domain/errors.ts';
import { describeError, fieldOf } from '../domain/schemas.ts';
import type { Services, UsageRecordingStatus } from '../services/index.ts';
import type { MirrorSet } from '../storage/changes/index.ts';
import type { StorageStartup } from '../storage/index.ts';
import type { DegradedStatus, ResilientStore } from '../storage/degraded/index.ts';
import { ottoVersion } from '../version.ts';
import { PUBLIC_ROUTES, authenticate } from './auth.ts';
import { toErrorResponse } from './errors.ts';
import { registerAdminSyncRoutes } from './routes/admin-sync.ts';
import { registerAdminDoctorRoutes } from './routes/admin-doctor.ts';
import { registerBotRoutes } from './routes/bots.ts';
import { registerConversationRoutes } from './routes/conversations.ts';
import { registerUsageRoutes } from './routes/usage.ts';
import { registerIntegrationRoutes } from './routes/integrations.ts';
import type { Integrations } from '../services/integrations.ts';
import { registerAccountRoutes } from './routes/accounts.ts';
import { entitySchemas } from './schemas.ts';
import { registerWebRoutes } from './web.ts';

/** What the app is built from. */
export interface AppContext {
  config: OttoConfig;
  storage: StorageStartup;
  services: Services;
  /** Mirrors fed from the change log, shown in /health. */
  mirrors?: Pick<MirrorSet, 'status'>;
  /** Degraded mode of a MongoDB primary: shown in /health, and each response carries `Otto-Degraded` while it lasts. */
  degraded?: ResilientStore;
  /** Provider keys, channels and outgoing webhooks (their routes are served when given). */
  integrations?: Integrations;
  /** Fastify's logger; off by default (the CLI prints its own startup block). */
  logger?: boolean;
}

/** The body of `GET /health`. */
export interface HealthReport {
  /** `degraded`: the primary is unreachable and Otto serves from a mirror and its spool (or answers 503, without a mirror). */
  status: 'ok' | 'down' | 'degraded';
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
  /** Activity recording: records written, waiting for a retry (a failed write), dropped, and the last error. */
  usage: UsageRecordingStatus;
  /** Each mirror (OTTO_MIRRORS): its URL without credentials, cursor, lag in changes and in seconds. */
  mirrors: Array<{ url: string; seq: number; lag: number; seconds_behind: number; status: 'ok' | 'behind' | 'down'; last_error?: string }>;
  /** Degraded mode (MongoDB primaries only): whether it is on, since when, why, where reads come from, spool backlog, open conflicts. */
  degraded?: DegradedStatus;
}

/** Builds the report `GET /health` serves and the startup block prints. Never throws. */
export async function healthReport(ctx: Pick<AppContext, 'storage' | 'services' | 'mirrors' | 'degraded'>, startedAt: number): Promise<HealthReport> {
  const { store, migrations } = ctx.storage;
  const [probe, mirrors] = await Promise.all([store.health(), ctx.mirrors?.status() ?? []]);
  const degraded = ctx.degraded?.degradedStatus();
  return {
    status: degraded?.active ? 'degraded' : probe.ok ? 'ok' : 'down',
    ...(degraded ? { degraded } : {}),
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
    usage: ctx.services.usage.status(),
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

  // While the primary is unreachable every response says so, in a few words (see README, Degraded mode).
  const degraded = ctx.degraded;
  if (degraded) {
    app.addHook('onSend', async (_request, reply, payload) => {
      const reason = degraded.degradedReason();
      if (reason !== null) void reply.header('Otto-Degraded', reason);
      return payload;
    });
  }

  app.decorateRequest('caller', null as never);
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0]!;
    // Public routes: the fixed list, and routes that say so (`config: {public: true}`), which authenticate by a platform's signature.
    if (PUBLIC_ROUTES.has(path) || request.routeOptions.config?.public === true) return;
    request.caller = await authenticate(request, ctx.services.keys);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Otto', version: ottoVersion, description: 'Self-hosted bot platform: bots, guidelines, journeys, tools and conversations.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An access key (`otto_…`, from `otto users create` / `otto keys create` / POST /me/keys) or a key from OTTO_API_KEYS; needed once any user or key exists.' } } },
      security: [{ apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  for (const schema of entitySchemas) { app.addSchema(schema); strictAjv.addSchema(schema); coercingAjv.addSchema(schema); }

  app.get('/health', { schema: { tags: ['system'], summary: 'Storage engine, location, migrations, capabilities', security: [] } }, async () => healthReport(ctx, startedAt));
  app.get('/ready', { schema: { tags: ['system'], summary: '200 while storage answers (or degraded mode serves from a mirror), 503 otherwise', security: [] } }, async (_request, reply) => {
    if (ctx.degraded?.degradedStatus().active) {
      if (!ctx.degraded.serving()) return reply.status(503).send({ ready: false, degraded: true });
      return { ready: true, degraded: true };
    }
    const probe = await ctx.storage.store.health();
    if (!probe.ok) return reply.status(503).send({ ready: false });
    return { ready: true };
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerBotRoutes(app, ctx.services, '/bots');
  registerBotRoutes(app, ctx.services, '/agents');
  registerConversationRoutes(app, ctx.services);
  registerUsageRoutes(app, ctx.services);
  registerWebRoutes(app, { services: ctx.services });
  registerAccountRoutes(app, ctx.services);
  registerAdminSyncRoutes(app, ctx);
  registerAdminDoctorRoutes(app, ctx);
  if (ctx.integrations) registerIntegrationRoutes(app, ctx.integrations, ctx.storage.store);
  return app;
}
