import { timingSafeEqual } from 'node:crypto';
import {
  adminOnlyPermissions,
  allPermissions,
  collections,
  defaultRolePermissions,
  newId,
  roles,
  type ApiKeyRecord,
  type Permission,
  type Role,
  type RolePermissionsRecord,
  type User,
} from '../domain/index.ts';
import { OttoError } from '../domain/errors.ts';
import { validateInput } from '../domain/schemas.ts';
import { and, eq, isStorageError, type Collection, type Doc, type Page, type Store } from '../storage/index.ts';
import { localAdmin, type Caller } from './caller.ts';
import { accessKeyPrefix, hashKey, newAccessKey } from './keys.ts';

/** The `_counters` document every change to users, keys or role permissions bumps. */
export const AUTH_REVISION_ID = 'auth_revision';
/** `last_used_at` is written at most this often per key and process. */
export const LAST_USED_WRITE_MS = 60_000;
const MAX_CACHED_PREFIXES = 10_000;

/** An access key as the API shows it (never its hash or secret). */
export interface KeyView {
  id: string;
  prefix: string;
  name: string;
  user_id: string | null;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** What `GET /me` answers. */
export interface MeView {
  user: { id: string; username: string; email: string | null; display_name: string; role: Role };
  permissions: Permission[];
  auth: 'local' | 'key' | 'config';
}

export interface UserInput {
  username: string;
  email?: string | null;
  display_name?: string;
  role?: Role;
  disabled?: boolean;
}
export type UserPatch = Partial<Omit<UserInput, 'username'>> & { version?: number };
export interface KeyInput {
  name?: string;
  expires_at?: string | null;
  expires_in_days?: number;
}

/** The API view of a stored key. */
export function keyView(key: ApiKeyRecord): KeyView {
  return {
    id: key.id,
    prefix: key.prefix,
    name: key.name,
    user_id: key.user_id ?? null,
    created_at: key.created_at,
    expires_at: key.expires_at ?? null,
    last_used_at: key.last_used_at ?? null,
    revoked_at: key.revoked_at ?? null,
  };
}

const unauthorized = (message: string) => new OttoError('UNAUTHORIZED', message);

/**
 * Users, their access keys and the role table, and who a request's key belongs to.
 *
 * Caching: users, keys (by prefix) and the role table are cached in memory. Every change to
 * them — from this process, another Otto process or the CLI on the same store — bumps the
 * `auth_revision` counter. Each request first reads that one counter by id (concurrent requests
 * share a read that started after they arrived) and drops the caches when it moved, so a
 * revocation, a disabled user or a changed role applies from the next request on, everywhere.
 * Expiry is checked against the clock on every request. `last_used_at` is written at most once
 * a minute per key and process, in the background.
 */
export class AccountService {
  private readonly users: Collection<User>;
  private readonly keys: Collection<ApiKeyRecord>;
  private readonly rolesTable: Collection<RolePermissionsRecord>;
  private readonly counters: Collection<Doc>;
  /** Configured keys (OTTO_API_KEYS) by hash: owner name. */
  private readonly configured = new Map<string, { owner: string; hash: Buffer }>();
  private readonly allowLocal: boolean;
  private readonly onError: (error: unknown) => void;

  private revision = -1;
  private anyUser = false;
  private rolePermissions = new Map<Role, Permission[]>();
  private keysByPrefix = new Map<string, ApiKeyRecord[]>();
  private usersById = new Map<string, User | null>();
  private lastUsedWrites = new Map<string, number>();
  private inflight: Promise<void> | undefined;
  /** Keys from OTTO_API_KEYS not yet recorded in the store (recorded by the first successful check). */
  private pendingConfigured: Array<{ owner: string; key: string }> | undefined;
  private queued: Promise<void> | undefined;

  private constructor(parts: { users: Collection<User>; keys: Collection<ApiKeyRecord>; rolesTable: Collection<RolePermissionsRecord>; counters: Collection<Doc>; allowLocal: boolean; onError: (error: unknown) => void }) {
    this.users = parts.users;
    this.keys = parts.keys;
    this.rolesTable = parts.rolesTable;
    this.counters = parts.counters;
    this.allowLocal = parts.allowLocal;
    this.onError = parts.onError;
  }

