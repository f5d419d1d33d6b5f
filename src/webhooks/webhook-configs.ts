/**
 * Outgoing webhook subscriptions (`bot_webhook_configs`): a URL receiving a bot's events,
 * owned by the bot's owner, with a signing secret stored encrypted.
 */
import { randomBytes } from 'node:crypto';
import { collections, newId } from '../domain/index.ts';
import { OttoError } from '../domain/errors.ts';
import { maskSecret, type EncryptedSecret, type SecretBox } from '../secrets/index.ts';
import type { BotService } from '../services/bots.ts';
import { canAccess, type Caller } from '../services/caller.ts';
import { and, eq, type Collection, type Page, type Store, type StoredMeta } from '../storage/index.ts';

/** The events a webhook may subscribe to. */
export const WEBHOOK_EVENTS = ['conversation.created', 'message.created', 'bot.updated'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** A stored webhook subscription. */
export interface WebhookConfig extends StoredMeta {
  owner_id: string;
  bot_id: string;
  url: string;
  events: WebhookEvent[];
  description: string;
  enabled: boolean;
  secret: EncryptedSecret;
  secret_masked: string;
}

/** A webhook as the API shows it: the secret masked (and in full only in the answer that created it). */
export type WebhookView = Omit<WebhookConfig, 'secret'> & { secret?: string };

export interface WebhookInput {
  bot_id: string;
  url: string;
  events?: string[];
  description?: string;
  enabled?: boolean;
  /** The signing secret; generated (`whsec_…`) when omitted. */
  secret?: string;
}

export type WebhookPatch = Partial<Pick<WebhookInput, 'url' | 'events' | 'description' | 'enabled'>> & { version?: number };

function view(config: WebhookConfig): WebhookView {
  const { secret: _secret, ...rest } = config;
  return rest;
}

function checkUrl(url: unknown): string {
  if (typeof url !== 'string' || url.length > 2000) throw new OttoError('INVALID', 'url must be an http(s) URL of at most 2000 characters', { field: 'url' });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new OttoError('INVALID', 'url must be an absolute http(s) URL', { field: 'url' });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new OttoError('INVALID', 'url must use http or https', { field: 'url' });
  if (parsed.username || parsed.password) throw new OttoError('INVALID', 'url must not contain credentials; verify deliveries with the signing secret instead', { field: 'url' });
  return parsed.toString();
}

function checkEvents(events: unknown): WebhookEvent[] {
  if (events === undefined) return [...WEBHOOK_EVENTS];
  if (!Array.isArray(events) || events.length === 0) throw new OttoError('INVALID', `events must be a non-empty list of ${WEBHOOK_EVENTS.join(', ')}`, { field: 'events' });
  for (const e of events) if (!WEBHOOK_EVENTS.includes(e as WebhookEvent)) throw new OttoError('INVALID', `unknown event ${JSON.stringify(e)}; use ${WEBHOOK_EVENTS.join(', ')}`, { field: 'events' });
  return [...new Set(events as WebhookEvent[])];
}

/** Webhook subscriptions, owner-scoped. */
export class WebhookService {
  readonly configs: Collection<WebhookConfig>;
  private readonly box: SecretBox;
  private readonly bots: BotService;

  private constructor(configs: Collection<WebhookConfig>, box: SecretBox, bots: BotService) {
    this.configs = configs;
    this.box = box;
    this.bots = bots;
  }

  /** Opens the collection. Throws StorageError. */
  static async open(args: { store: Store; box: SecretBox; bots: BotService }): Promise<WebhookService> {
    return new WebhookService(await args.store.collection<WebhookConfig>(collections.bot_webhook_configs), args.box, args.bots);
  }

  /**
   * Subscribes a URL to a bot's events. Returns the webhook with its secret in full (the only
   * time it is shown). Throws INVALID, NOT_FOUND (the bot is unknown or not the caller's),
   * SECRETS_DISABLED (no OTTO_SECRET_KEY).
   */
  async create(args: { caller: Caller; input: WebhookInput }): Promise<WebhookView> {
    const input = args.input;
    const bot = await this.bots.get({ caller: args.caller, id: input.bot_id });
    const url = checkUrl(input.url);
    const events = checkEvents(input.events);
    if (input.secret !== undefined && (typeof input.secret !== 'string' || input.secret.length < 16 || input.secret.length > 256)) {
      throw new OttoError('INVALID', 'secret must be 16-256 characters (or omit it and Otto makes one)', { field: 'secret' });
    }
    const secret = input.secret ?? `whsec_${randomBytes(24).toString('base64url')}`;
    const config = await this.configs.insert({
      doc: {
        id: newId('whk'),
        owner_id: bot.owner_id,
        bot_id: bot.id,
        url,
        events,
        description: typeof input.description === 'string' ? input.description.slice(0, 500) : '',
        enabled: input.enabled ?? true,
        secret: this.box.encrypt(secret),
        secret_masked: maskSecret(secret),
      },
    });
    return { ...view(config), secret };
  }

  /** The caller's webhooks (admins: everyone's), optionally of one bot, oldest first. Throws StorageError. */
  async list(args: { caller: Caller; bot_id?: string; after?: string | null; limit?: number }): Promise<Page<WebhookView>> {
    const clauses = [];
    if (!args.caller.admin) clauses.push(eq('owner_id', args.caller.owner_id));
    if (args.bot_id) clauses.push(eq('bot_id', args.bot_id));
    const where = clauses.length === 0 ? undefined : clauses.length === 1 ? clauses[0] : and(...clauses);
    const page = await this.configs.find({ where, limit: args.limit ?? 50, after: args.after ?? null });
    return { items: page.items.map(view), next: page.next };
  }

  /** One webhook. Throws NOT_FOUND for an unknown id or another owner's. */
  async get(args: { caller: Caller; id: string }): Promise<WebhookView> {
    return view(await this.own(args));
  }

  /** Changes url, events, description or enabled (with `version`: 409 when changed since). Throws INVALID, NOT_FOUND, CONFLICT. */
  async update(args: { caller: Caller; id: string; patch: WebhookPatch }): Promise<WebhookView> {
    const config = await this.own(args);
    const p = args.patch;
    const patch: Partial<WebhookConfig> = {};
    if (p.url !== undefined) patch.url = checkUrl(p.url);
    if (p.events !== undefined) patch.events = checkEvents(p.events);
    if (p.description !== undefined) patch.description = String(p.description).slice(0, 500);
    if (p.enabled !== undefined) patch.enabled = p.enabled === true;
    return view(await this.configs.update({ id: config.id, patch, expectVersion: p.version }));
  }

  /** Deletes a webhook (its pending deliveries are cancelled when next due). Throws NOT_FOUND. */
  async delete(args: { caller: Caller; id: string }): Promise<void> {
    const config = await this.own(args);
    await this.configs.delete({ id: config.id });
  }

  /** Enabled webhooks of a bot subscribed to `event` (no caller: used by the outbox). Throws StorageError. */
  async subscribers(args: { bot_id: string; event: WebhookEvent }): Promise<WebhookConfig[]> {
    const page = await this.configs.find({ where: eq('bot_id', args.bot_id), limit: 1000 });
    return page.items.filter((c) => c.enabled && c.events.includes(args.event));
  }

  /** True when at least one webhook is enabled, for any bot and event (the outbox has work only then). Throws StorageError. */
  async anyEnabled(): Promise<boolean> {
    return (await this.configs.find({ where: eq('enabled', true), limit: 1 })).items.length > 0;
  }

  /** The signing secret of a webhook, decrypted (for the dispatcher). Throws as SecretBox.decrypt. */
  secretOf(config: WebhookConfig): string {
    return this.box.decrypt(config.secret);
  }

  private async own(args: { caller: Caller; id: string }): Promise<WebhookConfig> {
    const config = await this.configs.get({ id: args.id });
    if (!config || !canAccess(args.caller, config.owner_id)) throw new OttoError('NOT_FOUND', `webhook ${args.id} not found`);
    return config;
  }
}
