/**
 * Channels: bots reachable from Telegram and Slack (`bot_platform_accounts`, owned by the
 * bot's owner, tokens stored encrypted).
 *
 * Inbound updates arrive on public routes that authenticate by the platform's secret (Telegram's
 * `X-Telegram-Bot-Api-Secret-Token`, Slack's `X-Slack-Signature`). Each update is first claimed
 * in `channel_updates` under its platform id (`update_id`, Slack's `event_id`), a unique index
 * on `(account_id, update_id)`: a redelivery, to this process or another, finds the claim and is
 * acknowledged without a second reply. The turn then runs in the background (platforms want an
 * answer within seconds) as the account's owner, in the conversation mapped to the chat
 * (`channel_conversations`, unique per `(account_id, chat_key)`), and the reply goes out with
 * `sendMessage` / `chat.postMessage`. The claim records the outcome (`replied` or `failed`).
 *
 * The claim also holds what the turn needs, and a lease: an update acknowledged by a process
 * that died before answering (or whose reply could not be sent) is answered by `recover()`
 * in any process once the lease runs out, so an acknowledged message is not dropped. The
 * reply is stored on the claim before it is sent, so a retry sends it again without running
 * the turn twice.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { collections, newId } from '../domain/index.ts';
import { OttoError } from '../domain/errors.ts';
import { maskSecret, type EncryptedSecret, type SecretBox } from '../secrets/index.ts';
import type { BotService } from '../services/bots.ts';
import { canAccess, type Caller } from '../services/caller.ts';
import type { ChatService } from '../services/chat.ts';
import type { ConversationService } from '../services/conversations.ts';
import { and, eq, isIn, isStorageError, lt, lte, type Collection, type Page, type Store, type StoredMeta } from '../storage/index.ts';
import { createSlackApi, createTelegramApi, type SlackApi, type TelegramApi } from './platform-api.ts';

export const PLATFORMS = ['telegram', 'slack'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** A bot's account on a platform, as stored. */
export interface PlatformAccount extends StoredMeta {
  owner_id: string;
  bot_id: string;
  platform: Platform;
  name: string;
  enabled: boolean;
  bot_token: EncryptedSecret;
  bot_token_masked: string;
  /** Slack: the app's signing secret. */
  signing_secret?: EncryptedSecret;
  signing_secret_masked?: string;
  /** Telegram: the secret token Telegram sends back on every update. */
  webhook_secret?: EncryptedSecret;
  /** Who the bot is on the platform (Telegram getMe / Slack auth.test). */
  platform_bot: Record<string, string | number>;
  /** Where the platform sends updates. */
  inbound_url: string;
}

/** An account as the API shows it: secrets only masked. */
export type PlatformAccountView = Omit<PlatformAccount, 'bot_token' | 'signing_secret' | 'webhook_secret'>;

export interface ChannelInput {
  bot_id: string;
  platform: Platform;
  bot_token: string;
  signing_secret?: string;
  name?: string;
}

/** Where a reply goes: Telegram's chat (and the message answered), Slack's channel (and thread). */
export type ReplyTarget = { chat_id: number | string; message_id?: number } | { channel: string; thread_ts?: string };

/**
 * One inbound update's claim. While `received`, it holds what the turn needs (`text`, `reply`),
 * and `lease_until` says until when the process that acknowledged it is answering it: a claim
 * still `received` after its lease (that process died) is answered by `recover()`.
 */
export interface ChannelUpdate extends StoredMeta {
  account_id: string;
  owner_id: string;
  /** The platform's id of the update (Telegram `update_id`, Slack `event_id`), as text. */
  update_id: string;
  status: 'received' | 'replied' | 'failed';
  chat_key: string;
  user_id: string | null;
  /** The user's text; cleared once the turn ran (it is then in the conversation). */
  text: string | null;
  /** The bot's reply once the turn ran, until it is sent (a retry only sends it again). */
  reply_text: string | null;
  reply: ReplyTarget;
  lease_until: string;
  attempts: number;
  conversation_id: string | null;
  error: string | null;
}