  /**
   * Opens the account collections and stores the configured keys (hashed; they act as admin
   * keys). `allowLocal`: whether a request without a key may be the local admin while no user
   * and no key exists (true only on loopback). Throws StorageError.
   */
  static async open(args: { store: Store; configured: Array<{ owner: string; key: string }>; allowLocal: boolean; onError?: (error: unknown) => void }): Promise<AccountService> {
    const service = new AccountService({
      users: await args.store.collection<User>(collections.users),
      keys: await args.store.collection<ApiKeyRecord>(collections.api_keys),
      rolesTable: await args.store.collection<RolePermissionsRecord>(collections.role_permissions),
      counters: await args.store.collection(collections.counters),
      allowLocal: args.allowLocal,
      onError: args.onError ?? (() => {}),
    });
    service.pendingConfigured = args.configured;
    try {
      await service.fresh();
    } catch (error) {
      // The primary is unreachable at startup (degraded, no mirror to read from): every request
      // that needs a caller answers 503 until the first successful read, which also records the
      // configured keys. Nothing is let in meanwhile.
      if (!isStorageError(error, 'UNAVAILABLE')) throw error;
    }
    return service;
  }

  /** Stores the configured keys (hashed) once, the first time the store answers. Throws StorageError. */
  private async recordConfigured(): Promise<void> {
    const pending = this.pendingConfigured;
    if (!pending) return;
    for (const { owner, key } of pending) {
      const key_hash = hashKey(key);
      const existing = (await this.keys.find({ where: eq('key_hash', key_hash), limit: 1 })).items[0];
      if (!existing) {
        try {
          await this.keys.insert({ doc: { id: newId('key'), owner_id: owner, user_id: null, key_hash, prefix: key.slice(0, 6), name: `${owner} (configured)`, source: 'config' } });
        } catch (error) {
          if (!isStorageError(error, 'DUPLICATE')) throw error;
        }
      }
      this.configured.set(key_hash, { owner: existing?.owner_id ?? owner, hash: Buffer.from(key_hash, 'hex') });
    }
    this.pendingConfigured = undefined;
  }


  /** True when requests need a key: keys are configured or at least one user exists (as last read). */
  get required(): boolean {
    return this.configuredCount > 0 || this.anyUser;
  }

  /** How many keys OTTO_API_KEYS configures. */
  get configuredCount(): number {
    return this.configured.size + (this.pendingConfigured?.length ?? 0);
  }

  /**
   * True when someone can sign in as an admin: a configured key, or an enabled admin user with
   * a key that is neither revoked nor expired. Reads the store. Throws StorageError.
   */
  async adminCanSignIn(): Promise<boolean> {
    if (this.configuredCount > 0) return true;
    for await (const batch of this.users.scan()) {
      for (const user of batch) {
        if (user.role !== 'admin' || user.disabled) continue;
        const keys = await this.keys.find({ where: eq('owner_id', user.id), limit: 1000 });
        if (keys.items.some((k) => k.source === 'user' && usable(k, Date.now()))) return true;
      }
    }
    return false;
  }

  // Authentication

  /**
   * The caller presenting `presented` (a user's access key or a configured key), or the local
   * admin when no key is needed (no users, no configured keys, loopback). Throws UNAUTHORIZED
   * (missing, unknown, revoked or expired key, disabled user), StorageError.
   */
  async authenticate(args: { presented: string | undefined }): Promise<Caller> {
    await this.fresh();
    const presented = args.presented;
    if (!this.required) {
      if (this.allowLocal) return localAdmin;
      throw unauthorized('no access key exists yet: create one with `otto users create --username <name> --admin`');
    }
    if (!presented) throw unauthorized('send your access key as `Authorization: Bearer <key>` or `X-API-Key: <key>`');
    if (presented.length < 16 || presented.length > 512) throw unauthorized('that access key is not valid');
    const hash = Buffer.from(hashKey(presented), 'hex');
    const prefix = accessKeyPrefix(presented);
    if (prefix) {
      const candidates = await this.keysWithPrefix(prefix);
      const now = Date.now();
      for (const key of candidates) {
        if (!timingSafeEqual(Buffer.from(key.key_hash, 'hex'), hash)) continue;
        if (key.revoked_at) throw unauthorized('that access key was revoked');
        if (key.expires_at && Date.parse(key.expires_at) <= now) throw unauthorized('that access key has expired');
        const user = await this.cachedUser(key.owner_id);
        if (!user) throw unauthorized('that access key is not valid');
        if (user.disabled) throw unauthorized('this user is disabled');
        this.touch(key, now);
        return this.callerFor(user, key.id);
      }
      throw unauthorized('that access key is not valid');
    }
    for (const { owner, hash: known } of this.configured.values()) {
      if (timingSafeEqual(known, hash)) return { owner_id: owner, admin: true, user_id: null, username: owner, role: 'admin', permissions: allPermissions, auth: 'config' };
    }
    throw unauthorized('that access key is not valid');
  }

