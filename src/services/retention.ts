import { collections, type Bot, type Conversation, type Message } from '../domain/index.ts';
import { and, eq, isIn, lt, type Collection, type Store } from '../storage/index.ts';

/** What one sweep did. */
export interface SweepResult {
  /** Bots with a retention period. */
  bots: number;
  /** Conversations of those bots looked at. */
  conversations: number;
  /** Messages deleted. */
  deleted: number;
}

const DAY_MS = 86_400_000;

/**
 * Message retention: deletes the messages of every bot with `retention_days` that are older
 * than that, in batches (no TTL indexes: MongoDB-compatible engines lack them). A conversation
 * keeps its `last_offset`, so offsets are never reused after its messages are gone.
 * Several processes may sweep the same store at once (deletes are idempotent).
 */
export class RetentionSweeper {
  private readonly bots: Collection<Bot>;
  private readonly conversations: Collection<Conversation>;
  private readonly messages: Collection<Message>;
  private readonly batchSize: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepResult> | undefined;

  private constructor(parts: { bots: Collection<Bot>; conversations: Collection<Conversation>; messages: Collection<Message>; batchSize: number }) {
    this.bots = parts.bots;
    this.conversations = parts.conversations;
    this.messages = parts.messages;
    this.batchSize = parts.batchSize;
  }

  /** Opens the collections it sweeps. `batchSize`: messages deleted per write (default 500). Throws StorageError. */
  static async open(args: { store: Store; batchSize?: number }): Promise<RetentionSweeper> {
    return new RetentionSweeper({
      bots: await args.store.collection<Bot>(collections.bots),
      conversations: await args.store.collection<Conversation>(collections.conversations),
      messages: await args.store.collection<Message>(collections.messages),
      batchSize: args.batchSize ?? 500,
    });
  }

  /**
   * Deletes every message older than its bot's retention period as of `now`. A sweep already
   * running is joined rather than doubled. Returns what it did. Throws StorageError.
   */
  sweep(args: { now?: number; onProgress?: (line: string) => void } = {}): Promise<SweepResult> {
    this.running ??= this.run(args.now ?? Date.now(), args.onProgress).finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(now: number, onProgress?: (line: string) => void): Promise<SweepResult> {
    const result: SweepResult = { bots: 0, conversations: 0, deleted: 0 };
    for await (const batch of this.bots.scan({ batchSize: this.batchSize })) {
      for (const bot of batch) {
        const days = bot.retention_days;
        if (typeof days !== 'number' || !(days > 0)) continue;
        result.bots++;
        const cutoff = new Date(now - days * DAY_MS).toISOString();
        let after: string | null = null;
        do {
          const page: { items: Conversation[]; next: string | null } = await this.conversations.find({ where: eq('bot_id', bot.id), after, limit: this.batchSize });
          for (const conversation of page.items) {
            result.conversations++;
            const deleted = await this.sweepConversation(conversation, cutoff);
            if (deleted > 0) onProgress?.(`bot ${bot.id}: conversation ${conversation.id}: ${deleted} message(s) older than ${days} day(s) deleted`);
            result.deleted += deleted;
          }
          after = page.next;
        } while (after);
      }
    }
    return result;
  }

  private async sweepConversation(conversation: Conversation, cutoff: string): Promise<number> {
    let deleted = 0;
    let lastOffset = conversation.last_offset ?? 0;
    for (;;) {
      const page = await this.messages.find({ where: and(eq('conversation_id', conversation.id), lt('created_at', cutoff)), limit: this.batchSize });
      if (page.items.length === 0) return deleted;
      const highest = Math.max(...page.items.map((m) => m.offset));
      if (highest > lastOffset) {
        // Keep the numbering going even when every message is gone.
        await this.conversations.update({ id: conversation.id, patch: { last_offset: highest } });
        lastOffset = highest;
      }
      deleted += await this.messages.deleteMany({ where: isIn('id', page.items.map((m) => m.id)) });
    }
  }

  /** Sweeps every `intervalMs` until stopped (the first sweep right away). Errors go to `onError`, never thrown. */
  start(args: { intervalMs: number; onError: (error: unknown) => void; onProgress?: (line: string) => void }): void {
    this.stop();
    const tick = () => void this.sweep({ onProgress: args.onProgress }).catch(args.onError);
    this.timer = setInterval(tick, args.intervalMs);
    this.timer.unref();
    tick();
  }

  /** Stops the timer (a sweep in flight finishes). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Resolves when no sweep is running. */
  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }
}
