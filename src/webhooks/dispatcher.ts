/**
 * Sends pending webhook deliveries: claims each due one (an optimistic version check, so one
 * process sends it), POSTs it signed, records the attempt, and schedules a retry with
 * exponential backoff (`backoffMs`·2^(n−1), at most an hour) until `maxAttempts`. A claim
 * lasts a few timeouts: a process that dies mid-send leaves the delivery to be sent again
 * (receivers dedupe by `Otto-Event-Id`). Nothing here runs in a chat turn.
 */
import { hostname } from 'node:os';
import { collections } from '../domain/index.ts';
import { ottoVersion } from '../version.ts';
import { isIn, isStorageError, lte, and, type Collection, type Store } from '../storage/index.ts';
import { InterruptibleSleep } from '../storage/interruptible-sleep.ts';
import type { WebhookDelivery } from './outbox.ts';
import { signWebhook } from './signing.ts';
import type { WebhookConfig, WebhookService } from './webhook-configs.ts';

export interface DispatcherOptions {
  timeoutMs: number;
  maxAttempts: number;
  backoffMs: number;
  intervalMs: number;
  /** Deliveries sent at once; default 8. */
  concurrency?: number;
  onEvent?: (line: string) => void;
}

const MAX_BACKOFF_MS = 3_600_000;
const KEPT_ATTEMPTS = 20;

/** The delay before attempt `n + 1` after `n` failed ones. */
export function retryDelay(backoffMs: number, failed: number): number {
  return Math.min(backoffMs * 2 ** Math.max(0, failed - 1), MAX_BACKOFF_MS);
}

/** The background sender of webhook deliveries. */
export class WebhookDispatcher {
  private readonly deliveries: Collection<WebhookDelivery>;
  private readonly webhooks: WebhookService;
  private readonly options: Required<Omit<DispatcherOptions, 'onEvent'>> & Pick<DispatcherOptions, 'onEvent'>;
  private readonly owner = `${hostname()}:${process.pid}`;
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = true;
  private running: Promise<void> | undefined;
  private readonly pause = new InterruptibleSleep();
  private woken = false;

  private constructor(deliveries: Collection<WebhookDelivery>, webhooks: WebhookService, options: DispatcherOptions) {
    this.deliveries = deliveries;
    this.webhooks = webhooks;
    this.options = { concurrency: 8, ...options };
  }

  /** Opens the deliveries collection. Throws StorageError. */
  static async open(args: { store: Store; webhooks: WebhookService; options: DispatcherOptions }): Promise<WebhookDispatcher> {
    return new WebhookDispatcher(await args.store.collection<WebhookDelivery>(collections.webhook_deliveries), args.webhooks, args.options);
  }

  /** Starts the loop (idempotent). Never throws; failures are reported through `onEvent` and retried. */
  start(): void {
    if (this.running) return;
    this.stopped = false;
    this.running = this.loop().finally(() => (this.running = undefined));
  }

  /** Looks for due deliveries now (called when new ones are enqueued). */
  wake(): void {
    this.woken = true;
    this.pause.wake();
  }

  /** Stops the loop and waits for the requests in flight (each ends by its timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.pause.wake();
    await this.running;
    await Promise.allSettled([...this.inFlight]);
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let found = 0;
      try {
        this.woken = false;
        found = await this.round();
        failures = 0;
      } catch (error) {
        failures++;
        this.event(`webhooks: cannot read deliveries: ${(error as Error).message}`);
        await this.pause.sleep(Math.min(this.options.intervalMs * 2 ** failures, 30_000));
        continue;
      }
      if (found === 0 && !this.woken) await this.pause.sleep(this.options.intervalMs);
      else if (this.inFlight.size >= this.options.concurrency) await Promise.race(this.inFlight);
    }
  }

  /** Claims and starts sending up to the free concurrency; returns how many were started. */
  private async round(): Promise<number> {
    const free = this.options.concurrency - this.inFlight.size;
    if (free <= 0) return 0;
    const now = new Date().toISOString();
    const page = await this.deliveries.find({
      where: and(isIn('status', ['pending', 'sending']), lte('next_attempt_at', now)),
      sort: [{ field: 'next_attempt_at', direction: 'asc' }],
      limit: free,
    });
    let started = 0;
    for (const delivery of page.items) {
      const claimed = await this.claim(delivery);
      if (!claimed) continue;
      started++;
      const sending: Promise<void> = this.send(claimed)
        .catch((error) => this.event(`webhooks: delivery ${claimed.id} failed to record: ${(error as Error).message}`))
        .finally(() => {
          this.inFlight.delete(sending);
          this.wake();
        });
      this.inFlight.add(sending);
    }
    return started;
  }

