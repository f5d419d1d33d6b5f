import type { FastifyInstance } from 'fastify';
import { OttoError } from '../../domain/errors.ts';
import { permissionDescriptions, roles } from '../../domain/permissions.ts';
import { inputSchemas } from '../../domain/schemas.ts';
import { purgeOwner, requirePermission, type Caller, type Services } from '../../services/index.ts';
import { errors, idParam, pagingQuery, ref } from '../schemas.ts';

type Paging = { limit?: number; after?: string };

const roleEnum = { type: 'string', enum: [...roles] } as const;

/** Response schemas of the account routes (registered with the app, referenced as `Name#`). */
export const accountSchemas = [
  {
    $id: 'User',
    type: 'object',
    additionalProperties: true,
    properties: {
      id: { type: 'string' },
      version: { type: 'integer' },
      created_at: { type: 'string', format: 'date-time' },
      updated_at: { type: 'string', format: 'date-time' },
      username: { type: 'string' },
      email: { type: ['string', 'null'] },
      display_name: { type: 'string' },
      role: roleEnum,
      disabled: { type: 'boolean' },
    },
  },
  {
    $id: 'AccessKey',
    type: 'object',
    additionalProperties: false,
    properties: {
      id: { type: 'string' },
      prefix: { type: 'string', description: 'The first part of the key (`otto_…`), shown in the clear; the key itself is never shown again.' },
      name: { type: 'string' },
      user_id: { type: ['string', 'null'] },
      created_at: { type: 'string', format: 'date-time' },
      expires_at: { type: ['string', 'null'], format: 'date-time' },
      last_used_at: { type: ['string', 'null'], format: 'date-time', description: 'Updated at most once a minute.' },
      revoked_at: { type: ['string', 'null'], format: 'date-time' },
    },
  },
  {
    $id: 'RolePermissions',
    type: 'object',
    additionalProperties: false,
    properties: {
      role: roleEnum,
      permissions: { type: 'array', items: { type: 'string' } },
      updated_at: { type: ['string', 'null'] },
      version: { type: ['integer', 'null'] },
    },
  },
];

const keyPage = { type: 'object', required: ['items', 'next'], properties: { items: { type: 'array', items: ref('AccessKey') }, next: { type: ['string', 'null'] } } } as const;
const newKey = { type: 'object', required: ['key', 'secret'], properties: { key: ref('AccessKey'), secret: { type: 'string', description: 'The whole key, shown this once: send it as `Authorization: Bearer <secret>`.' } } } as const;
const me = {
  type: 'object',
  properties: {
    user: { type: 'object', properties: { id: { type: 'string' }, username: { type: 'string' }, email: { type: ['string', 'null'] }, display_name: { type: 'string' }, role: roleEnum } },
    permissions: { type: 'array', items: { type: 'string' } },
    auth: { type: 'string', enum: ['local', 'key', 'config'] },
  },
} as const;
const idParams = { type: 'object', required: ['id'], properties: { id: idParam } } as const;
const keyParams = { type: 'object', required: ['id', 'key_id'], properties: { id: idParam, key_id: idParam } } as const;
const listQuery = { type: 'object', additionalProperties: false, properties: pagingQuery } as const;

/** The caller's own user id; throws FORBIDDEN for the local admin and configured keys, which are no stored user. */
function ownUserId(caller: Caller): string {
  if (!caller.user_id) throw new OttoError('FORBIDDEN', 'you are signed in without a user (local admin or a key from OTTO_API_KEYS): create a user with `otto users create` to have access keys');
  return caller.user_id;
}

/**
 * `/me` (who is calling) and `/me/keys` (their own access keys); admin-only `/users`,
 * `/users/:id/keys` and `/role-permissions`.
 */
