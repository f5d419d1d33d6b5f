/**
 * The keys that encrypt Otto's stored secrets (`OTTO_SECRET_KEY`).
 *
 * Format: one key, or a comma-separated list of `kid:key` entries. Each key is 32 random bytes
 * written as base64 (44 characters) or hex (64 characters), e.g. from `openssl rand -base64 32`.
 * The first key encrypts; every listed key decrypts. A key given without a kid gets a stable
 * one derived from it (`k` + 8 hex digits of its sha256), so the same key always has the same id.
 *
 * Rotation: put the new key first and keep the old one after it
 * (`OTTO_SECRET_KEY=k2:<new>,k1:<old>`), restart every Otto, run `otto secrets rotate`, then
 * drop the old key. Until rotation completes, both decrypt, so nothing stops working.
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';

/** One secret key and its id (stored beside every value it encrypts). */
export interface SecretKey {
  id: string;
  key: Buffer;
}

/** How to make a key, quoted in every message about a missing or bad one. */
export const SECRET_KEY_HINT = 'create one with `openssl rand -base64 32` and set OTTO_SECRET_KEY to it';

/**
 * Parses `OTTO_SECRET_KEY`. Returns the keys (first encrypts) and the problems found, each a
 * sentence naming the variable; never quotes a key.
 */
export function parseSecretKeys(value: string | undefined): { keys: SecretKey[]; problems: string[] } {
  const keys: SecretKey[] = [];
  const problems: string[] = [];
  const entries = (value ?? '').split(',').map((e) => e.trim()).filter(Boolean);
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const kid = colon > 0 ? entry.slice(0, colon) : undefined;
    const text = colon > 0 ? entry.slice(colon + 1).trim() : entry;
    const where = entries.length > 1 ? `OTTO_SECRET_KEY entry ${i + 1}` : 'OTTO_SECRET_KEY';
    if (kid !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(kid)) {
      problems.push(`${where}: the key id must be 1-32 letters, digits, _ or -`);
      continue;
    }
    const key = decodeKey(text);
    if (!key) {
      problems.push(`${where} must be 32 bytes as base64 (44 characters) or hex (64 characters); ${SECRET_KEY_HINT}`);
      continue;
    }
    const id = kid ?? `k${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;
    if (keys.some((k) => k.id === id)) {
      problems.push(`${where}: the key id ${id} is listed twice`);
      continue;
    }
    keys.push({ id, key });
  }
  return { keys, problems };
}

function decodeKey(text: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const key = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (key.length === 32) return key;
  }
  return undefined;
}

/**
 * The configured secret keys. Printing, inspecting or serialising it shows only the key ids,
 * never a key.
 */
export class Keyring {
  readonly #keys: SecretKey[];

  constructor(keys: SecretKey[]) {
    this.#keys = keys.map((k) => ({ id: k.id, key: Buffer.from(k.key) }));
  }

  /** True when at least one key is configured (secrets can be stored). */
  get configured(): boolean {
    return this.#keys.length > 0;
  }

  /** The key that encrypts new values, or undefined when none is configured. */
  get current(): SecretKey | undefined {
    return this.#keys[0];
  }

  /** The ids of every key, the current one first. */
  get ids(): string[] {
    return this.#keys.map((k) => k.id);
  }

  /** The key with this id, or undefined when it is not configured. */
  find(id: string): SecretKey | undefined {
    return this.#keys.find((k) => k.id === id);
  }

  toJSON(): { kids: string[] } {
    return { kids: this.ids };
  }

  [inspect.custom](): string {
    return `Keyring(${this.ids.join(', ') || 'no keys'})`;
  }
}