  private async claim(delivery: WebhookDelivery): Promise<WebhookDelivery | null> {
    const lease = new Date(Date.now() + this.options.timeoutMs * 2 + 1000).toISOString();
    try {
      return await this.deliveries.update({ id: delivery.id, patch: { status: 'sending', next_attempt_at: lease, claimed_by: this.owner } as never, expectVersion: delivery.version });
    } catch (error) {
      if (isStorageError(error, 'CONFLICT') || isStorageError(error, 'NOT_FOUND')) return null;
      throw error;
    }
  }

  private async send(delivery: WebhookDelivery): Promise<void> {
    const config = await this.webhooks.configs.get({ id: delivery.webhook_id });
    if (!config || !config.enabled) {
      await this.record(delivery, { status: 'cancelled', last_error: config ? 'the webhook is disabled' : 'the webhook was deleted' });
      return;
    }
    const n = delivery.attempt_count + 1;
    const started = Date.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      statusCode = await this.post(config, delivery, n);
      if (statusCode < 200 || statusCode > 299) error = `HTTP ${statusCode}`;
    } catch (e) {
      error = describe(e, this.options.timeoutMs);
    }
    const attempt = { n, at: new Date(started).toISOString(), status_code: statusCode, error, duration_ms: Date.now() - started };
    const attempts = [...delivery.attempts, attempt].slice(-KEPT_ATTEMPTS);
    if (error === null) {
      await this.record(delivery, { status: 'delivered', attempt_count: n, attempts, last_error: null, delivered_at: attempt.at });
    } else if (n >= this.options.maxAttempts) {
      await this.record(delivery, { status: 'failed', attempt_count: n, attempts, last_error: error });
      this.event(`webhooks: gave up on delivery ${delivery.id} (${delivery.event_id}) after ${n} attempts: ${error}`);
    } else {
      const next = new Date(Date.now() + retryDelay(this.options.backoffMs, n)).toISOString();
      await this.record(delivery, { status: 'pending', attempt_count: n, attempts, last_error: error, next_attempt_at: next });
    }
  }

  /** POSTs one attempt; returns the status code. Throws on network failure or timeout. */
  private async post(config: WebhookConfig, delivery: WebhookDelivery, attempt: number): Promise<number> {
    const body = JSON.stringify(delivery.payload);
    const timestamp = Math.floor(Date.now() / 1000);
    const response = await fetch(config.url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(this.options.timeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': `Otto-Webhooks/${ottoVersion}`,
        'otto-event': delivery.event,
        'otto-event-id': delivery.event_id,
        'otto-delivery-id': delivery.id,
        'otto-attempt': String(attempt),
        'otto-signature': signWebhook({ secret: this.webhooks.secretOf(config), timestamp, body }),
      },
      body,
    });
    await response.body?.cancel().catch(() => {});
    return response.status;
  }

  private async record(delivery: WebhookDelivery, patch: Partial<WebhookDelivery>): Promise<void> {
    const current = await this.deliveries.get({ id: delivery.id });
    // Another process reclaimed it after our claim expired: its outcome wins.
    if (!current || current.claimed_by !== this.owner || current.status !== 'sending') return;
    try {
      await this.deliveries.update({ id: delivery.id, patch: patch as never, expectVersion: current.version });
    } catch (error) {
      if (!isStorageError(error, 'CONFLICT')) throw error;
    }
  }

  private event(line: string): void {
    try {
      this.options.onEvent?.(line);
    } catch {
      // reporting never breaks the loop
    }
  }

}

function describe(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const reason = e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
  return `could not connect: ${reason}`.slice(0, 300);
}
