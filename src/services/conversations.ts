import { setTimeout as sleep } from 'node:timers/promises';
import { collections, newId, type AgentStep, type Conversation, type Message, type MessageRole } from '../domain/index.ts';
import { OttoError } from '../domain/errors.ts';
import { validateInput } from '../domain/schemas.ts';
import { and, eq, gt, isStorageError, lt, type Collection, type Page, type Store } from '../storage/index.ts';
import { canAccess, type Caller } from './caller.ts';
import { MessageFeed } from './message-feed.ts';

export interface ConversationInput {
  bot_id: string;
  user_id?: string | null;
  title?: string;
  context?: Record<string, unknown>;
}

/** A message to append; the store assigns its offset. */
export interface NewMessage {
  role: MessageRole;
  content: string;
  agent_steps?: AgentStep[];
  pdf_names?: string[];
  source_citations?: Array<Record<string, unknown>>;
  meta_data?: Record<string, unknown>;
}

/** A page of messages in offset order, with where to continue in each direction. */
export interface MessagePage {
  items: Message[];
  /** Pass as `before` to read the older page; null at the start of the conversation. */
  older_before: number | null;
  /** The highest offset in the conversation when the page was read. */
  last_offset: number;
}

const MAX_APPEND_ATTEMPTS = 50;
/** How long a conversation's window is served from memory before it is read again in full. */
const WINDOW_TTL_MS = 60_000;
/** Conversations whose windows are kept (least recently used go first). */
const MAX_CACHED_WINDOWS = 256;
/** Windows whose messages hold more text than this are not kept. */
const MAX_CACHED_WINDOW_CHARS = 256 * 1024;

/** A conversation's latest messages as this process last knew them. */
interface CachedWindow {
  /** Oldest first, at most `limit`, contiguous up to the conversation's latest offset when read. */
  messages: Message[];
  limit: number;
  /** When it was last read in full. */
  readAt: number;
}

/** Conversations and their messages, scoped to the caller. */
export class ConversationService {
  private readonly conversations: Collection<Conversation>;
  private readonly messages: Collection<Message>;
  /** Live message delivery (server-sent events). */
  readonly feed: MessageFeed;
  /** Recent windows by conversation id, in least-recently-used order; see `window`. */
  private readonly windows = new Map<string, CachedWindow>();

  private constructor(conversations: Collection<Conversation>, messages: Collection<Message>, pollMs: number) {
    this.conversations = conversations;
    this.messages = messages;
    this.feed = new MessageFeed((id, after, limit) => this.readAfter(id, after, limit), pollMs);
  }

  /** Opens the collections. `pollMs` is how often live streams look for other processes' messages. Throws StorageError. */
  static async open(store: Store, options: { pollMs?: number } = {}): Promise<ConversationService> {
    return new ConversationService(await store.collection<Conversation>(collections.conversations), await store.collection<Message>(collections.messages), options.pollMs ?? 500);
  }

  /** Creates a conversation with a bot the caller may use (checked by the caller of this method). Throws INVALID. */
  async create(args: { caller: Caller; input: ConversationInput; ownerId?: string }): Promise<Conversation> {
    const input = validateInput<ConversationInput>('ConversationCreate', args.input);
    return this.conversations.insert({
      doc: {
        id: newId('conv'),
        owner_id: args.ownerId ?? args.caller.owner_id,
        bot_id: input.bot_id,
        user_id: input.user_id ?? null,
        title: input.title ?? '',
        context: input.context ?? {},
        last_offset: 0,
        journey_state: {},
      },
    });
  }

  /**
   * The caller's conversations, newest first (by creation, or with `order: 'recent'` by latest
   * activity), filtered by bot and/or user. Throws INVALID for a bad cursor.
   */
  async list(args: { caller: Caller; bot_id?: string; user_id?: string; order?: 'created' | 'recent'; after?: string | null; limit?: number }): Promise<Page<Conversation>> {
    const where = and(
      args.caller.admin ? undefined : eq('owner_id', args.caller.owner_id),
      args.bot_id === undefined ? undefined : eq('bot_id', args.bot_id),
      args.user_id === undefined ? undefined : eq('user_id', args.user_id),
    );
    const field = args.order === 'recent' ? 'updated_at' : 'created_at';
    return this.conversations.find({ where, sort: [{ field, direction: 'desc' }], after: args.after, limit: args.limit ?? 50 });
  }