  /** What `GET /me` says about a caller. */
  async me(caller: Caller): Promise<MeView> {
    const permissions = [...(caller.admin ? allPermissions : (caller.permissions ?? []))];
    if (caller.auth === 'key' && caller.user_id) {
      const user = await this.getUser({ id: caller.user_id });
      return { user: { id: user.id, username: user.username, email: user.email, display_name: user.display_name, role: user.role }, permissions, auth: 'key' };
    }
    const name = caller.username ?? caller.owner_id;
    return {
      user: { id: caller.owner_id, username: name, email: null, display_name: caller.auth === 'config' ? `${name} (configured key)` : 'Local admin', role: caller.role ?? 'admin' },
      permissions,
      auth: caller.auth === 'config' ? 'config' : 'local',
    };
  }

  private callerFor(user: User, keyId: string): Caller {
    const admin = user.role === 'admin';
    return {
      owner_id: user.id,
      admin,
      user_id: user.id,
      username: user.username,
      role: user.role,
      permissions: admin ? allPermissions : (this.rolePermissions.get(user.role) ?? []),
      auth: 'key',
      key_id: keyId,
    };
  }

  /** Writes `last_used_at` in the background, at most once per LAST_USED_WRITE_MS per key. */
  private touch(key: ApiKeyRecord, now: number): void {
    const last = this.lastUsedWrites.get(key.id);
    if (last !== undefined && now - last < LAST_USED_WRITE_MS) return;
    this.lastUsedWrites.set(key.id, now);
    void this.keys.update({ id: key.id, patch: { last_used_at: new Date(now).toISOString() } }).catch((error: unknown) => {
      if (!isStorageError(error, 'NOT_FOUND')) this.onError(error);
    });
  }

  private async keysWithPrefix(prefix: string): Promise<ApiKeyRecord[]> {
    // Filled into the map current when the read began: a reload meanwhile starts a new map.
    const cache = this.keysByPrefix;
    let found = cache.get(prefix);
    if (!found) {
      found = (await this.keys.find({ where: eq('prefix', prefix), limit: 10 })).items.filter((k) => k.source === 'user');
      if (cache.size >= MAX_CACHED_PREFIXES) cache.clear();
      cache.set(prefix, found);
    }
    return found;
  }

  private async cachedUser(id: string): Promise<User | null> {
    const cache = this.usersById;
    if (cache.has(id)) return cache.get(id)!;
    const user = await this.users.get({ id });
    if (cache.size >= MAX_CACHED_PREFIXES) cache.clear();
    cache.set(id, user);
    return user;
  }

  /**
   * Makes sure the caches are at least as new as the store was when this call began: waits for
   * a revision read that started after the call (sharing it with concurrent calls) and reloads
   * when the revision moved. Throws StorageError.
   */
  private fresh(): Promise<void> {
    if (!this.inflight) {
      this.inflight = this.check().finally(() => (this.inflight = undefined));
      return this.inflight;
    }
    // The read in flight may have started before this call: wait for the next one.
    this.queued ??= this.inflight
      .catch(() => {})
      .then(() => {
        this.queued = undefined;
        return this.fresh();
      });
    return this.queued;
  }

  private async check(): Promise<void> {
    let revision: number;
    try {
      revision = Number((await this.counters.get({ id: AUTH_REVISION_ID }))?.value ?? 0);
    } catch (error) {
      // Primary unreachable (degraded mode): nobody can commit a revocation to it either, so
      // the caches stay as good as they were. Never on a first load.
      if (isStorageError(error, 'UNAVAILABLE') && this.revision !== -1) {
        this.onError(error);
        return;
      }
      throw error;
    }
    await this.recordConfigured();
    if (revision === this.revision) return;
    const table = new Map<Role, Permission[]>();
    for (const role of roles) table.set(role, [...defaultRolePermissions[role]]);
    for (const record of (await this.rolesTable.find({ limit: 100 })).items) if (roles.includes(record.role)) table.set(record.role, sanitize(record.role, record.permissions));
    const anyUser = (await this.users.find({ limit: 1 })).items.length > 0;
    this.rolePermissions = table;
    this.anyUser = anyUser;
    this.keysByPrefix = new Map();
    this.usersById = new Map();
    this.revision = revision;
  }

  /** Records a change to users, keys or roles: every process drops its caches on its next request. Throws StorageError. */
  private async bump(): Promise<void> {
    await this.counters.increment({ id: AUTH_REVISION_ID, field: 'value' });
    this.revision = -1;
  }

  // Users

