/**
 * The webhook outbox: turns committed writes into `webhook_deliveries`, fed from the change
 * log by the mirror machinery (`Mirror` in `src/storage/changes/mirror.ts`): its durable cursor
 * in `_mirrors`, its lease (one process feeds the outbox, others stand by), its batching,
 * backoff and wake-on-commit. The outbox is the mirror's target: a `Store` whose `upsert`
 * records deliveries instead of copying documents. The cursor moves only after a batch's
 * deliveries are stored, so a crash replays the batch, and the unique `(webhook_id, event_id)`
 * index makes the replay add nothing.
 *
 * Events and their ids (deterministic, so replays and coalesced changes dedupe):
 * - `conversation.created` — `conversation.created:<conversation id>`
 * - `message.created` — `message.created:<message id>`
 * - `bot.updated` — `bot.updated:<bot id>:<version>` (the bot as of that version; several
 *   updates in one batch may arrive as one event carrying the latest version)
 * A webhook receives the events of documents written after it was created.
 */
import { collections, newId, type Bot, type Conversation, type Message } from '../domain/index.ts';
import {
  StorageError,
  isStorageError,
  type Capabilities,
  type Collection,
  type CollectionSpec,
  type Doc,
  type Store,
  type StoreHealth,
} from '../storage/index.ts';
import { MIRRORS_SPEC, Mirror, type ChangeLog, type MirrorCursor } from '../storage/changes/index.ts';
import { mirrorId, parseTargetUrl } from '../storage/changes/targets.ts';
import type { WebhookConfig, WebhookEvent, WebhookService } from './webhook-configs.ts';

/** One delivery of one event to one webhook, with every attempt. */
export interface WebhookDelivery extends Doc {
  webhook_id: string;
  owner_id: string;
  bot_id: string;
  event: WebhookEvent;
  /** Deterministic id of the event (see the module comment); also sent as `Otto-Event-Id`. */
  event_id: string;
  /** The JSON body sent, as an object. */
  payload: { id: string; type: WebhookEvent; created_at: string; bot_id: string; data: Record<string, unknown> };
  /** `pending` (due at `next_attempt_at`), `sending` (claimed until `next_attempt_at`), `delivered`, `failed` (gave up), `cancelled` (webhook gone or disabled). */
  status: 'pending' | 'sending' | 'delivered' | 'failed' | 'cancelled';
  attempt_count: number;
  next_attempt_at: string;
  attempts: Array<{ n: number; at: string; status_code: number | null; error: string | null; duration_ms: number }>;
  last_error: string | null;
  delivered_at: string | null;
  /** The process that claimed it last (`host:pid`). */
  claimed_by?: string;
}

/** The outbox's cursor URL: a fixed name (never opened; `open` is overridden), so its cursor id is stable. */
export const OUTBOX_CURSOR_URL = 'jsonl:/otto-internal/webhook-outbox';
const SEEN_LIMIT = 10_000;

const CAPABILITIES: Capabilities = { transactions: false, changeStreams: false, ttl: false, durable: true, multiProcess: true };

/** Turns written documents into deliveries. */
class OutboxWriter {
  private readonly seen = new Set<string>();
  private readonly conversationBots = new Map<string, string>();
  /**
   * Subscribers by bot and event, for the batch being applied (cleared by `endBatch`). Every
   * change in a batch was committed before the batch was read, so a webhook created after the
   * lookup could not receive them anyway (events before a webhook's creation are skipped).
   */
  private readonly batchSubscribers = new Map<string, Promise<WebhookConfig[]>>();
  private readonly primary: Store;
  private readonly webhooks: WebhookService;
  private readonly onEnqueued: () => void;

  constructor(primary: Store, webhooks: WebhookService, onEnqueued: () => void) {
    this.primary = primary;
    this.webhooks = webhooks;
    this.onEnqueued = onEnqueued;
  }

  async put(collection: string, doc: Doc): Promise<void> {
    if (collection === collections.conversations.name) {
      const c = doc as unknown as Conversation;
      this.conversationBots.set(c.id, c.bot_id);
      await this.emit({ event: 'conversation.created', eventId: `conversation.created:${c.id}`, botId: c.bot_id, at: c.created_at, data: doc });
    } else if (collection === collections.messages.name) {
      const m = doc as unknown as Message;
      const botId = await this.botOf(m.conversation_id);
      if (botId) await this.emit({ event: 'message.created', eventId: `message.created:${m.id}`, botId, at: m.created_at, data: { ...doc, bot_id: botId } });
    } else if (collection === collections.bots.name) {
      const b = doc as unknown as Bot;
      if (b.version > 1) await this.emit({ event: 'bot.updated', eventId: `bot.updated:${b.id}:${b.version}`, botId: b.id, at: b.updated_at, data: doc });
    }
  }

  private async botOf(conversationId: string): Promise<string | undefined> {
    let botId = this.conversationBots.get(conversationId);
    if (!botId) {
      const conversations = await this.primary.collection<Conversation>(collections.conversations);
      botId = (await conversations.get({ id: conversationId }))?.bot_id;
      if (botId) this.conversationBots.set(conversationId, botId);
      if (this.conversationBots.size > SEEN_LIMIT) this.conversationBots.delete(this.conversationBots.keys().next().value!);
    }
    return botId;
  }

