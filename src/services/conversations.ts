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

/** Conversations and their messages, scoped to the caller. */
export class ConversationService {
  private readonly conversations: Collection<Conversation>;
  private readonly messages: Collection<Message>;
  /** Live message delivery (server-sent events). */
  readonly feed: MessageFeed;

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

  /** The latest `limit` messages, oldest first: a turn's window. Never reads more. */
  async window(conversationId: string, limit: number): Promise<Message[]> {
    const page = await this.messages.find({ where: eq('conversation_id', conversationId), sort: [{ field: 'offset', direction: 'desc' }], limit });
    return page.items.reverse();
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
      const offset = Math.max(last, conversation.last_offset ?? 0) + 1;
      try {
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
        this.feed.notify(conversation.id);
        return stored;
      } catch (error) {
        if (!isStorageError(error, 'DUPLICATE')) throw error;
        await sleep(Math.floor(Math.random() * (2 + attempt * 2)));
      }
    }
    throw new OttoError('UNAVAILABLE', 'too many concurrent writers on this conversation; try again');
  }

  /** Records what went wrong on a stored message (e.g. a provider failure). Returns the updated message. */
  async recordError(args: { message: Message; step: AgentStep }): Promise<Message> {
    return this.messages.update({ id: args.message.id, patch: { agent_steps: [...args.message.agent_steps, args.step] } });
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