  /** Creates a user (role `builder` unless given). Throws INVALID, DUPLICATE (username taken). */
  async createUser(args: { input: UserInput }): Promise<User> {
    const input = validateInput<UserInput>('UserCreate', args.input);
    const username = input.username.toLowerCase();
    let user: User;
    try {
      user = await this.users.insert({
        doc: { id: newId('usr'), username, email: input.email ?? null, display_name: input.display_name?.trim() || username, role: input.role ?? 'builder', disabled: input.disabled ?? false },
      });
    } catch (error) {
      if (isStorageError(error, 'DUPLICATE')) throw new OttoError('DUPLICATE', `the username ${username} is taken`, { field: 'username', cause: error });
      throw error;
    }
    await this.bump();
    return user;
  }

  /** Users, oldest first, one cursor page at a time. Throws INVALID for a bad cursor. */
  async listUsers(args: { after?: string | null; limit?: number } = {}): Promise<Page<User>> {
    return this.users.find({ after: args.after, limit: args.limit ?? 100 });
  }

  /** The user with this id. Throws NOT_FOUND. */
  async getUser(args: { id: string }): Promise<User> {
    const user = await this.users.get({ id: args.id });
    if (!user) throw new OttoError('NOT_FOUND', `user ${args.id} not found`, { field: 'id' });
    return user;
  }

  /** The user with this id or username (case-insensitive). Throws NOT_FOUND. */
  async findUser(args: { ref: string }): Promise<User> {
    const byId = await this.users.get({ id: args.ref });
    if (byId) return byId;
    const byName = (await this.users.find({ where: eq('username', args.ref.toLowerCase()), limit: 1 })).items[0];
    if (!byName) throw new OttoError('NOT_FOUND', `no user ${args.ref}`, { field: 'user' });
    return byName;
  }

  /**
   * Changes a user's email, display name, role or disabled flag (guarded by `version`).
   * Throws NOT_FOUND, INVALID, CONFLICT, FORBIDDEN (an admin removing their own admin access).
   */
  async updateUser(args: { caller: Caller; id: string; patch: UserPatch }): Promise<User> {
    const { version, ...patch } = validateInput<UserPatch>('UserPatch', args.patch);
    await this.getUser({ id: args.id });
    if (args.caller.user_id === args.id && ((patch.role !== undefined && patch.role !== 'admin') || patch.disabled === true)) {
      throw new OttoError('FORBIDDEN', 'you cannot take away your own admin access; ask another admin', { field: patch.disabled ? 'disabled' : 'role' });
    }
    const changes: Partial<User> = { ...patch };
    if (patch.display_name !== undefined) changes.display_name = patch.display_name.trim();
    let user: User;
    try {
      user = await this.users.update({ id: args.id, patch: changes, expectVersion: version });
    } catch (error) {
      if (isStorageError(error, 'CONFLICT')) throw new OttoError('CONFLICT', 'the user was changed by someone else since you read it; reload and try again', { field: 'version', cause: error });
      throw error;
    }
    await this.bump();
    return user;
  }

  /** Deletes a user and their keys (their other data is the caller's business: see `purgeOwner`). Throws NOT_FOUND, FORBIDDEN (yourself). */
  async deleteUser(args: { caller: Caller; id: string }): Promise<void> {
    await this.getUser({ id: args.id });
    if (args.caller.user_id === args.id) throw new OttoError('FORBIDDEN', 'you cannot delete yourself; ask another admin', { field: 'id' });
    await this.keys.deleteMany({ where: eq('owner_id', args.id) });
    await this.users.delete({ id: args.id });
    await this.bump();
  }

  // Keys

  /**
   * Creates an access key for a user. Returns its view and the secret, which is shown this once
   * and never stored. Throws NOT_FOUND (user), INVALID (bad expiry, or one in the past).
   */
  async createKey(args: { user_id: string; input?: KeyInput }): Promise<{ key: KeyView; secret: string }> {
    const input = validateInput<KeyInput>('KeyCreate', args.input ?? {});
    const user = await this.getUser({ id: args.user_id });
    let expires_at: string | null = null;
    if (input.expires_at && input.expires_in_days !== undefined) throw new OttoError('INVALID', 'give expires_at or expires_in_days, not both', { field: 'expires_in_days' });
    if (input.expires_at) {
      const at = Date.parse(input.expires_at);
      if (!Number.isFinite(at)) throw new OttoError('INVALID', 'expires_at must be an ISO date-time', { field: 'expires_at' });
      if (at <= Date.now()) throw new OttoError('INVALID', 'expires_at must be in the future', { field: 'expires_at' });
      expires_at = new Date(at).toISOString();
    } else if (input.expires_in_days !== undefined) {
      expires_at = new Date(Date.now() + input.expires_in_days * 86_400_000).toISOString();
    }
    const made = newAccessKey();
    const stored = await this.keys.insert({
      doc: { id: newId('key'), owner_id: user.id, user_id: user.id, key_hash: made.hash, prefix: made.prefix, name: input.name?.trim() || 'access key', source: 'user', last_used_at: null, expires_at, revoked_at: null },
    });
    await this.bump();
    return { key: keyView(stored), secret: made.secret };
  }