  /** Returns the conversation, or throws NOT_FOUND when it does not exist or is not the caller's. */
  async get(args: { caller: Caller; id: string }): Promise<Conversation> {
    const conversation = await this.conversations.get({ id: args.id });
    if (!conversation || !canAccess(args.caller, conversation.owner_id)) throw new OttoError('NOT_FOUND', `conversation ${args.id} not found`, { field: 'conversation_id' });
    return conversation;
  }

  /**
   * One page of messages in ascending offset order: the latest `limit` by default, those
   * before offset `before`, or those after offset `after`. Throws NOT_FOUND.
   */
  async messagesPage(args: { caller: Caller; id: string; before?: number; after?: number; limit?: number }): Promise<MessagePage> {
    await this.get({ caller: args.caller, id: args.id });
    const limit = args.limit ?? 50;
    let items: Message[];
    if (args.after !== undefined) {
      items = await this.readAfter(args.id, args.after, limit);
    } else {
      const page = await this.messages.find({
        where: and(eq('conversation_id', args.id), args.before === undefined ? undefined : lt('offset', args.before)),
        sort: [{ field: 'offset', direction: 'desc' }],
        limit,
      });
      items = page.items.reverse();
    }
    const last = await this.lastOffset(args.id);
    const first = items[0]?.offset;
    return { items, older_before: first !== undefined && first > 1 ? first : null, last_offset: last };
  }

  /**
   * The latest `limit` messages, oldest first: a turn's window. Never reads more. A window read
   * in full within the last minute is kept in memory (with this process's appends), and only
   * the messages after its last offset are read: an indexed read that usually finds none, which
   * brings in messages other processes wrote (offsets only grow). Changes other processes make
   * to messages already in it (e.g. retention deleting them) show within that minute.
   * Throws StorageError.
   */
  async window(conversationId: string, limit: number): Promise<Message[]> {
    const now = Date.now();
    const cached = this.keptWindow(conversationId, limit, now);
    const known = cached?.messages ?? null;
    const newer = known ? await this.readAfter(conversationId, known.at(-1)?.offset ?? 0, limit) : null;
    let messages: Message[];
    let readAt = now;
    if (known && newer && newer.length < limit) {
      // Fewer than a window's worth arrived since: they are all of them (a full window may not be).
      messages = newer.length === 0 ? known : [...known, ...newer].slice(-limit);
      readAt = cached!.readAt;
    } else {
      const page = await this.messages.find({ where: eq('conversation_id', conversationId), sort: [{ field: 'offset', direction: 'desc' }], limit });
      messages = page.items.reverse();
    }
    // A window changed by this process's writes while reading is not kept: the next turn reads it again.
    if (known && this.windows.get(conversationId)?.messages !== known) this.windows.delete(conversationId);
    else this.keepWindow(conversationId, { messages, limit, readAt });
    return messages.slice();
  }

  /** The window kept for a conversation, when it was kept for the same `limit` and read in full within WINDOW_TTL_MS of `now`; else undefined. */
  private keptWindow(conversationId: string, limit: number, now: number): CachedWindow | undefined {
    const cached = this.windows.get(conversationId);
    return cached && cached.limit === limit && now - cached.readAt < WINDOW_TTL_MS ? cached : undefined;
  }

  /**
   * Forgets every window kept in memory: each is read again in full at its next turn. For when
   * stored messages may have moved (a degraded-mode recovery renumbers messages whose offset was taken).
   */
  forgetWindows(): void {
    this.windows.clear();
  }

  /** Remembers a window (most recently used last), unless it is too large; evicts the least recently used beyond the cap. */
  private keepWindow(conversationId: string, window: CachedWindow): void {
    this.windows.delete(conversationId);
    let chars = 0;
    for (const m of window.messages) chars += m.content.length;
    if (chars > MAX_CACHED_WINDOW_CHARS) return;
    this.windows.set(conversationId, window);
    if (this.windows.size > MAX_CACHED_WINDOWS) this.windows.delete(this.windows.keys().next().value!);
  }

  /**
   * Keeps a cached window current after this process stored `message`: appended when it is the
   * next offset, replaced when it is already there; otherwise the window is forgotten (read again next time).
   */
  private updateWindow(message: Message): void {
    const cached = this.windows.get(message.conversation_id);
    if (!cached) return;
    const last = cached.messages.at(-1)?.offset ?? 0;
    const at = cached.messages.findIndex((m) => m.offset === message.offset);
    if (at >= 0) cached.messages = cached.messages.map((m, i) => (i === at ? message : m));
    else if (message.offset === last + 1) cached.messages = [...cached.messages, message].slice(-cached.limit);
    else this.windows.delete(message.conversation_id);
  }