/** A chat's conversation. */
export interface ChannelConversation extends StoredMeta {
  account_id: string;
  owner_id: string;
  chat_key: string;
  conversation_id: string;
}

/** What an inbound route answers. */
export type InboundResult = { ok: true; status: 'accepted' | 'duplicate' | 'ignored'; reason?: string } | { challenge: string };

/** Telegram update kinds Otto knows but does not answer (acknowledged so Telegram does not resend them). */
const TELEGRAM_KNOWN = new Set([
  'message', 'edited_message', 'channel_post', 'edited_channel_post', 'business_connection', 'business_message', 'edited_business_message',
  'deleted_business_messages', 'message_reaction', 'message_reaction_count', 'inline_query', 'chosen_inline_result', 'callback_query',
  'shipping_query', 'pre_checkout_query', 'purchased_paid_media', 'poll', 'poll_answer', 'my_chat_member', 'chat_member', 'chat_join_request',
  'chat_boost', 'removed_chat_boost',
]);
/** How far a Slack request's timestamp may be from now. */
export const SLACK_TOLERANCE_S = 300;
/** How long a process has to answer an update it acknowledged before another may take it over. */
const ANSWER_LEASE_MS = 120_000;
/** How long the claim of an answered update is kept (Telegram redelivers for up to a day, Slack for minutes). */
export const SETTLED_UPDATE_KEEP_MS = 7 * 86_400_000;
/** How often answered updates are pruned. */
const PRUNE_EVERY_MS = 3_600_000;
/** Attempts at answering one update (the first and recoveries) before it is marked failed. */
const MAX_ANSWER_ATTEMPTS = 3;

function view(account: PlatformAccount): PlatformAccountView {
  const { bot_token: _t, signing_secret: _s, webhook_secret: _w, ...rest } = account;
  return rest;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Verifies Slack's v0 signature of a raw body. Returns nothing; throws UNAUTHORIZED (stale timestamp or bad signature). */
export function verifySlackSignature(args: { signingSecret: string; timestamp: string | undefined; signature: string | undefined; rawBody: Buffer; now?: number }): void {
  const ts = Number(args.timestamp);
  if (!args.timestamp || !/^\d{1,12}$/.test(args.timestamp)) throw new OttoError('UNAUTHORIZED', 'X-Slack-Request-Timestamp is missing or not a number');
  const now = args.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - ts) > SLACK_TOLERANCE_S) throw new OttoError('UNAUTHORIZED', `the request timestamp is more than ${SLACK_TOLERANCE_S / 60} minutes from now (a replay?)`);
  if (typeof args.signature !== 'string') throw new OttoError('UNAUTHORIZED', 'X-Slack-Signature is missing');
  const expected = `v0=${createHmac('sha256', args.signingSecret).update(`v0:${args.timestamp}:`).update(args.rawBody).digest('hex')}`;
  if (!safeEqual(args.signature, expected)) throw new OttoError('UNAUTHORIZED', 'X-Slack-Signature does not match the body');
}

/** Connected platform accounts and their inbound traffic. */
export class ChannelService {
  private readonly accounts: Collection<PlatformAccount>;
  private readonly updates: Collection<ChannelUpdate>;
  private readonly chats: Collection<ChannelConversation>;
  private readonly parts: {
    box: SecretBox;
    bots: BotService;
    chat: ChatService;
    conversations: ConversationService;
    publicUrl: string | undefined;
    telegramApiBase: string;
    slackApiBase: string;
    onEvent?: (line: string) => void;
  };
  private readonly pending = new Set<Promise<void>>();
  private recovery: NodeJS.Timeout | undefined;

  private constructor(accounts: Collection<PlatformAccount>, updates: Collection<ChannelUpdate>, chats: Collection<ChannelConversation>, parts: ChannelService['parts']) {
    this.accounts = accounts;
    this.updates = updates;
    this.chats = chats;
    this.parts = parts;
  }

