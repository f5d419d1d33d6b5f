import type { OttoConfig } from '../config.ts';
import { createProvider, ottoDefinition, type Provider } from '../engine/index.ts';
import type { Store } from '../storage/index.ts';
import { BotService } from './bots.ts';
import { ChatService } from './chat.ts';
import { ConversationService } from './conversations.ts';
import { KeyService } from './keys.ts';
import { BotRegistry } from './registry.ts';

export { BUILDER_BOT_ID, BotService, type BotInput, type GuidelineInput, type JourneyInput, type ToolInput } from './bots.ts';
export { ChatService, TURN_WINDOW, type ChatRequest, type ChatResult } from './chat.ts';
export { ConversationService, type MessagePage } from './conversations.ts';
export { KeyService, hashKey } from './keys.ts';
export { BotRegistry } from './registry.ts';
export { canAccess, localAdmin, type Caller } from './caller.ts';

/** Every service, wired to one store. */
export interface Services {
  store: Store;
  registry: BotRegistry;
  bots: BotService;
  conversations: ConversationService;
  chat: ChatService;
  keys: KeyService;
  provider: Provider;
  /** How many stored bots were rehydrated at startup. */
  rehydrated: number;
  /** Stops background work (sync polling, live feeds). Does not close the store. */
  close(): void;
}

/**
 * Builds the services on an open store: rehydrates the bot registry from definitions only and
 * starts following other processes' changes. Throws StorageError.
 */
export async function createServices(args: {
  store: Store;
  config: Pick<OttoConfig, 'apiKeys' | 'llm' | 'toolTimeoutMs' | 'syncIntervalMs'>;
  provider?: Provider;
  onBackgroundError?: (error: unknown) => void;
}): Promise<Services> {
  const { store, config } = args;
  const registry = await BotRegistry.open(store, [ottoDefinition()]);
  const rehydrated = await registry.rehydrate();
  registry.startSync(config.syncIntervalMs, args.onBackgroundError ?? (() => {}));
  const bots = await BotService.open(store, registry);
  const conversations = await ConversationService.open(store, { pollMs: config.syncIntervalMs });
  const provider = args.provider ?? createProvider(config.llm);
  const chat = new ChatService({ bots, conversations, registry, provider, toolTimeoutMs: config.toolTimeoutMs });
  const keys = await KeyService.open(store, config.apiKeys);
  return {
    store,
    registry,
    bots,
    conversations,
    chat,
    keys,
    provider,
    rehydrated,
    close() {
      registry.stopSync();
      conversations.feed.close();
    },
  };
}
