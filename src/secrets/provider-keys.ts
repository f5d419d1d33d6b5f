/**
 * Provider API keys, stored encrypted: per user (`user_api_keys`, owned) and global
 * (`global_api_keys`, admins only), as in the Atlas seed. A turn of a bot uses its owner's key
 * for the provider, else a global key, else the configured `OTTO_LLM_API_KEY`.
 */
import { collections, newId } from '../domain/index.ts';
import { OttoError } from '../domain/errors.ts';
import type { Caller } from '../services/caller.ts';
import { and, eq, isStorageError, type Collection, type Page, type Store, type StoredMeta } from '../storage/index.ts';
import { maskSecret, type EncryptedSecret, type SecretBox } from './secret-box.ts';

/** A stored provider key (the value encrypted). `owner_id` only on user keys. */
export interface ProviderKeyRecord extends StoredMeta {
  owner_id?: string;
  /** Which provider it is for, e.g. `openai`. */
  provider: string;
  /** A name to tell several keys of one provider apart; `default` unless given. */
  name: string;
  value: EncryptedSecret;
  /** The key shown safely, e.g. `sk-…abcd`. */
  masked: string;
}

/** A provider key as the API shows it: never the value, only `masked`. */
export type ProviderKeyView = Omit<ProviderKeyRecord, 'value'> & { scope: 'user' | 'global' };

/** What creating a key takes. */
export interface ProviderKeyInput {
  provider: string;
  name?: string;
  value: string;
}

const PROVIDER = /^[a-z0-9][a-z0-9_.-]{0,39}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$/;

function view(record: ProviderKeyRecord, scope: 'user' | 'global'): ProviderKeyView {
  const { value: _value, ...rest } = record;
  return { ...rest, scope };
}

function checkInput(input: ProviderKeyInput): { provider: string; name: string; value: string } {
  if (typeof input?.provider !== 'string' || !PROVIDER.test(input.provider)) throw new OttoError('INVALID', 'provider must be 1-40 lowercase letters, digits, _ . or -, e.g. openai', { field: 'provider' });
  const name = input.name ?? 'default';
  if (typeof name !== 'string' || !NAME.test(name)) throw new OttoError('INVALID', 'name must be 1-64 letters, digits, spaces, _ . or -', { field: 'name' });
  if (typeof input.value !== 'string' || input.value.trim().length < 8 || input.value.length > 4096 || /\s/.test(input.value.trim())) {
    throw new OttoError('INVALID', 'value must be the key itself: 8-4096 characters without spaces', { field: 'value' });
  }
  return { provider: input.provider, name, value: input.value.trim() };
}

/** User and global provider keys. */
export class ProviderKeyService {
  private readonly user: Collection<ProviderKeyRecord>;
  private readonly global: Collection<ProviderKeyRecord>;
  private readonly box: SecretBox;

  private constructor(user: Collection<ProviderKeyRecord>, global: Collection<ProviderKeyRecord>, box: SecretBox) {
    this.user = user;
    this.global = global;
    this.box = box;
  }

  /** Opens both collections. Throws StorageError. */
  static async open(store: Store, box: SecretBox): Promise<ProviderKeyService> {
    return new ProviderKeyService(await store.collection<ProviderKeyRecord>(collections.user_api_keys), await store.collection<ProviderKeyRecord>(collections.global_api_keys), box);
  }

  /** The caller's own keys, masked, oldest first. Throws StorageError. */
  async listUser(args: { caller: Caller; after?: string | null; limit?: number }): Promise<Page<ProviderKeyView>> {
    const page = await this.user.find({ where: eq('owner_id', args.caller.owner_id), limit: args.limit ?? 100, after: args.after ?? null });
    return { items: page.items.map((r) => view(r, 'user')), next: page.next };
  }

  /**
   * Stores a key of the caller's, encrypted. Returns it masked. Throws INVALID, SECRETS_DISABLED
   * (no OTTO_SECRET_KEY), DUPLICATE (the caller has a key with this provider and name).
   */
  async createUser(args: { caller: Caller; input: ProviderKeyInput }): Promise<ProviderKeyView> {
    const input = checkInput(args.input);
    const value = this.box.encrypt(input.value);
    const record = await this.insert(this.user, { id: newId('upk'), owner_id: args.caller.owner_id, provider: input.provider, name: input.name, value, masked: maskSecret(input.value) });
    return view(record, 'user');
  }

  /** Deletes one of the caller's keys. Throws NOT_FOUND for an unknown id or another owner's key. */
  async deleteUser(args: { caller: Caller; id: string }): Promise<void> {
    const record = await this.user.get({ id: args.id });
    if (!record || record.owner_id !== args.caller.owner_id) throw new OttoError('NOT_FOUND', `provider key ${args.id} not found`);
    await this.user.delete({ id: record.id });
  }

  /** Global keys, masked. Throws FORBIDDEN for non-admins. */
  async listGlobal(args: { caller: Caller; after?: string | null; limit?: number }): Promise<Page<ProviderKeyView>> {
    this.requireAdmin(args.caller);
    const page = await this.global.find({ limit: args.limit ?? 100, after: args.after ?? null });
    return { items: page.items.map((r) => view(r, 'global')), next: page.next };
  }

  /** Stores a global key, encrypted. Throws FORBIDDEN for non-admins; otherwise as `createUser`. */
  async createGlobal(args: { caller: Caller; input: ProviderKeyInput }): Promise<ProviderKeyView> {
    this.requireAdmin(args.caller);
    const input = checkInput(args.input);
    const value = this.box.encrypt(input.value);
    return view(await this.insert(this.global, { id: newId('gpk'), provider: input.provider, name: input.name, value, masked: maskSecret(input.value) }), 'global');
  }

  /** Deletes a global key. Throws FORBIDDEN for non-admins, NOT_FOUND for an unknown id. */
  async deleteGlobal(args: { caller: Caller; id: string }): Promise<void> {
    this.requireAdmin(args.caller);
    if (!(await this.global.delete({ id: args.id }))) throw new OttoError('NOT_FOUND', `global provider key ${args.id} not found`);
  }

  /**
   * The key a bot owned by `ownerId` uses for `provider`: the owner's own (the oldest when
   * there are several), else a global one, else undefined (then the configured key applies).
   * Throws SECRETS_DISABLED / SECRET_KEY_MISSING / SECRET_CORRUPT when a stored key cannot be
   * decrypted, StorageError.
   */
  async keyFor(args: { ownerId: string; provider: string }): Promise<string | undefined> {
    const own = (await this.user.find({ where: and(eq('owner_id', args.ownerId), eq('provider', args.provider)), limit: 1 })).items[0];
    const found = own ?? (await this.global.find({ where: eq('provider', args.provider), limit: 1 })).items[0];
    return found ? this.box.decrypt(found.value) : undefined;
  }

  private requireAdmin(caller: Caller): void {
    if (!caller.admin) throw new OttoError('FORBIDDEN', 'only admins may see or change global provider keys');
  }

  private async insert(collection: Collection<ProviderKeyRecord>, doc: Omit<ProviderKeyRecord, 'version' | 'created_at' | 'updated_at'>): Promise<ProviderKeyRecord> {
    try {
      return await collection.insert({ doc });
    } catch (error) {
      if (isStorageError(error, 'DUPLICATE')) throw new OttoError('DUPLICATE', `a ${doc.provider} key named ${doc.name} already exists; delete it first`, { field: 'name' });
      throw error;
    }
  }
}
