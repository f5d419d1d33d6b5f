/**
 * Encryption of stored secrets: AES-256-GCM, a random 96-bit nonce per value, the id of the
 * key that encrypted it stored beside it. A stored secret is a plain JSON object:
 *
 *     {"otto_secret": 1, "kid": "k1", "iv": "<base64 12 bytes>", "ct": "<base64>", "tag": "<base64 16 bytes>"}
 *
 * so it is stored the same way on every engine, copied as-is by mirrors and transfers, and
 * re-encrypted in place by `otto secrets rotate`. The plaintext is never stored, logged or
 * returned by the API (which shows `mask()` instead).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { OttoError } from '../domain/errors.ts';
import { SECRET_KEY_HINT, type Keyring } from './keyring.ts';

/** A secret as stored. */
export interface EncryptedSecret {
  otto_secret: 1;
  /** The id of the key that encrypted it (see `Keyring`). */
  kid: string;
  iv: string;
  ct: string;
  tag: string;
}

const ALGORITHM = 'aes-256-gcm';
/** Binds ciphertexts to this format: a value copied from elsewhere does not decrypt. */
const AAD = Buffer.from('otto-secret-v1');

/** True when `value` has the stored shape of a secret. */
export function isEncryptedSecret(value: unknown): value is EncryptedSecret {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.otto_secret === 1 && typeof v.kid === 'string' && typeof v.iv === 'string' && typeof v.ct === 'string' && typeof v.tag === 'string';
}

/**
 * A secret shown safely: a recognisable head (up to 3 characters, only for values of 12 or
 * more) and the last 4, e.g. `sk-…abcd`; short values show as `…` plus at most their last 2.
 */
export function maskSecret(plain: string): string {
  if (plain.length >= 12) return `${plain.slice(0, 3)}…${plain.slice(-4)}`;
  if (plain.length >= 6) return `…${plain.slice(-2)}`;
  return '…';
}

/** Encrypts and decrypts secrets with a keyring. */
export interface SecretBox {
  /** True when a key is configured, so secrets can be stored. */
  readonly enabled: boolean;
  /** The id of the key new values are encrypted with (undefined without keys). */
  readonly currentKeyId: string | undefined;
  /**
   * Encrypts `plain` under the current key with a fresh random nonce. Throws OttoError
   * `SECRETS_DISABLED` (HTTP 409) when no key is configured, saying how to create one.
   */
  encrypt(plain: string): EncryptedSecret;
  /**
   * Decrypts a stored secret. Throws OttoError `SECRETS_DISABLED` without keys, `SECRET_KEY_MISSING`
   * when the key it was encrypted with is not configured any more, `SECRET_CORRUPT` when it does
   * not authenticate (tampered, or a different key with the same id).
   */
  decrypt(secret: EncryptedSecret): string;
  /** True when the value was encrypted with a key other than the current one. */
  needsRotation(secret: EncryptedSecret): boolean;
}

/** Builds the secret box of a keyring. */
export function createSecretBox(keyring: Keyring): SecretBox {
  const refuse = () =>
    new OttoError('SECRETS_DISABLED', `secrets cannot be stored or read: OTTO_SECRET_KEY is not set; ${SECRET_KEY_HINT}, then restart Otto`, { field: 'OTTO_SECRET_KEY' });
  return {
    get enabled() {
      return keyring.configured;
    },
    get currentKeyId() {
      return keyring.current?.id;
    },
    encrypt(plain) {
      const current = keyring.current;
      if (!current) throw refuse();
      const iv = randomBytes(12);
      const cipher = createCipheriv(ALGORITHM, current.key, iv);
      cipher.setAAD(AAD);
      const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return { otto_secret: 1, kid: current.id, iv: iv.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
    },
    decrypt(secret) {
      if (!keyring.configured) throw refuse();
      const key = keyring.find(secret.kid);
      if (!key) {
        throw new OttoError('SECRET_KEY_MISSING', `a stored secret was encrypted with key ${secret.kid}, which OTTO_SECRET_KEY no longer lists; add it back (after the current key) and run \`otto secrets rotate\``);
      }
      try {
        const decipher = createDecipheriv(ALGORITHM, key.key, Buffer.from(secret.iv, 'base64'));
        decipher.setAAD(AAD);
        decipher.setAuthTag(Buffer.from(secret.tag, 'base64'));
        return Buffer.concat([decipher.update(Buffer.from(secret.ct, 'base64')), decipher.final()]).toString('utf8');
      } catch (error) {
        throw new OttoError('SECRET_CORRUPT', `a stored secret does not decrypt with key ${secret.kid} (altered, or a different key under the same id)`, { cause: error });
      }
    },
    needsRotation(secret) {
      return keyring.current !== undefined && secret.kid !== keyring.current.id;
    },
  };
}
