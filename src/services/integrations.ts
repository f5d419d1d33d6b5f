/**
 * What Otto connects to beyond its own API: encrypted provider keys (and the per-owner choice
 * of provider key), channels (Telegram, Slack) and outgoing webhooks (an outbox fed from the
 * change log, and its dispatcher). Built by `createOtto` next to the core services.
 */
import { createHash } from 'node:crypto';
import type { OttoConfig } from '../config.ts';
import { ChannelService } from '../channels/index.ts';
import { createProvider, type Provider } from '../engine/index.ts';
import { ProviderKeyService, createSecretBox, type SecretBox } from '../secrets/index.ts';
import type { ChangeLog, Mirror } from '../storage/changes/index.ts';
import type { Store } from '../storage/index.ts';
import { WebhookDispatcher, WebhookService, startOutbox } from '../webhooks/index.ts';
import type { Services } from './index.ts';

export interface Integrations {
  box: SecretBox;
  providerKeys: ProviderKeyService;
  channels: ChannelService;
  webhooks: WebhookService;
  dispatcher: WebhookDispatcher;
  /** Starts the webhook outbox (following the change log) and the dispatcher. Throws StorageError. */
  start(): Promise<void>;
  /** Stops background work and waits (at most 5 s) for channel turns in flight; the rest are recovered later. Idempotent. */
  close(): Promise<void>;
}

const CACHED_PROVIDERS = 64;
/** How often channel updates acknowledged but not answered (a crashed process) are looked for. */
const RECOVERY_INTERVAL_MS = 30_000;
/** How long shutdown waits for channel turns in flight (the rest are recovered later). */
const SHUTDOWN_WAIT_MS = 5_000;

/**
 * Builds the integrations on the logged store and wires the per-owner provider choice into
 * the chat service (only for the `openai` provider, and only when no provider was injected).
 * Throws StorageError.
 */
export async function createIntegrations(args: {
  store: Store;
  log: ChangeLog;
  config: OttoConfig;
  services: Services;
  providerInjected: boolean;
  onEvent?: (line: string) => void;
}): Promise<Integrations> {
  const { store, config, services } = args;
  const box = createSecretBox(config.secrets);
  const providerKeys = await ProviderKeyService.open(store, box);
  const webhooks = await WebhookService.open({ store, box, bots: services.bots });
  const channels = await ChannelService.open({
    store,
    box,
    bots: services.bots,
    chat: services.chat,
    conversations: services.conversations,
    publicUrl: config.channels.publicUrl,
    telegramApiBase: config.channels.telegramApiBase,
    slackApiBase: config.channels.slackApiBase,
    onEvent: args.onEvent,
  });
  const dispatcher = await WebhookDispatcher.open({ store, webhooks, options: { ...config.webhooks, onEvent: args.onEvent } });

  if (config.llm.provider === 'openai' && !args.providerInjected) {
    // One provider per distinct key (the key lives only in the provider's closure).
    const byKey = new Map<string, Provider>();
    const fallback = services.provider;
    services.chat.providerFor = async (ownerId) => {
      if (!box.enabled) return fallback;
      const key = await providerKeys.keyFor({ ownerId, provider: 'openai' });
      if (!key) return fallback;
      const id = createHash('sha256').update(key).digest('hex');
      let provider = byKey.get(id);
      if (!provider) {
        provider = createProvider({ ...config.llm, apiKey: key });
        if (byKey.size >= CACHED_PROVIDERS) byKey.delete(byKey.keys().next().value!);
        byKey.set(id, provider);
      }
      return provider;
    };
  }

  let outbox: Mirror | undefined;
  let closed = false;
  return {
    box,
    providerKeys,
    channels,
    webhooks,
    dispatcher,
    async start() {
      outbox = await startOutbox({ log: args.log, store, webhooks, intervalMs: config.webhooks.intervalMs, onEnqueued: () => dispatcher.wake(), onEvent: args.onEvent });
      dispatcher.start();
      channels.startRecovery(RECOVERY_INTERVAL_MS);
    },
    async close() {
      if (closed) return;
      closed = true;
      await outbox?.stop();
      await dispatcher.stop();
      channels.stopRecovery();
      await channels.idle({ timeoutMs: SHUTDOWN_WAIT_MS });
    },
  };
}
