import { createHash, timingSafeEqual } from 'node:crypto';
import { collections, newId, type ApiKeyRecord } from '../domain/index.ts';
import { eq, type Collection, type Store } from '../storage/index.ts';
import type { Caller } from './caller.ts';

/** The hash Otto stores for an API key (sha256, hex). The key itself is never stored. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * API keys: configured keys are stored hashed at startup; requests are matched by hash.
 * Matches are cached in memory, so checking a key costs no store round trip.
 */
export class KeyService {
  private readonly keys: Collection<ApiKeyRecord>;
  private readonly byHash = new Map<string, Caller>();

  private constructor(keys: Collection<ApiKeyRecord>) {
    this.keys = keys;
  }

  /** Opens the key collection and stores the configured keys (hashed). Throws StorageError. */
  static async open(store: Store, configured: Array<{ owner: string; key: string }>): Promise<KeyService> {
    const service = new KeyService(await store.collection<ApiKeyRecord>(collections.api_keys));
    for (const { owner, key } of configured) {
      const key_hash = hashKey(key);
      const existing = (await service.keys.find({ where: eq('key_hash', key_hash), limit: 1 })).items[0];
      if (!existing) {
        await service.keys.insert({ doc: { id: newId('key'), owner_id: owner, key_hash, prefix: key.slice(0, 6), name: `${owner} (configured)`, source: 'config' } });
      }
      service.byHash.set(key_hash, { owner_id: existing?.owner_id ?? owner, admin: false });
    }
    return service;
  }

  /** True when any key is configured (then every route but /health and /ready needs one). */
  get required(): boolean {
    return this.byHash.size > 0;
  }

  /** The caller a presented key belongs to, or null when it is not a known key. Never throws for bad input. */
  authenticate(presented: string): Caller | null {
    if (typeof presented !== 'string' || presented.length < 16 || presented.length > 512) return null;
    const hash = hashKey(presented);
    for (const [known, caller] of this.byHash) {
      if (timingSafeEqual(Buffer.from(known, 'hex'), Buffer.from(hash, 'hex'))) return caller;
    }
    return null;
  }
}
