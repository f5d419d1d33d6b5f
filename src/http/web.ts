/**
 * The web page: `GET /` serves the app built from web/ (web/dist, see scripts/web-build.ts),
 * `GET /assets/:file` its content-hashed assets (cached for a year, immutable; index.html is
 * never cached, so a new build shows at the next load). Both are public: the page itself asks
 * for a key when the API wants one. `GET /conversations/:id/transcript` renders one
 * conversation as a static HTML page (every string escaped), for reading without JavaScript.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../services/index.ts';
import { errors, idParam } from './schemas.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** True for routes anyone may call (the auth hook skips them). */
    public?: boolean;
  }
}

/** Where `npm run build:web` puts the page. */
export const defaultWebDist = fileURLToPath(new URL('../../web/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};
const COMPRESSIBLE = /^(text\/|application\/json|image\/svg)/;
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

/** The page's Content-Security-Policy: only its own scripts and styles, API calls to itself. */
const APP_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const TRANSCRIPT_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Otto</title>
<p>Otto is running, but its web page has not been built. <code>npm start</code> builds it; or run <code>npm run build:web</code> and reload.</p>
<p>The API is documented at <a href="/docs">/docs</a>.</p></html>`;

interface Encoded {
  body: Buffer;
  gzip: Buffer | undefined;
}

function encode(body: Buffer, type: string): Encoded {
  return { body, gzip: COMPRESSIBLE.test(type) && body.length > 1024 ? gzipSync(body, { level: 9 }) : undefined };
}

/** Sends `encoded` gzipped when the client takes it. */
function send(request: FastifyRequest, reply: FastifyReply, encoded: Encoded, headers: Record<string, string>): FastifyReply {
  const gzip = encoded.gzip !== undefined && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
  void reply.headers({ ...headers, vary: 'accept-encoding', 'x-content-type-options': 'nosniff', ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
  return reply.send(gzip ? encoded.gzip : encoded.body);
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Registers `/`, `/assets/:file` and `/conversations/:id/transcript`. Files are read from `dir`
 * (default web/dist) when asked for, so a rebuild needs no restart; assets are kept in memory
 * once read (their names change with their content).
 */
export function registerWebRoutes(app: FastifyInstance, args: { services: Services; dir?: string }): void {
  const dir = args.dir ?? defaultWebDist;
  const assets = new Map<string, Encoded & { type: string }>();

  app.get('/', {
    config: { public: true },
    schema: { tags: ['web'], summary: 'The web page (chat, bots, storage and health, usage); needs no key to load, asks for one when the API does', security: [], produces: ['text/html'], response: { 200: { type: 'string' }, 503: { type: 'string' } } },
    handler: async (request, reply) => {
      let html: Buffer;
      try {
        html = await readFile(join(dir, 'index.html'));
      } catch {
        return reply.status(503).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT);
      }
      return send(request, reply.type('text/html; charset=utf-8'), encode(html, 'text/html'), { 'cache-control': 'no-cache', 'content-security-policy': APP_CSP, 'referrer-policy': 'no-referrer' });
    },
  });

  app.get<{ Params: { file: string } }>('/assets/:file', {
    config: { public: true },
    schema: {
      tags: ['web'],
      summary: "The web page's content-hashed scripts and styles (cached for a year)",
      security: [],
      params: { type: 'object', required: ['file'], properties: { file: { type: 'string', maxLength: 200 } } },
      response: { 200: { type: 'string' }, ...errors(404) },
    },
    handler: async (request, reply) => {
      const name = request.params.file;
      let asset = assets.get(name);
      if (!asset) {
        const ext = name.slice(name.lastIndexOf('.'));
        const type = TYPES[ext];
        if (!ASSET_NAME.test(name) || name.includes('..') || !type) return reply.callNotFound();
        let body: Buffer;
        try {
          body = await readFile(join(dir, 'assets', name));
        } catch {
          return reply.callNotFound();
        }
        asset = { ...encode(body, type), type };
        assets.set(name, asset);
      }
      return send(request, reply.type(asset.type), asset, { 'cache-control': 'public, max-age=31536000, immutable' });
    },
  });

  // The page reads /openapi.json (to show only the views whose routes this server has): send
  // it gzipped when the client takes it (about a tenth of the size). The document does not
  // change while the app runs, so it is compressed once.
  let openApiGzip: { text: string; gzip: Buffer } | undefined;
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.routeOptions.url !== '/openapi.json' || typeof payload !== 'string' || reply.statusCode !== 200) return payload;
    void reply.header('vary', 'accept-encoding');
    if (!/\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) return payload;
    if (openApiGzip?.text !== payload) openApiGzip = { text: payload, gzip: gzipSync(payload, { level: 9 }) };
    void reply.header('content-encoding', 'gzip').removeHeader('content-length');
    return openApiGzip.gzip;
  });

  const { conversations, registry } = args.services;
  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>('/conversations/:id/transcript', {
    schema: {
      tags: ['conversations'],
      summary: 'A conversation as a static HTML page (its latest messages, every string escaped; no scripts)',
      params: { type: 'object', required: ['id'], properties: { id: idParam } },
      querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 200 } } },
      produces: ['text/html'],
      response: { 200: { type: 'string' }, ...errors(400, 401, 404) },
    },
    handler: async (request, reply) => {
      const conversation = await conversations.get({ caller: request.caller, id: request.params.id });
      const page = await conversations.messagesPage({ caller: request.caller, id: conversation.id, limit: request.query.limit ?? 50 });
      const botName = registry.get(conversation.bot_id)?.bot.name ?? conversation.bot_id;
      const items = page.items
        .map((m) => {
          const who = m.role === 'user' ? 'You' : m.role === 'assistant' ? botName : 'System';
          return `<article class="${m.role === 'user' ? 'u' : 'b'}"><header><b>${escapeHtml(who)}</b> <time datetime="${escapeHtml(m.created_at)}">${escapeHtml(m.created_at.replace('T', ' ').slice(0, 19))}</time></header><p>${escapeHtml(m.content)}</p></article>`;
        })
        .join('\n');
      const title = `${conversation.title || 'Conversation'} with ${botName}`;
      const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)} · Otto</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:1rem auto;padding:0 1rem;line-height:1.45}article{border:1px solid #d9dee5;border-radius:10px;padding:.5rem .75rem;margin:.6rem 0;max-width:80%}article.u{margin-left:auto;background:#e7efff}header{font-size:.8rem;color:#5b6573}p{margin:.2rem 0 0;white-space:pre-wrap;overflow-wrap:anywhere}</style>
</head><body><h1>${escapeHtml(title)}</h1><main role="log" aria-label="Messages">
${items}
</main></body></html>`;
      return send(request, reply.type('text/html; charset=utf-8'), encode(Buffer.from(html), 'text/html'), { 'cache-control': 'no-store', 'content-security-policy': TRANSCRIPT_CSP });
    },
  });
}