  /** A user's access keys (every user's when `user_id` is omitted), oldest first. Throws INVALID for a bad cursor. */
  async listKeys(args: { user_id?: string; after?: string | null; limit?: number } = {}): Promise<Page<KeyView>> {
    const page = await this.keys.find({ where: args.user_id === undefined ? eq('source', 'user') : and(eq('owner_id', args.user_id), eq('source', 'user')), after: args.after, limit: args.limit ?? 100 });
    return { items: page.items.map(keyView), next: page.next };
  }

  /**
   * Revokes a key by id or prefix (`otto_…`), only among `user_id`'s keys when given (another
   * user's key is NOT_FOUND, like an unknown one). Revoking twice keeps the first time.
   * Returns the key. Throws NOT_FOUND.
   */
  async revokeKey(args: { ref: string; user_id?: string }): Promise<KeyView> {
    let key = await this.keys.get({ id: args.ref });
    if (!key && args.ref.startsWith('otto_')) key = (await this.keys.find({ where: eq('prefix', args.ref.slice(0, 15)), limit: 1 })).items[0] ?? null;
    if (!key || key.source !== 'user' || (args.user_id !== undefined && key.owner_id !== args.user_id)) throw new OttoError('NOT_FOUND', `access key ${args.ref} not found`, { field: 'key_id' });
    if (key.revoked_at) return keyView(key);
    const revoked = await this.keys.update({ id: key.id, patch: { revoked_at: new Date().toISOString() } });
    await this.bump();
    return keyView(revoked);
  }

  // Roles

  /** Every role with its permissions (the stored table; defaults for a role not stored). Throws StorageError. */
  async listRolePermissions(): Promise<Array<{ role: Role; permissions: Permission[]; updated_at: string | null; version: number | null }>> {
    const stored = new Map((await this.rolesTable.find({ limit: 100 })).items.map((r) => [r.role, r]));
    return roles.map((role) => {
      const record = stored.get(role);
      return { role, permissions: record ? sanitize(role, record.permissions) : [...defaultRolePermissions[role]], updated_at: record?.updated_at ?? null, version: record?.version ?? null };
    });
  }

  /**
   * Replaces a role's permissions; takes effect on the next request of every process.
   * Throws INVALID (unknown role or permission, or an admin-only permission for another role),
   * FORBIDDEN (the admin role always holds every permission).
   */
  async setRolePermissions(args: { role: string; input: { permissions: Permission[] } }): Promise<{ role: Role; permissions: Permission[]; updated_at: string; version: number }> {
    if (!(roles as readonly string[]).includes(args.role)) throw new OttoError('NOT_FOUND', `no role ${args.role}; roles are ${roles.join(', ')}`, { field: 'role' });
    const role = args.role as Role;
    if (role === 'admin') throw new OttoError('FORBIDDEN', 'the admin role always has every permission', { field: 'role' });
    const input = validateInput<{ permissions: Permission[] }>('RolePermissionsPut', args.input);
    const reserved = input.permissions.find((p) => adminOnlyPermissions.includes(p));
    if (reserved) throw new OttoError('INVALID', `${reserved} belongs to admins only`, { field: 'permissions' });
    const permissions = allPermissions.filter((p) => input.permissions.includes(p));
    const record = await this.rolesTable.upsert({ doc: { id: role, role, permissions } });
    await this.bump();
    return { role, permissions: record.permissions, updated_at: record.updated_at, version: record.version };
  }
}

/** A key that is neither revoked nor expired at `now`. */
function usable(key: ApiKeyRecord, now: number): boolean {
  return !key.revoked_at && (!key.expires_at || Date.parse(key.expires_at) > now);
}

/** A stored permission list reduced to known permissions (admin-only ones only for admins). */
function sanitize(role: Role, permissions: unknown): Permission[] {
  if (role === 'admin') return [...allPermissions];
  const list = Array.isArray(permissions) ? permissions : [];
  return allPermissions.filter((p) => list.includes(p) && !adminOnlyPermissions.includes(p));
}