  /**
   * Starts a turn: appends the user's `message` and returns it with the window of the `limit`
   * messages before it, oldest first (what `window` followed by `append` return, in one step).
   * With a window kept in memory (see `window`), the message goes straight to the offset after
   * the window's last, without reading anything first: the unique (conversation_id, offset)
   * index refuses that offset when another process appended meanwhile, and the window is then
   * read again before appending. A window behind the conversation's `last_offset` is read
   * again too. Throws StorageError, or UNAVAILABLE after too many concurrent writers.
   */
  async beginTurn(args: { conversation: Conversation; message: NewMessage; limit: number }): Promise<{ history: Message[]; message: Message }> {
    const { conversation, message, limit } = args;
    const cached = this.keptWindow(conversation.id, limit, Date.now());
    if (cached) {
      const history = cached.messages.slice();
      const last = history.at(-1)?.offset ?? 0;
      if ((conversation.last_offset ?? 0) <= last) {
        try {
          return { history, message: await this.insertAt(conversation, message, last + 1) };
        } catch (error) {
          if (!isStorageError(error, 'DUPLICATE')) throw error;
          // Another writer took that offset: what it wrote belongs in the window.
        }
      }
    }
    const history = await this.window(conversation.id, limit);
    return { history, message: await this.append({ conversation, message, lastKnownOffset: history.at(-1)?.offset ?? 0 }) };
  }

  /**
   * Appends a message at the next offset. Offsets are assigned by the store: the unique
   * (conversation_id, offset) index turns a race between processes into a retry, so offsets
   * are never duplicated and never skipped. `lastKnownOffset`: the conversation's last offset
   * as the caller has just read it, if it has. Returns the stored message. Throws StorageError.
   */
  async append(args: { conversation: Conversation; message: NewMessage; lastKnownOffset?: number }): Promise<Message> {
    const { conversation, message } = args;
    for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS; attempt++) {
      // The caller's hint saves a read on the first attempt; a stale one only costs a retry
      // (the unique index refuses the taken offset). The conversation's last_offset covers
      // messages retention has deleted: offsets are never reused.
      const last = attempt === 0 && args.lastKnownOffset !== undefined ? args.lastKnownOffset : await this.lastOffset(conversation.id);
      try {
        return await this.insertAt(conversation, message, Math.max(last, conversation.last_offset ?? 0) + 1);
      } catch (error) {
        if (!isStorageError(error, 'DUPLICATE')) throw error;
        await sleep(Math.floor(Math.random() * (2 + attempt * 2)));
      }
    }
    throw new OttoError('UNAVAILABLE', 'too many concurrent writers on this conversation; try again');
  }

  /** Stores `message` at `offset` and tells the kept window and live streams. Returns it. Throws StorageError (DUPLICATE when the offset is taken). */
  private async insertAt(conversation: Conversation, message: NewMessage, offset: number): Promise<Message> {
    const stored = await this.messages.insert({
      doc: {
        id: newId('msg'),
        owner_id: conversation.owner_id,
        conversation_id: conversation.id,
        offset,
        role: message.role,
        content: message.content,
        agent_steps: message.agent_steps ?? [],
        pdf_names: message.pdf_names ?? [],
        source_citations: message.source_citations ?? [],
        meta_data: message.meta_data ?? {},
      },
    });
    this.updateWindow(stored);
    this.feed.notify(conversation.id);
    return stored;
  }

  /** Records what went wrong on a stored message (e.g. a provider failure). Returns the updated message. */
  async recordError(args: { message: Message; step: AgentStep }): Promise<Message> {
    const updated = await this.messages.update({ id: args.message.id, patch: { agent_steps: [...args.message.agent_steps, args.step] } });
    this.updateWindow(updated);
    return updated;
  }

  /** Saves conversation state after a turn (journey progress, last offset hint). */
  async saveTurnState(args: { conversation: Conversation; journey_state: Record<string, number>; last_offset: number }): Promise<void> {
    await this.conversations.update({ id: args.conversation.id, patch: { journey_state: args.journey_state, last_offset: args.last_offset } });
  }

  private async lastOffset(conversationId: string): Promise<number> {
    const page = await this.messages.find({ where: eq('conversation_id', conversationId), sort: [{ field: 'offset', direction: 'desc' }], limit: 1 });
    return page.items[0]?.offset ?? 0;
  }

  private async readAfter(conversationId: string, afterOffset: number, limit: number): Promise<Message[]> {
    const page = await this.messages.find({ where: and(eq('conversation_id', conversationId), gt('offset', afterOffset)), sort: [{ field: 'offset', direction: 'asc' }], limit });
    return page.items;
  }
}
