/**
 * Signatures of outgoing webhook deliveries. Each request carries
 *
 *     Otto-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, `${t}.${raw body}`)>
 *
 * A receiver recomputes v1 over the raw body with its webhook's secret, compares in constant
 * time, and rejects timestamps older than a few minutes (replays).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The `Otto-Signature` header value for a body sent at `timestamp` (unix seconds). */
export function signWebhook(args: { secret: string; timestamp: number; body: string }): string {
  const v1 = createHmac('sha256', args.secret).update(`${args.timestamp}.${args.body}`).digest('hex');
  return `t=${args.timestamp},v1=${v1}`;
}

/**
 * Checks an `Otto-Signature` header against the raw body: true when a `v1` matches and `t` is
 * within `toleranceS` (default 300) of now. Never throws (a malformed header is false).
 */
export function verifyWebhookSignature(args: { secret: string; header: string | undefined; body: string; toleranceS?: number; now?: number }): boolean {
  if (typeof args.header !== 'string') return false;
  const parts = new Map<string, string[]>();
  for (const item of args.header.split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0) continue;
    const key = item.slice(0, eq).trim();
    parts.set(key, [...(parts.get(key) ?? []), item.slice(eq + 1).trim()]);
  }
  const t = Number(parts.get('t')?.[0]);
  if (!Number.isInteger(t)) return false;
  const now = args.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (args.toleranceS ?? 300)) return false;
  const expected = Buffer.from(createHmac('sha256', args.secret).update(`${t}.${args.body}`).digest('hex'));
  return (parts.get('v1') ?? []).some((v) => v.length === expected.length && timingSafeEqual(Buffer.from(v), expected));
}