  /** Opens the collections. Throws StorageError. */
  static async open(args: { store: Store } & ChannelService['parts']): Promise<ChannelService> {
    const { store, ...parts } = args;
    return new ChannelService(
      await store.collection<PlatformAccount>(collections.bot_platform_accounts),
      await store.collection<ChannelUpdate>(collections.channel_updates),
      await store.collection<ChannelConversation>(collections.channel_conversations),
      parts,
    );
  }

  // --- accounts ---------------------------------------------------------------------------

  /**
   * Connects a bot to a platform: checks the token with the platform, stores the account with
   * its secrets encrypted and, for Telegram, registers the webhook (`setWebhook`) with a fresh
   * secret token. Returns the account, masked. Throws INVALID (bad input, token refused, no
   * OTTO_PUBLIC_URL for Telegram), NOT_FOUND (bot), SECRETS_DISABLED, UPSTREAM_FAILED.
   */
  async connect(args: { caller: Caller; input: ChannelInput }): Promise<PlatformAccountView> {
    const input = args.input;
    const bot = await this.parts.bots.get({ caller: args.caller, id: input.bot_id });
    if (!PLATFORMS.includes(input.platform)) throw new OttoError('INVALID', 'platform must be telegram or slack', { field: 'platform' });
    const token = typeof input.bot_token === 'string' ? input.bot_token.trim() : '';
    if (token.length < 10 || token.length > 512 || /\s/.test(token)) throw new OttoError('INVALID', 'bot_token must be the platform token (10-512 characters, no spaces)', { field: 'bot_token' });
    const id = newId('chn');
    const box = this.parts.box;
    if (!box.enabled) box.encrypt(''); // SECRETS_DISABLED before any call to the platform
    const base = { id, owner_id: bot.owner_id, bot_id: bot.id, platform: input.platform, name: (input.name ?? `${bot.name} on ${input.platform}`).slice(0, 200), enabled: true, bot_token: box.encrypt(token), bot_token_masked: maskSecret(token) };
    if (input.platform === 'telegram') {
      const publicUrl = this.parts.publicUrl;
      if (!publicUrl) throw new OttoError('INVALID', 'Telegram needs to reach Otto: set OTTO_PUBLIC_URL to Otto\'s public https URL and restart', { field: 'OTTO_PUBLIC_URL' });
      const api = this.telegram(token);
      const me = await api.getMe();
      const secretToken = randomBytes(32).toString('hex');
      const inbound_url = `${publicUrl}/channels/telegram/${id}`;
      const account = await this.accounts.insert({ doc: { ...base, webhook_secret: box.encrypt(secretToken), platform_bot: { id: me.id, ...(me.username ? { username: me.username } : {}) }, inbound_url } });
      try {
        await api.setWebhook({ url: inbound_url, secretToken });
      } catch (error) {
        await this.accounts.delete({ id: account.id });
        throw error;
      }
      return view(account);
    }
    const signing = typeof input.signing_secret === 'string' ? input.signing_secret.trim() : '';
    if (signing.length < 16 || signing.length > 256 || /\s/.test(signing)) throw new OttoError('INVALID', 'signing_secret is required for Slack: the app\'s Signing Secret (Basic Information page)', { field: 'signing_secret' });
    const auth = await this.slack(token).authTest();
    const inbound_url = `${this.parts.publicUrl ?? ''}/channels/slack/${id}`;
    const account = await this.accounts.insert({
      doc: { ...base, signing_secret: box.encrypt(signing), signing_secret_masked: maskSecret(signing), platform_bot: { user_id: auth.user_id, ...(auth.bot_id ? { bot_id: auth.bot_id } : {}), ...(auth.team_id ? { team_id: auth.team_id } : {}) }, inbound_url },
    });
    return view(account);
  }

