import { OttoError } from '../domain/errors.ts';
import { allPermissions, type Permission, type Role } from '../domain/permissions.ts';

/**
 * Who is calling: the owner their writes belong to, whether they may see everyone's, and —
 * for callers resolved by the auth hook — who they are and what their role allows.
 * Internal code may build `{owner_id, admin}` callers; those have no `permissions`, so
 * `requirePermission` lets only admins through them.
 */
export interface Caller {
  /** The owner of what this caller creates: the user's id (or the configured key's owner, or `local`). */
  owner_id: string;
  /** True for admins: they see and change every owner's data. */
  admin: boolean;
  /** The user's id; null for the local admin and configured keys (they are no stored user). */
  user_id?: string | null;
  username?: string;
  role?: Role;
  /** What the caller's role allows, as read on this request. */
  permissions?: readonly Permission[];
  /** How the caller authenticated: `local` (loopback, no keys exist), `key` (a user's access key), `config` (OTTO_API_KEYS). */
  auth?: 'local' | 'key' | 'config';
  /** The id of the access key used, when `auth` is `key`. */
  key_id?: string;
}

/** The caller used on loopback when no users and no keys exist. */
export const localAdmin: Caller = Object.freeze({ owner_id: 'local', admin: true, user_id: null, username: 'local', role: 'admin', permissions: Object.freeze([...allPermissions]), auth: 'local' }) as Caller;

/** True when the caller may see or change a document owned by `owner_id`. */
export function canAccess(caller: Caller, owner_id: string): boolean {
  return caller.admin || caller.owner_id === owner_id;
}

/** True when the caller holds `permission` (admins hold every one). */
export function hasPermission(caller: Caller, permission: Permission): boolean {
  return caller.admin || (caller.permissions?.includes(permission) ?? false);
}

/**
 * Checks that the caller's role allows `permission`. Returns nothing; throws OttoError
 * FORBIDDEN (403) naming the permission and the role otherwise. Every route calls it.
 */
export function requirePermission(caller: Caller, permission: Permission): void {
  if (hasPermission(caller, permission)) return;
  throw new OttoError('FORBIDDEN', `your role (${caller.role ?? 'none'}) does not allow ${permission}; ask an admin`);
}
