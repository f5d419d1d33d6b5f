/**
 * Roles and permissions. Every route names the one permission it needs
 * (`requirePermission(caller, 'bots:write')`); each role's permission list is stored in the
 * `role_permissions` collection (seeded with `defaultRolePermissions`) and an admin can change
 * it, except for `admin`, which always holds every permission.
 */

/** The roles a user can have. */
export const roles = ['admin', 'builder', 'viewer'] as const;
export type Role = (typeof roles)[number];

/** Every permission, with what it allows. Tenant isolation applies on top: non-admins only ever reach their own data. */
export const permissionDescriptions = {
  'bots:read': 'list and read your bots and their guidelines, journeys, tools and tool mappings',
  'bots:write': 'create, change and delete your bots and their definitions (also through Otto, the bot-builder)',
  'conversations:read': 'list and read your conversations, their messages and live events',
  chat: 'start conversations and send messages to your bots (and to Otto, the bot-builder)',
  'usage:read': 'read usage and cost of your bots',
  'secrets:read': 'list your stored secrets (always masked)',
  'secrets:write': 'store, change and delete your secrets',
  'channels:read': 'list your channels (platform accounts) and outgoing webhooks',
  'channels:write': 'connect, change and remove channels and outgoing webhooks',
  'keys:self': 'list, create and revoke your own access keys (/me/keys)',
  'users:manage': "manage users and everyone's access keys (admin)",
  'roles:manage': 'change what each role may do (admin)',
} as const;

export type Permission = keyof typeof permissionDescriptions;

/** Every permission, in a stable order. */
export const allPermissions = Object.keys(permissionDescriptions) as Permission[];

/** Permissions only an admin can hold (a changed role table never grants them to another role). */
export const adminOnlyPermissions: readonly Permission[] = ['users:manage', 'roles:manage'];

/** The role table a new store starts with (the `0002_accounts` migration seeds it). */
export const defaultRolePermissions: Record<Role, Permission[]> = {
  admin: [...allPermissions],
  builder: ['bots:read', 'bots:write', 'conversations:read', 'chat', 'usage:read', 'secrets:read', 'secrets:write', 'channels:read', 'channels:write', 'keys:self'],
  viewer: ['bots:read', 'conversations:read', 'chat', 'usage:read', 'keys:self'],
};

/** True for a known role name. */
export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (roles as readonly string[]).includes(value);
}
