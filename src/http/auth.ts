import type { FastifyRequest } from 'fastify';
import { OttoError } from '../domain/errors.ts';
import { localAdmin, type Caller, type KeyService } from '../services/index.ts';

/** Routes anyone may call, even when keys are configured. */
export const PUBLIC_ROUTES = new Set(['/health', '/ready']);

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling; set by the auth hook on every non-public route. */
    caller: Caller;
  }
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Refuses a configuration that would serve everything to the network without a key.
 * Throws OttoError FORBIDDEN with how to add one.
 */
export function assertSafeBinding(host: string, keys: KeyService): void {
  if (!isLoopback(host) && !keys.required) {
    throw new OttoError(
      'FORBIDDEN',
      `refusing to listen on ${host} without an API key: anyone who can reach it could read and change every bot. ` +
        'Add one, e.g. OTTO_API_KEYS=admin:$(openssl rand -hex 24), or keep OTTO_HOST=127.0.0.1.',
    );
  }
}

/** Reads the presented key from `Authorization: Bearer …` or `X-API-Key`. */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string' && header.toLowerCase().startsWith('bearer ')) return header.slice(7).trim();
  const key = request.headers['x-api-key'];
  return typeof key === 'string' ? key.trim() : undefined;
}

/**
 * Resolves the caller of a request: the local admin when no keys are configured (loopback
 * only, enforced at startup), else the owner of the presented key. Throws UNAUTHORIZED.
 */
export function authenticate(request: FastifyRequest, keys: KeyService): Caller {
  if (!keys.required) return localAdmin;
  const key = presentedKey(request);
  if (!key) throw new OttoError('UNAUTHORIZED', 'send your API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`');
  const caller = keys.authenticate(key);
  if (!caller) throw new OttoError('UNAUTHORIZED', 'that API key is not valid');
  return caller;
}