export function registerAccountRoutes(app: FastifyInstance, services: Services): void {
  const { accounts } = services;
  for (const schema of accountSchemas) app.addSchema(schema);
  const tags = ['accounts'];

  app.get('/me', {
    schema: { tags, summary: 'Who is calling: user, permissions, and how they signed in', response: { 200: me, ...errors(401) } },
    handler: async (request) => accounts.me(request.caller),
  });

  app.get<{ Querystring: Paging }>('/me/keys', {
    schema: { tags, summary: 'Your access keys (never their secrets)', querystring: listQuery, response: { 200: keyPage, ...errors(400, 401, 403) } },
    handler: async (request) => {
      requirePermission(request.caller, 'keys:self');
      if (!request.caller.user_id) return { items: [], next: null };
      return accounts.listKeys({ user_id: request.caller.user_id, ...request.query });
    },
  });

  app.post('/me/keys', {
    schema: { tags, summary: 'Create an access key for yourself; the secret is in this response only', body: inputSchemas.KeyCreate, response: { 201: newKey, ...errors(400, 401, 403) } },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'keys:self');
      return reply.status(201).send(await accounts.createKey({ user_id: ownUserId(request.caller), input: request.body as never }));
    },
  });

  app.delete<{ Params: { key_id: string } }>('/me/keys/:key_id', {
    schema: { tags, summary: 'Revoke one of your access keys (refused from the next request on)', params: { type: 'object', required: ['key_id'], properties: { key_id: idParam } }, response: { 204: { type: 'null' }, ...errors(401, 403, 404) } },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'keys:self');
      await accounts.revokeKey({ ref: request.params.key_id, user_id: ownUserId(request.caller) });
      return reply.status(204).send();
    },
  });

  // Users (admins)
  app.get<{ Querystring: Paging }>('/users', {
    schema: { tags, summary: 'List users (admin)', querystring: listQuery, response: { 200: { type: 'object', required: ['items', 'next'], properties: { items: { type: 'array', items: ref('User') }, next: { type: ['string', 'null'] } } }, ...errors(400, 401, 403) } },
    handler: async (request) => {
      requirePermission(request.caller, 'users:manage');
      return accounts.listUsers(request.query);
    },
  });

  app.post('/users', {
    schema: { tags, summary: 'Create a user (admin); give them a key with POST /users/:id/keys', body: inputSchemas.UserCreate, response: { 201: ref('User'), ...errors(400, 401, 403, 409) } },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'users:manage');
      return reply.status(201).send(await accounts.createUser({ input: request.body as never }));
    },
  });

  app.get<{ Params: { id: string } }>('/users/:id', {
    schema: { tags, summary: 'Get a user (admin)', params: idParams, response: { 200: ref('User'), ...errors(401, 403, 404) } },
    handler: async (request) => {
      requirePermission(request.caller, 'users:manage');
      return accounts.getUser({ id: request.params.id });
    },
  });

  app.patch<{ Params: { id: string } }>('/users/:id', {
    schema: { tags, summary: "Change a user's email, display name, role or disabled flag (admin); takes effect on their next request", params: idParams, body: inputSchemas.UserPatch, response: { 200: ref('User'), ...errors(400, 401, 403, 404, 409) } },
    handler: async (request) => {
      requirePermission(request.caller, 'users:manage');
      return accounts.updateUser({ caller: request.caller, id: request.params.id, patch: request.body as never });
    },
  });

  app.delete<{ Params: { id: string }; Querystring: { purge?: boolean } }>('/users/:id', {
    schema: {
      tags,
      summary: 'Delete a user and their keys (admin); a user who owns bots or conversations needs `purge=true`, which deletes everything they own',
      params: idParams,
      querystring: { type: 'object', additionalProperties: false, properties: { purge: { type: 'boolean' } } },
      response: { 204: { type: 'null' }, ...errors(401, 403, 404, 409) },
    },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'users:manage');
      const user = await accounts.getUser({ id: request.params.id });
      if (request.caller.user_id === user.id) throw new OttoError('FORBIDDEN', 'you cannot delete yourself; ask another admin', { field: 'id' });
      if (request.query.purge) {
        await purgeOwner({ store: services.store, owner_id: user.id, deleteUser: false });
        await services.registry.sync();
      } else {
        const owner: Caller = { owner_id: user.id, admin: false };
        const owns = (await services.bots.list({ caller: owner, limit: 1 })).items.length + (await services.conversations.list({ caller: owner, limit: 1 })).items.length;
        if (owns > 0) throw new OttoError('CONFLICT', `${user.username} owns bots or conversations: disable them instead (PATCH {"disabled": true}), or delete everything they own with ?purge=true`, { field: 'purge' });
      }
      await accounts.deleteUser({ caller: request.caller, id: user.id });
      return reply.status(204).send();
    },
  });

  app.get<{ Params: { id: string }; Querystring: Paging }>('/users/:id/keys', {
    schema: { tags, summary: "A user's access keys (admin)", params: idParams, querystring: listQuery, response: { 200: keyPage, ...errors(400, 401, 403, 404) } },
    handler: async (request) => {
      requirePermission(request.caller, 'users:manage');
      const user = await accounts.getUser({ id: request.params.id });
      return accounts.listKeys({ user_id: user.id, ...request.query });
    },
  });

  app.post<{ Params: { id: string } }>('/users/:id/keys', {
    schema: { tags, summary: 'Create an access key for a user (admin); the secret is in this response only', params: idParams, body: inputSchemas.KeyCreate, response: { 201: newKey, ...errors(400, 401, 403, 404) } },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'users:manage');
      return reply.status(201).send(await accounts.createKey({ user_id: request.params.id, input: request.body as never }));
    },
  });

  app.delete<{ Params: { id: string; key_id: string } }>('/users/:id/keys/:key_id', {
    schema: { tags, summary: "Revoke a user's access key (admin); refused from the next request on, in every Otto process", params: keyParams, response: { 204: { type: 'null' }, ...errors(401, 403, 404) } },
    handler: async (request, reply) => {
      requirePermission(request.caller, 'users:manage');
      await accounts.revokeKey({ ref: request.params.key_id, user_id: request.params.id });
      return reply.status(204).send();
    },
  });

  // Role permissions (admins)
  app.get('/role-permissions', {
    schema: {
      tags,
      summary: 'What each role may do, and every permission there is (admin)',
      response: {
        200: {
          type: 'object',
          properties: {
            roles: { type: 'array', items: ref('RolePermissions') },
            permissions: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, description: { type: 'string' } } } },
          },
        },
        ...errors(401, 403),
      },
    },
    handler: async (request) => {
      requirePermission(request.caller, 'roles:manage');
      return { roles: await accounts.listRolePermissions(), permissions: Object.entries(permissionDescriptions).map(([name, description]) => ({ name, description })) };
    },
  });

  app.put<{ Params: { role: string } }>('/role-permissions/:role', {
    schema: {
      tags,
      summary: "Replace a role's permissions (admin; the admin role always has all); takes effect on the next request",
      params: { type: 'object', required: ['role'], properties: { role: { type: 'string', pattern: '^[a-z]{1,32}$' } } },
      body: inputSchemas.RolePermissionsPut,
      response: { 200: ref('RolePermissions'), ...errors(400, 401, 403, 404) },
    },
    handler: async (request) => {
      requirePermission(request.caller, 'roles:manage');
      return accounts.setRolePermissions({ role: request.params.role, input: request.body as never });
    },
  });
}
