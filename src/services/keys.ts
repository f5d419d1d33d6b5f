import { createHash, randomBytes } from 'node:crypto';

/** The hash Otto stores for an API key (sha256, hex). The key itself is never stored. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const PREFIX_CHARS = 10;
const SECRET_CHARS = 40;

/** How an access key looks: `otto_<10-char prefix>_<40-char secret>` (Crockford base32, lowercase). */
export const ACCESS_KEY_PATTERN = /^otto_([0-9a-hjkmnp-tv-z]{10})_([0-9a-hjkmnp-tv-z]{40})$/;

function randomText(chars: number): string {
  const bytes = randomBytes(chars);
  let out = '';
  for (const b of bytes) out += ALPHABET[b & 31];
  return out;
}

/**
 * A new access key: the secret to show once, its lookup prefix (`otto_<prefix>`, stored in
 * the clear and indexed) and its sha256 hash (stored). 200 random bits of secret.
 */
export function newAccessKey(): { secret: string; prefix: string; hash: string } {
  const prefix = `otto_${randomText(PREFIX_CHARS)}`;
  const secret = `${prefix}_${randomText(SECRET_CHARS)}`;
  return { secret, prefix, hash: hashKey(secret) };
}

/** The lookup prefix of a presented access key (`otto_<prefix>`), or null when it is not shaped like one. */
export function accessKeyPrefix(presented: string): string | null {
  const match = ACCESS_KEY_PATTERN.exec(presented);
  return match ? `otto_${match[1]}` : null;
}
