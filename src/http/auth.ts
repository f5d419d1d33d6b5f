import type { FastifyRequest } from 'fastify';
import { OttoError } from '../domain/errors.ts';
import { isStorageError } from '../storage/index.ts';
import type { AccountService, Caller } from '../services/index.ts';
import { isLoopback } from '../services/loopback.ts';

/** Routes anyone may call, even when keys are needed. */
export const PUBLIC_ROUTES = new Set(['/health', '/ready']);

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling; set by the auth hook on every non-public route. */
    caller: Caller;
  }
}

export { isLoopback };

/**
 * Refuses a configuration that would serve everything to the network without a way to sign
 * in as an admin: beyond loopback, a key from OTTO_API_KEYS or an admin user with a usable
 * access key must exist. Returns when safe; throws OttoError FORBIDDEN saying how to make one.
 */
export async function assertSafeBinding(host: string, accounts: AccountService): Promise<void> {
  if (isLoopback(host)) return;
  try {
    if (await accounts.adminCanSignIn()) return;
  } catch (error) {
    // The store is unreachable at startup (degraded, no mirror): nothing can be read, so every
    // request answers 503 until it is; the check then happens per request (no key, no access).
    if (isStorageError(error, 'UNAVAILABLE')) return;
    throw error;
  }
  throw new OttoError(
    'FORBIDDEN',
    `refusing to listen on ${host} without an admin access key: anyone who can reach it could read and change every bot. ` +
      'Create one with `otto users create --username <name> --admin` (it prints the key), or set OTTO_API_KEYS=admin:$(openssl rand -hex 24), or keep OTTO_HOST=127.0.0.1.',
  );
}

/** Reads the presented key from `Authorization: Bearer …` or `X-API-Key`. */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string' && header.toLowerCase().startsWith('bearer ')) return header.slice(7).trim();
  const key = request.headers['x-api-key'];
  return typeof key === 'string' ? key.trim() : undefined;
}

/**
 * Resolves the caller of a request: the local admin while no user and no key exists (loopback
 * only), else the user (or configured owner) of the presented key. Throws UNAUTHORIZED.
 */
export async function authenticate(request: FastifyRequest, accounts: AccountService): Promise<Caller> {
  return accounts.authenticate({ presented: presentedKey(request) });
}