  /** The caller's accounts (admins: everyone's), optionally of one bot. Throws StorageError. */
  async list(args: { caller: Caller; bot_id?: string; after?: string | null; limit?: number }): Promise<Page<PlatformAccountView>> {
    const clauses = [];
    if (!args.caller.admin) clauses.push(eq('owner_id', args.caller.owner_id));
    if (args.bot_id) clauses.push(eq('bot_id', args.bot_id));
    const where = clauses.length === 0 ? undefined : clauses.length === 1 ? clauses[0] : and(...clauses);
    const page = await this.accounts.find({ where, limit: args.limit ?? 50, after: args.after ?? null });
    return { items: page.items.map(view), next: page.next };
  }

  /** One account, masked. Throws NOT_FOUND for an unknown id or another owner's. */
  async get(args: { caller: Caller; id: string }): Promise<PlatformAccountView> {
    return view(await this.own(args));
  }

  /**
   * Disconnects: removes Telegram's webhook (best effort: a token revoked meanwhile does not
   * block it) and deletes the account. Returns whether the platform confirmed. Throws NOT_FOUND.
   */
  async disconnect(args: { caller: Caller; id: string }): Promise<{ webhook_removed: boolean }> {
    const account = await this.own(args);
    let removed = account.platform !== 'telegram';
    if (account.platform === 'telegram') {
      try {
        await this.telegram(this.parts.box.decrypt(account.bot_token)).deleteWebhook();
        removed = true;
      } catch (error) {
        if (!(error instanceof OttoError)) throw error;
      }
    }
    await this.accounts.delete({ id: account.id });
    return { webhook_removed: removed };
  }

  // --- inbound ----------------------------------------------------------------------------

  /**
   * One Telegram update. Throws NOT_FOUND (no such Telegram account), UNAUTHORIZED (secret token
   * missing or wrong), INVALID (not an update, or an update kind Telegram does not define).
   * Known kinds other than text messages are acknowledged as `ignored`; nothing is stored for them.
   */
  async telegramUpdate(args: { accountId: string; secretToken: string | undefined; body: unknown }): Promise<InboundResult> {
    const account = await this.accounts.get({ id: args.accountId });
    if (!account || account.platform !== 'telegram' || !account.webhook_secret) throw new OttoError('NOT_FOUND', 'no such Telegram channel');
    if (typeof args.secretToken !== 'string' || !safeEqual(args.secretToken, this.parts.box.decrypt(account.webhook_secret))) {
      throw new OttoError('UNAUTHORIZED', 'X-Telegram-Bot-Api-Secret-Token is missing or wrong');
    }
    const update = args.body as Record<string, unknown>;
    if (typeof update !== 'object' || update === null || Array.isArray(update) || !Number.isSafeInteger(update.update_id) || (update.update_id as number) < 0) {
      throw new OttoError('INVALID', 'not a Telegram update: update_id (a whole number) is required', { field: 'update_id' });
    }
    const kinds = Object.keys(update).filter((k) => k !== 'update_id');
    const unknown = kinds.find((k) => !TELEGRAM_KNOWN.has(k));
    if (kinds.length !== 1 || unknown) throw new OttoError('INVALID', `unsupported Telegram update ${unknown ? `type ${JSON.stringify(unknown.slice(0, 40))}` : 'shape'}; an update has update_id and one kind, e.g. message`, { field: unknown ?? 'update_id' });
    if (!account.enabled) return { ok: true, status: 'ignored', reason: 'the channel is disabled' };
    const message = update.message as { message_id?: unknown; text?: unknown; chat?: { id?: unknown }; from?: { id?: unknown; is_bot?: unknown } } | undefined;
    if (!message || typeof message !== 'object') return { ok: true, status: 'ignored', reason: `${kinds[0]} updates are not answered` };
    const chatId = message.chat?.id;
    if (typeof chatId !== 'number' && typeof chatId !== 'string') throw new OttoError('INVALID', 'message.chat.id is required', { field: 'message.chat.id' });
    if (typeof message.text !== 'string' || message.text.trim() === '') return { ok: true, status: 'ignored', reason: 'only text messages are answered' };
    if (message.from?.is_bot === true) return { ok: true, status: 'ignored', reason: 'messages from bots are not answered' };
    const text = message.text.slice(0, 20000);
    const replyTo = typeof message.message_id === 'number' ? message.message_id : undefined;
    return this.accept(account, {
      update_id: String(update.update_id),
      chat_key: `chat:${chatId}`,
      text,
      reply: { chat_id: chatId, ...(replyTo ? { message_id: replyTo } : {}) },
      user_id: typeof message.from?.id === 'number' ? `telegram:${message.from.id}` : null,
    });
  }

