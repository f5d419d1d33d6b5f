import { collections, type Bot, type BotDefinition, type Guideline, type Journey, type Tool, type ToolMapping } from '../domain/index.ts';
import { eq, type Collection, type Doc, type StoredMeta, type Store } from '../storage/index.ts';

/** The `_counters` document every definition write bumps (other processes reload when it moves). */
export const DEFINITIONS_REVISION_ID = 'definitions_revision';
const REVISION_ID = DEFINITIONS_REVISION_ID;

/**
 * The bots this process serves, kept in memory with everything a turn needs. Rehydrated at
 * startup from definitions only (bots, guidelines, journeys, tools, mappings — never messages),
 * so startup cost follows definitions, not history. Every definition write bumps a revision
 * counter in the store; other processes sharing the store poll that one document and reload.
 */
export class BotRegistry {
  private definitions = new Map<string, BotDefinition>();
  private revision = 0;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private readonly parts: {
    bots: Collection<Bot>;
    guidelines: Collection<Guideline>;
    journeys: Collection<Journey>;
    tools: Collection<Tool>;
    mappings: Collection<ToolMapping>;
    counters: Collection<Doc>;
  };
  private readonly builtIns: BotDefinition[];

  private constructor(parts: BotRegistry['parts'], builtIns: BotDefinition[]) {
    this.parts = parts;
    this.builtIns = builtIns;
  }

  /** Opens the collections it reads. `builtIns` (Otto) are served but never stored. Throws StorageError. */
  static async open(store: Store, builtIns: BotDefinition[]): Promise<BotRegistry> {
    return new BotRegistry(
      {
        bots: await store.collection<Bot>(collections.bots),
        guidelines: await store.collection<Guideline>(collections.guidelines),
        journeys: await store.collection<Journey>(collections.journeys),
        tools: await store.collection<Tool>(collections.tools),
        mappings: await store.collection<ToolMapping>(collections.tool_mappings),
        counters: await store.collection(collections.counters),
      },
      builtIns,
    );
  }

  /** Loads every stored bot definition (one scan per definition collection). Returns how many bots. Throws StorageError. */
  async rehydrate(): Promise<number> {
    const revision = ((await this.parts.counters.get({ id: REVISION_ID }))?.value as number | undefined) ?? 0;
    const next = new Map<string, BotDefinition>();
    for await (const batch of this.parts.bots.scan()) for (const bot of batch) next.set(bot.id, { bot, guidelines: [], journeys: [], tools: [], mappings: [] });
    const attach = async <T extends StoredMeta & { bot_id: string }>(c: Collection<T>, key: 'guidelines' | 'journeys' | 'tools' | 'mappings') => {
      for await (const batch of c.scan()) for (const doc of batch) (next.get(doc.bot_id)?.[key] as T[] | undefined)?.push(doc);
    };
    await attach(this.parts.guidelines, 'guidelines');
    await attach(this.parts.journeys, 'journeys');
    await attach(this.parts.tools, 'tools');
    await attach(this.parts.mappings, 'mappings');
    for (const def of next.values()) for (const key of ['guidelines', 'journeys', 'tools', 'mappings'] as const) (def[key] as StoredMeta[]).sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1));
    this.definitions = next;
    this.revision = revision;
    return next.size;
  }

  /** The definition of a bot (built-in or stored), or undefined. Never reads the store. */
  get(botId: string): BotDefinition | undefined {
    return this.builtIns.find((b) => b.bot.id === botId) ?? this.definitions.get(botId);
  }

  /** How many stored bots are loaded. */
  get size(): number {
    return this.definitions.size;
  }

  /** The built-in bots, in order. */
  get builtInDefinitions(): BotDefinition[] {
    return this.builtIns;
  }

  /**
   * Records that a bot's definitions changed: reloads it here and bumps the shared revision so
   * other processes reload. Throws StorageError.
   */
  async changed(botId: string): Promise<void> {
    await this.reloadBot(botId);
    const value = await this.parts.counters.increment({ id: REVISION_ID, field: 'value' });
    // Our own bump needs no reload; someone else's in between will show as a gap.
    if (value === this.revision + 1) this.revision = value;
  }

  private async reloadBot(botId: string): Promise<void> {
    const bot = await this.parts.bots.get({ id: botId });
    if (!bot) {
      this.definitions.delete(botId);
      return;
    }
    const all = async <T extends StoredMeta>(c: Collection<T>): Promise<T[]> => {
      const out: T[] = [];
      let after: string | null = null;
      do {
        const page: { items: T[]; next: string | null } = await c.find({ where: eq('bot_id', botId), after, limit: 1000 });
        out.push(...page.items);
        after = page.next;
      } while (after);
      return out;
    };
    this.definitions.set(botId, {
      bot,
      guidelines: await all(this.parts.guidelines),
      journeys: await all(this.parts.journeys),
      tools: await all(this.parts.tools),
      mappings: await all(this.parts.mappings),
    });
  }

  /**
   * Checks the shared revision and reloads everything when another process changed a
   * definition. Returns true when it reloaded. Throws StorageError.
   */
  async sync(): Promise<boolean> {
    if (this.syncing) {
      await this.syncing;
      return false;
    }
    let reloaded = false;
    this.syncing = (async () => {
      const revision = ((await this.parts.counters.get({ id: REVISION_ID }))?.value as number | undefined) ?? 0;
      if (revision !== this.revision) {
        await this.rehydrate();
        reloaded = true;
      }
    })().finally(() => (this.syncing = undefined));
    await this.syncing;
    return reloaded;
  }

  /** Polls the shared revision every `intervalMs` (one read by id) until stopped. Errors are reported, never thrown. */
  startSync(intervalMs: number, onError: (error: unknown) => void): void {
    this.stopSync();
    this.timer = setInterval(() => void this.sync().catch(onError), intervalMs);
    this.timer.unref();
  }

  /** Stops polling. */
  stopSync(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
