import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const TIME_DIGITS = 10;
const RANDOM_DIGITS = 10;

/** The last id's millisecond and random digits (values 0–31), for ids made in the same millisecond. */
let lastTime = -1;
const lastRandom = new Uint8Array(RANDOM_DIGITS);

/**
 * A new id: a prefix, then a millisecond timestamp and randomness in Crockford base32
 * (e.g. `bot_01jz8k…`). Never reused. Ids made by one process sort in the order they were
 * made: within one millisecond (or when the clock steps back) the random part of the
 * previous id is incremented instead of drawn again, so "newest first" lists, which break
 * ties on `created_at` by id, keep that order. Ids from different processes sort by
 * millisecond only.
 */
export function newId(prefix: string): string {
  let time = Date.now();
  if (time > lastTime) {
    if (poolOffset + RANDOM_DIGITS > pool.length) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    for (let i = 0; i < RANDOM_DIGITS; i++) lastRandom[i] = pool[poolOffset + i]! % 32;
    poolOffset += RANDOM_DIGITS;
    lastTime = time;
  } else if (!increment(lastRandom)) {
    // 32^10 ids in one millisecond: move on to the next one.
    lastTime += 1;
  }
  time = lastTime;
  let head = '';
  for (let i = 0; i < TIME_DIGITS; i++) {
    head = ALPHABET[time % 32]! + head;
    time = Math.floor(time / 32);
  }
  let tail = '';
  for (let i = 0; i < RANDOM_DIGITS; i++) tail += ALPHABET[lastRandom[i]!];
  return `${prefix}_${head}${tail}`;
}

/** Adds one to base-32 digits (most significant first). Returns false when they wrapped around to zero. */
function increment(digits: Uint8Array): boolean {
  for (let i = digits.length - 1; i >= 0; i--) {
    if (digits[i]! < 31) {
      digits[i] = digits[i]! + 1;
      return true;
    }
    digits[i] = 0;
  }
  return false;
}

/** Random bytes taken 10 at a time (one system call per 409 ids instead of one per id). */
const pool = Buffer.alloc(4090);
let poolOffset = pool.length;
