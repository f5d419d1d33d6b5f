import type { OttoConfig } from '../config.ts';
import { createProvider, ottoDefinition, type Provider } from '../engine/index.ts';
import { isStorageError, type Store } from '../storage/index.ts';
import { BotService } from './bots.ts';
import { ChatService } from './chat.ts';
import { ConversationService } from './conversations.ts';
import { AccountService } from './accounts.ts';
import { RetentionSweeper } from './retention.ts';
import { BotRegistry } from './registry.ts';
import { UsageService } from './usage.ts';
import { isLoopback } from './loopback.ts';

export { BUILDER_BOT_ID, BotService, type BotInput, type GuidelineInput, type JourneyInput, type ToolInput } from './bots.ts';
export { ChatService, TURN_WINDOW, type ChatRequest, type ChatResult } from './chat.ts';
export { ConversationService, type MessagePage } from './conversations.ts';
export { hashKey, newAccessKey, accessKeyPrefix } from './keys.ts';
export { AccountService, AUTH_REVISION_ID, keyView, type KeyView, type MeView, type UserInput, type UserPatch, type KeyInput } from './accounts.ts';
export { RetentionSweeper, type SweepResult } from './retention.ts';
export { purgeOwner, reassignOwner, type PurgeSummary } from './purge.ts';
export { BotRegistry } from './registry.ts';
export { UsageService, TurnMeter, budgetExceeded, isBudgetExceeded, usageGroupings, MAX_PENDING, type UsageGrouping, type UsageReport, type UsageRow, type BudgetView, type UsageRecordingStatus } from './usage.ts';
export { canAccess, hasPermission, localAdmin, requirePermission, type Caller } from './caller.ts';

/** Every service, wired to one store. */
export interface Services {
  store: Store;
  registry: BotRegistry;
  bots: BotService;
  conversations: ConversationService;
  chat: ChatService;
  /** Users, access keys, roles, and who a request's key belongs to. */
  accounts: AccountService;
  /** The same service as `accounts` (the auth hook's name for it). */
  keys: AccountService;
  /** Message retention (`otto serve` starts it). */
  retention: RetentionSweeper;
  provider: Provider;
  /** Usage and cost: activity records, model pricing, reports and monthly budgets. */
  usage: UsageService;
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
  config: Pick<OttoConfig, 'apiKeys' | 'llm' | 'toolTimeoutMs' | 'syncIntervalMs' | 'http'> & { retention?: OttoConfig['retention'] };
  provider?: Provider;
  onBackgroundError?: (error: unknown) => void;
}): Promise<Services> {
  const { store, config } = args;
  const registry = await BotRegistry.open(store, [ottoDefinition()]);
  // A primary that is unreachable at startup (degraded, no mirror) has nothing to load yet:
  // the registry is rehydrated when it comes back.
  const rehydrated = await registry.rehydrate().catch((error: unknown) => {
    if (isStorageError(error, 'UNAVAILABLE')) return 0;
    throw error;
  });
  registry.startSync(config.syncIntervalMs, args.onBackgroundError ?? (() => {}));
  const bots = await BotService.open(store, registry);
  const conversations = await ConversationService.open(store, { pollMs: config.syncIntervalMs });
  const provider = args.provider ?? createProvider(config.llm);
  const chat = new ChatService({ bots, conversations, registry, provider, toolTimeoutMs: config.toolTimeoutMs });
  const usage = await UsageService.open({ store, onError: args.onBackgroundError });
  chat.usage = usage;
  const keys = await AccountService.open({ store, configured: config.apiKeys, allowLocal: isLoopback(config.http.host), onError: args.onBackgroundError });
  const retention = await RetentionSweeper.open({ store, batchSize: config.retention?.batchSize });
  return {
    store,
    registry,
    bots,
    conversations,
    chat,
    accounts: keys,
    keys,
    retention,
    provider,
    usage,
    rehydrated,
    close() {
      registry.stopSync();
      retention.stop();
      conversations.feed.close();
    },
  };
}
