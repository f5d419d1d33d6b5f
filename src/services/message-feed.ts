import type { Message } from '../domain/index.ts';

/** Reads messages of a conversation after an offset, ascending (one indexed query). */
export type MessageReader = (conversationId: string, afterOffset: number, limit: number) => Promise<Message[]>;

interface Subscription {
  conversationId: string;
  last: number;
  deliver: (message: Message) => void;
  onError: (error: unknown) => void;
  busy: boolean;
  again: boolean;
}

/**
 * Live messages per conversation, in offset order, each delivered once per subscriber. A
 * message appended by this process wakes its subscribers at once; messages appended by other
 * processes sharing the store are found by polling each watched conversation's offset index.
 */
export class MessageFeed {
  private readonly subscriptions = new Set<Subscription>();
  private readonly read: MessageReader;
  private timer: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;

  constructor(read: MessageReader, intervalMs = 500) {
    this.read = read;
    this.intervalMs = intervalMs;
  }

  /**
   * Delivers every message of the conversation with an offset above `afterOffset`, now and as
   * they arrive, until the returned function is called. Delivery errors go to `onError`.
   */
  subscribe(args: { conversationId: string; afterOffset: number; deliver: (message: Message) => void; onError: (error: unknown) => void }): () => void {
    const sub: Subscription = { conversationId: args.conversationId, last: args.afterOffset, deliver: args.deliver, onError: args.onError, busy: false, again: false };
    this.subscriptions.add(sub);
    this.ensureTimer();
    void this.pull(sub);
    return () => {
      this.subscriptions.delete(sub);
      if (this.subscriptions.size === 0) this.stopTimer();
    };
  }

  /** Wakes the subscribers of a conversation this process just appended to. */
  notify(conversationId: string): void {
    for (const sub of this.subscriptions) if (sub.conversationId === conversationId) void this.pull(sub);
  }

  /** Number of open subscriptions. */
  get size(): number {
    return this.subscriptions.size;
  }

  /** Ends every subscription and the poll timer. */
  close(): void {
    this.subscriptions.clear();
    this.stopTimer();
  }

  private async pull(sub: Subscription): Promise<void> {
    if (sub.busy) {
      sub.again = true;
      return;
    }
    sub.busy = true;
    try {
      do {
        sub.again = false;
        for (;;) {
          const batch = await this.read(sub.conversationId, sub.last, 100);
          for (const message of batch) {
            if (!this.subscriptions.has(sub)) return;
            if (message.offset <= sub.last) continue;
            sub.last = message.offset;
            sub.deliver(message);
          }
          if (batch.length < 100) break;
        }
      } while (sub.again);
    } catch (error) {
      sub.onError(error);
    } finally {
      sub.busy = false;
    }
  }

  private ensureTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      for (const sub of this.subscriptions) void this.pull(sub);
    }, this.intervalMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