  private async emit(e: { event: WebhookEvent; eventId: string; botId: string; at: string; data: Doc }): Promise<void> {
    if (this.seen.has(e.eventId)) return;
    const key = `${e.botId}\u0000${e.event}`;
    let lookup = this.batchSubscribers.get(key);
    if (!lookup) {
      lookup = this.webhooks.subscribers({ bot_id: e.botId, event: e.event });
      this.batchSubscribers.set(key, lookup);
      lookup.catch(() => this.batchSubscribers.delete(key));
    }
    const subscribers: WebhookConfig[] = await lookup;
    const deliveries = await this.primary.collection<WebhookDelivery>(collections.webhook_deliveries);
    let added = 0;
    for (const webhook of subscribers) {
      if (e.at < webhook.created_at) continue;
      const now = new Date().toISOString();
      try {
        await deliveries.insert({
          doc: {
            id: newId('whd'),
            webhook_id: webhook.id,
            owner_id: webhook.owner_id,
            bot_id: e.botId,
            event: e.event,
            event_id: e.eventId,
            payload: { id: e.eventId, type: e.event, created_at: e.at, bot_id: e.botId, data: e.data },
            status: 'pending',
            attempt_count: 0,
            next_attempt_at: now,
            attempts: [],
            last_error: null,
            delivered_at: null,
          },
        });
        added++;
      } catch (error) {
        if (!isStorageError(error, 'DUPLICATE')) throw error;
      }
    }
    this.seen.add(e.eventId);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value!);
    if (added > 0) this.onEnqueued();
  }

  /** Ends the batch being applied: the next one looks subscribers up afresh. */
  endBatch(): void {
    this.batchSubscribers.clear();
  }
}

/** The outbox as a mirror target: writes become deliveries; reads find nothing; deletes are ignored. */
function outboxStore(writer: OutboxWriter): Store {
  const opened = new Map<string, Collection<Doc>>();
  const unsupported = (what: string) => Promise.reject(new StorageError('UNSUPPORTED', `the webhook outbox does not ${what}`));
  const collectionOf = (spec: CollectionSpec): Collection<Doc> => {
    let c = opened.get(spec.name);
    if (c) return c;
    c = {
      spec,
      async upsert({ doc }: { doc: Doc }) {
        await writer.put(spec.name, doc as Doc);
        return doc as Doc;
      },
      async delete() {
        return false;
      },
      async get() {
        return null;
      },
      async find() {
        return { items: [], next: null };
      },
      async count() {
        return 0;
      },
      insert: () => unsupported('insert'),
      insertMany: () => unsupported('insertMany'),
      update: () => unsupported('update'),
      deleteMany: () => unsupported('deleteMany'),
      increment: () => unsupported('increment'),
      insertNumbered: () => unsupported('insertNumbered'),
      aggregate: () => unsupported('aggregate'),
      async *scan() {},
    } as unknown as Collection<Doc>;
    opened.set(spec.name, c);
    return c;
  };
  return {
    engine: 'webhook-outbox',
    location: 'webhook outbox',
    capabilities: CAPABILITIES,
    async collection<T>(spec: CollectionSpec) {
      return collectionOf(spec) as unknown as Collection<T & Doc> as never;
    },
    async listCollections() {
      return [];
    },
    async listIndexes() {
      return [];
    },
    onWrite() {
      return () => {};
    },
    async health(): Promise<StoreHealth> {
      return { ok: true, engine: 'webhook-outbox', location: 'webhook outbox', latency_ms: 0 };
    },
    async close() {},
    // flushTarget, after each batch: deliveries are written to the primary before upsert returns.
    flush: async () => writer.endBatch(),
  } as Store;
}

/**
 * Starts following the change log into the outbox. The first time (no cursor yet) it starts
 * at the log's head: events written before webhooks existed are not replayed. While no webhook
 * is enabled it moves past changes without reading them (on an ordered log; see `skipWhen`). Returns the
 * mirror (stop it on shutdown). Throws StorageError when the cursor cannot be created.
 */
export async function startOutbox(args: {
  log: ChangeLog;
  /** The store deliveries are written to: the logged store (so they reach mirrors too). */
  store: Store;
  webhooks: WebhookService;
  intervalMs: number;
  batchSize?: number;
  onEnqueued: () => void;
  onEvent?: (line: string) => void;
}): Promise<Mirror> {
  const { log } = args;
  const id = mirrorId(parseTargetUrl(OUTBOX_CURSOR_URL).display);
  const cursors = await log.primary.collection<MirrorCursor>(MIRRORS_SPEC);
  if (!(await cursors.get({ id }))) {
    const head = await log.lastSeq();
    try {
      await cursors.insert({
        doc: { id, url: 'webhook outbox', seq: head, snapshot_done: true, applied_at: null, last_error: null, last_error_at: null, lease_owner: null, lease_until: null },
      });
    } catch (error) {
      if (!isStorageError(error, 'DUPLICATE')) throw error;
    }
  }
  const writer = new OutboxWriter(args.store, args.webhooks, args.onEnqueued);
  const store = outboxStore(writer);
  const mirror = new Mirror(OUTBOX_CURSOR_URL, log, {
    intervalMs: args.intervalMs,
    batchSize: args.batchSize ?? 200,
    open: async () => store,
    // With no webhook enabled, no change can become a delivery: the outbox moves past them unread.
    skipWhen: async () => !(await args.webhooks.anyEnabled()),
    onEvent: (line) => args.onEvent?.(line.replace(/^mirror \S+/, 'webhook outbox')),
  });
  mirror.start();
  return mirror;
}