  /**
   * One Slack Events API request (raw body, for the signature). Throws NOT_FOUND (no such Slack
   * account), UNAUTHORIZED (stale timestamp, bad signature), INVALID (not JSON, unknown request
   * type). Answers `url_verification` with its challenge; acknowledges retries of events already
   * claimed and events it does not answer (other types, bot messages, edits) as `duplicate` / `ignored`.
   */
  async slackRequest(args: { accountId: string; timestamp: string | undefined; signature: string | undefined; rawBody: Buffer }): Promise<InboundResult> {
    const account = await this.accounts.get({ id: args.accountId });
    if (!account || account.platform !== 'slack' || !account.signing_secret) throw new OttoError('NOT_FOUND', 'no such Slack channel');
    verifySlackSignature({ signingSecret: this.parts.box.decrypt(account.signing_secret), timestamp: args.timestamp, signature: args.signature, rawBody: args.rawBody });
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(args.rawBody.toString('utf8'));
    } catch {
      throw new OttoError('INVALID_JSON', 'the body is not valid JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new OttoError('INVALID', 'the body must be a JSON object');
    if (body.type === 'url_verification') {
      if (typeof body.challenge !== 'string' || body.challenge.length > 500) throw new OttoError('INVALID', 'url_verification needs a challenge string', { field: 'challenge' });
      return { challenge: body.challenge };
    }
    if (body.type !== 'event_callback') throw new OttoError('INVALID', `unsupported Slack request type ${JSON.stringify(String(body.type).slice(0, 40))}; Otto handles url_verification and event_callback`, { field: 'type' });
    const event = body.event as Record<string, unknown> | undefined;
    if (typeof body.event_id !== 'string' || body.event_id.length > 200 || typeof event !== 'object' || event === null || typeof event.type !== 'string') {
      throw new OttoError('INVALID', 'event_callback needs event_id and an event with a type', { field: 'event_id' });
    }
    if (!account.enabled) return { ok: true, status: 'ignored', reason: 'the channel is disabled' };
    if (event.type !== 'message' && event.type !== 'app_mention') return { ok: true, status: 'ignored', reason: `${event.type.slice(0, 40)} events are not answered` };
    const botUser = String(account.platform_bot.user_id ?? '');
    if (event.bot_id !== undefined || event.subtype !== undefined || (botUser && event.user === botUser)) return { ok: true, status: 'ignored', reason: 'bot messages and edits are not answered' };
    if (typeof event.text !== 'string' || typeof event.channel !== 'string' || event.text.trim() === '') return { ok: true, status: 'ignored', reason: 'only text messages are answered' };
    // A mention in a channel arrives twice (message and app_mention): answer the app_mention.
    if (event.type === 'message' && event.channel_type !== 'im' && botUser && event.text.includes(`<@${botUser}>`)) return { ok: true, status: 'ignored', reason: 'answered as app_mention' };
    const text = (botUser ? event.text.replaceAll(`<@${botUser}>`, '') : event.text).trim().slice(0, 20000) || event.text.slice(0, 20000);
    const channel = event.channel;
    const threadTs = typeof event.thread_ts === 'string' ? event.thread_ts : undefined;
    const team = typeof body.team_id === 'string' ? body.team_id : '';
    return this.accept(account, {
      update_id: body.event_id,
      chat_key: `${team}:${channel}`,
      text,
      reply: { channel, ...(threadTs ? { thread_ts: threadTs } : {}) },
      user_id: typeof event.user === 'string' ? `slack:${event.user}` : null,
    });
  }

  /** Claims the update (a redelivery gets `duplicate`) and runs the turn in the background. */
  private async accept(account: PlatformAccount, update: Pick<ChannelUpdate, 'update_id' | 'chat_key' | 'text' | 'reply' | 'user_id'>): Promise<InboundResult> {
    let claim: ChannelUpdate;
    try {
      claim = await this.updates.insert({
        doc: { id: newId('upd'), account_id: account.id, owner_id: account.owner_id, ...update, reply_text: null, status: 'received', lease_until: new Date(Date.now() + ANSWER_LEASE_MS).toISOString(), attempts: 1, conversation_id: null, error: null },
      });
    } catch (error) {
      if (isStorageError(error, 'DUPLICATE')) return { ok: true, status: 'duplicate' };
      throw error;
    }
    this.track(this.answer(account, claim));
    return { ok: true, status: 'accepted' };
  }

  private track(work: Promise<void>): void {
    const tracked: Promise<void> = work.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  /**
   * Runs the turn of a claimed update (unless a previous attempt did) and sends the reply;
   * records the outcome on the claim. A failed turn is final (the user's message stays in the
   * conversation with the error); a reply that could not be sent stays `received` and is sent
   * again by `recover()` once the lease runs out, up to MAX_ANSWER_ATTEMPTS. Never throws.
   */
  private async answer(account: PlatformAccount, claim: ChannelUpdate): Promise<void> {
    const fail = async (error: unknown, final: boolean) => {
      const message = error instanceof Error ? error.message.slice(0, 300) : String(error);
      this.parts.onEvent?.(`channel ${account.id} (${account.platform}): update ${claim.update_id} failed: ${message}`);
      await this.updates.update({ id: claim.id, patch: { status: final ? 'failed' : 'received', error: message, ...(final ? { text: null, reply_text: null } : {}) } }).catch(() => {});
    };
    if (claim.reply_text === null) {
      const caller: Caller = { owner_id: account.owner_id, admin: false };
      try {
        const conversationId = claim.conversation_id ?? (await this.conversationFor(account, claim.chat_key, caller, claim.user_id));
        const result = await this.parts.chat.send({ caller, input: { conversation_id: conversationId, message: claim.text ?? '' } });
        claim = await this.updates.update({ id: claim.id, patch: { conversation_id: conversationId, text: null, reply_text: result.reply.content } });
      } catch (error) {
        return fail(error, true);
      }
    }
    try {
      const token = this.parts.box.decrypt(account.bot_token);
      const reply = claim.reply_text!;
      if ('chat_id' in claim.reply) await this.telegram(token).sendMessage({ chatId: claim.reply.chat_id, text: reply, replyTo: claim.reply.message_id });
      else await this.slack(token).postMessage({ channel: claim.reply.channel, text: reply, threadTs: claim.reply.thread_ts });
      await this.updates.update({ id: claim.id, patch: { status: 'replied', reply_text: null, error: null } });
    } catch (error) {
      await fail(error, claim.attempts >= MAX_ANSWER_ATTEMPTS);
    }
  }

  /**
   * Answers updates that were acknowledged but not answered: their process died (or the turn
   * failed) and their lease ran out. Each is taken over with a version check, so one process
   * answers it. Returns how many were taken over. Throws StorageError.
   */
  async recover(args: { limit?: number } = {}): Promise<number> {
    const now = new Date().toISOString();
    const page = await this.updates.find({ where: and(eq('status', 'received'), lte('lease_until', now)), sort: [{ field: 'lease_until', direction: 'asc' }], limit: args.limit ?? 20 });
    let taken = 0;
    for (const stale of page.items) {
      const account = await this.accounts.get({ id: stale.account_id });
      let claim: ChannelUpdate;
      try {
        const patch = account ? { lease_until: new Date(Date.now() + ANSWER_LEASE_MS).toISOString(), attempts: stale.attempts + 1 } : { status: 'failed' as const, text: null, reply_text: null, error: 'the channel was removed' };
        claim = await this.updates.update({ id: stale.id, patch, expectVersion: stale.version });
      } catch (error) {
        if (isStorageError(error, 'CONFLICT') || isStorageError(error, 'NOT_FOUND')) continue;
        throw error;
      }
      if (!account) continue;
      taken++;
      this.track(this.answer(account, claim));
    }
    return taken;
  }

  /**
   * Deletes the claims of updates answered (or given up) more than `olderThanMs` ago (default
   * SETTLED_UPDATE_KEEP_MS): platforms stop redelivering long before, so they no longer guard
   * against a second reply. Claims still `received` are never deleted. Returns how many went.
   * Throws StorageError.
   */
  async pruneSettled(args: { olderThanMs?: number; now?: number } = {}): Promise<number> {
    const cutoff = new Date((args.now ?? Date.now()) - (args.olderThanMs ?? SETTLED_UPDATE_KEEP_MS)).toISOString();
    return this.updates.deleteMany({ where: and(isIn('status', ['replied', 'failed']), lt('updated_at', cutoff)) });
  }

  /**
   * Runs `recover()` every `intervalMs`, and `pruneSettled()` about hourly, in the background
   * until `stopRecovery()`. Failures are reported through onEvent.
   */
  startRecovery(intervalMs: number): void {
    if (this.recovery) return;
    let lastPrune = 0;
    this.recovery = setInterval(() => {
      this.recover().catch((error) => this.parts.onEvent?.(`channels: recovery failed: ${(error as Error).message}`));
      if (Date.now() - lastPrune < PRUNE_EVERY_MS) return;
      lastPrune = Date.now();
      this.pruneSettled().catch((error) => this.parts.onEvent?.(`channels: pruning answered updates failed: ${(error as Error).message}`));
    }, intervalMs);
    this.recovery.unref();
  }

  stopRecovery(): void {
    clearInterval(this.recovery);
    this.recovery = undefined;
  }

  /** The conversation of a chat, created (and mapped) on its first message. */
  private async conversationFor(account: PlatformAccount, chatKey: string, caller: Caller, userId: string | null): Promise<string> {
    const find = async () => (await this.chats.find({ where: and(eq('account_id', account.id), eq('chat_key', chatKey)), limit: 1 })).items[0];
    const existing = await find();
    if (existing) return existing.conversation_id;
    const conversation = await this.parts.conversations.create({ caller, input: { bot_id: account.bot_id, user_id: userId, title: `${account.platform} ${chatKey}`.slice(0, 200), context: { channel_id: account.id, platform: account.platform, chat_key: chatKey } } as never });
    try {
      await this.chats.insert({ doc: { id: newId('chc'), account_id: account.id, owner_id: account.owner_id, chat_key: chatKey, conversation_id: conversation.id } });
      return conversation.id;
    } catch (error) {
      if (!isStorageError(error, 'DUPLICATE')) throw error;
      // Another update of the same chat mapped it first: use that conversation.
      return (await find())!.conversation_id;
    }
  }

  /**
   * Waits for the turns running in the background (for shutdown and tests), at most
   * `timeoutMs` when given; a turn cut short by shutdown is answered later by `recover()`.
   */
  async idle(args: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = args.timeoutMs === undefined ? Infinity : Date.now() + args.timeoutMs;
    while (this.pending.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      const wait = deadline === Infinity ? [] : [new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline - Date.now())))];
      await Promise.race([Promise.allSettled([...this.pending]), ...wait]);
      clearTimeout(timer);
    }
  }

  private telegram(token: string): TelegramApi {
    return createTelegramApi({ base: this.parts.telegramApiBase, token });
  }

  private slack(token: string): SlackApi {
    return createSlackApi({ base: this.parts.slackApiBase, token });
  }

  private async own(args: { caller: Caller; id: string }): Promise<PlatformAccount> {
    const account = await this.accounts.get({ id: args.id });
    if (!account || !canAccess(args.caller, account.owner_id)) throw new OttoError('NOT_FOUND', `channel ${args.id} not found`);
    return account;
  }
}
