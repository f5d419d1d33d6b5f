import type { FastifyRequest } from 'fastify';
import type { Permission } from '../domain/permissions.ts';
import { requirePermission } from '../services/caller.ts';

/**
 * A route `preHandler` that checks the caller's role allows `permission` (via
 * `requirePermission`); the route answers 403 FORBIDDEN otherwise, before its handler runs.
 */
export function need(permission: Permission): (request: FastifyRequest) => Promise<void> {
  return async (request) => requirePermission(request.caller, permission);
}
