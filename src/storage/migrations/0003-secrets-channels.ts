import { secretsChannelsCollections } from '../../domain/collections.ts';
import type { Migration } from './migration.ts';

/**
 * Creates the collections of encrypted provider keys (`user_api_keys`, `global_api_keys`),
 * channels (`bot_platform_accounts`, `channel_updates` deduplicating inbound updates by
 * `(account_id, update_id)`, `channel_conversations` mapping chats to conversations) and
 * outgoing webhooks (`bot_webhook_configs`, `webhook_deliveries` unique by `(webhook_id, event_id)`),
 * with their indexes. Idempotent.
 */
export const secretsChannels: Migration = {
  id: '0003_secrets_channels',
  description: 'create provider keys, channel accounts, inbound update dedup, chat mappings, webhook configs and deliveries, with their indexes',
  async up({ store }) {
    for (const spec of secretsChannelsCollections) await store.collection(spec);
  },
};
