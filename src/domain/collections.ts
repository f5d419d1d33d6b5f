import type { CollectionSpec } from '../storage/contract.ts';

/**
 * Every collection Otto stores, with its indexes. Field names follow the seeds
 * (snake_case). Tenant-scoped collections carry `owner_id`.
 */
export const collections = {
  bots: {
    name: 'bots',
    schemaVersion: 1,
    indexes: [
      { name: 'owner_created', fields: [['owner_id', 1], ['created_at', 1]] },
      { name: 'created', fields: [['created_at', 1]] },
      { name: 'owner_name', fields: [['owner_id', 1], ['name_key', 1]], unique: true },
    ],
  },
  guidelines: {
    name: 'guidelines',
    schemaVersion: 1,
    indexes: [{ name: 'bot_created', fields: [['bot_id', 1], ['created_at', 1]] }],
  },
  journeys: {
    name: 'journeys',
    schemaVersion: 1,
    indexes: [{ name: 'bot_created', fields: [['bot_id', 1], ['created_at', 1]] }],
  },
  tools: {
    name: 'tools',
    schemaVersion: 1,
    indexes: [{ name: 'bot_name', fields: [['bot_id', 1], ['name', 1]], unique: true }],
  },
  tool_mappings: {
    name: 'tool_mappings',
    schemaVersion: 1,
    indexes: [{ name: 'bot_guideline_tool', fields: [['bot_id', 1], ['guideline_id', 1], ['tool_name', 1]], unique: true }],
  },
  conversations: {
    name: 'conversations',
    schemaVersion: 1,
    indexes: [
      { name: 'owner_created', fields: [['owner_id', 1], ['created_at', 1]] },
      { name: 'bot_created', fields: [['bot_id', 1], ['created_at', 1]] },
      { name: 'user_created', fields: [['user_id', 1], ['created_at', 1]] },
      // The seed's chat_sessions (user_id, updated_at): a user's conversations by latest activity.
      { name: 'owner_updated', fields: [['owner_id', 1], ['updated_at', 1]] },
    ],
  },
  messages: {
    name: 'messages',
    schemaVersion: 1,
    indexes: [
      { name: 'conversation_offset', fields: [['conversation_id', 1], ['offset', 1]], unique: true },
      // Retention: a conversation's messages older than a cutoff, in batches.
      { name: 'conversation_created', fields: [['conversation_id', 1], ['created_at', 1]] },
    ],
  },
  api_keys: {
    name: 'api_keys',
    schemaVersion: 1,
    indexes: [
      { name: 'key_hash', fields: [['key_hash', 1]], unique: true },
      // Access keys are found by their clear-text prefix, then compared by hash.
      { name: 'prefix', fields: [['prefix', 1]] },
      { name: 'owner_created', fields: [['owner_id', 1], ['created_at', 1]] },
    ],
  },
  users: {
    name: 'users',
    schemaVersion: 1,
    indexes: [
      { name: 'username', fields: [['username', 1]], unique: true },
      { name: 'email', fields: [['email', 1]] },
    ],
  },
  role_permissions: {
    name: 'role_permissions',
    schemaVersion: 1,
    indexes: [],
  },
  // --- secrets, channels and outgoing webhooks (migration 0003_secrets_channels) ---
  user_api_keys: {
    name: 'user_api_keys',
    schemaVersion: 1,
    indexes: [{ name: 'owner_provider_name', fields: [['owner_id', 1], ['provider', 1], ['name', 1]], unique: true }],
  },
  global_api_keys: {
    name: 'global_api_keys',
    schemaVersion: 1,
    indexes: [{ name: 'provider_name', fields: [['provider', 1], ['name', 1]], unique: true }],
  },
  bot_platform_accounts: {
    name: 'bot_platform_accounts',
    schemaVersion: 1,
    indexes: [
      { name: 'owner_created', fields: [['owner_id', 1], ['created_at', 1]] },
      { name: 'bot_platform', fields: [['bot_id', 1], ['platform', 1]] },
    ],
  },
  channel_updates: {
    name: 'channel_updates',
    schemaVersion: 1,
    indexes: [
      { name: 'account_update', fields: [['account_id', 1], ['update_id', 1]], unique: true },
      { name: 'status_lease', fields: [['status', 1], ['lease_until', 1]] },
    ],
  },
  channel_conversations: {
    name: 'channel_conversations',
    schemaVersion: 1,
    indexes: [{ name: 'account_chat', fields: [['account_id', 1], ['chat_key', 1]], unique: true }],
  },
  bot_webhook_configs: {
    name: 'bot_webhook_configs',
    schemaVersion: 1,
    indexes: [
      { name: 'owner_created', fields: [['owner_id', 1], ['created_at', 1]] },
      { name: 'bot_created', fields: [['bot_id', 1], ['created_at', 1]] },
    ],
  },
  webhook_deliveries: {
    name: 'webhook_deliveries',
    schemaVersion: 1,
    indexes: [
      { name: 'webhook_event', fields: [['webhook_id', 1], ['event_id', 1]], unique: true },
      { name: 'status_due', fields: [['status', 1], ['next_attempt_at', 1]] },
      { name: 'webhook_created', fields: [['webhook_id', 1], ['created_at', 1]] },
      { name: 'owner_created', fields: [['owner_id', 1], ['created_at', 1]] },
      { name: 'created', fields: [['created_at', 1]] },
    ],
  },
  // --- usage, pricing and budgets (migration 0004_usage) ---
  /** One document per provider call (the seed's ai_activity_logs): reports group them by day, bot, model or user. */
  ai_activity_logs: {
    name: 'ai_activity_logs',
    schemaVersion: 1,
    indexes: [
      // The seed's "usage by date and user": admin reports over a date range, and per user.
      { name: 'day_owner', fields: [['day', 1], ['owner_id', 1]] },
      { name: 'owner_day', fields: [['owner_id', 1], ['day', 1]] },
      // A bot's spending this month (budgets) and reports filtered by bot.
      { name: 'bot_day', fields: [['bot_id', 1], ['day', 1]] },
    ],
  },
  /** Pricing per model (the seed's ai_model_configs); the id is the model name. */
  ai_model_configs: {
    name: 'ai_model_configs',
    schemaVersion: 1,
    indexes: [],
  },
  /** Monthly budgets in USD: id `user:<owner_id>` or `bot:<bot_id>`. */
  usage_budgets: {
    name: 'usage_budgets',
    schemaVersion: 1,
    indexes: [{ name: 'owner', fields: [['owner_id', 1]] }],
  },
  counters: {
    name: '_counters',
    schemaVersion: 1,
    indexes: [],
  },
  migrations: {
    name: '_migrations',
    schemaVersion: 1,
    indexes: [],
  },
  /** Spooled writes not applied on replay (degraded mode): the primary had changed meanwhile. */
  conflicts: {
    name: '_conflicts',
    schemaVersion: 1,
    indexes: [{ name: 'status_created', fields: [['status', 1], ['created_at', 1]] }],
  },
} satisfies Record<string, CollectionSpec>;

/** The collections created by migration `0004_usage`. */
export const usageCollections: CollectionSpec[] = [collections.ai_activity_logs, collections.ai_model_configs, collections.usage_budgets];

/** The domain collections (everything but system ones), in a stable order. */
export const domainCollections: CollectionSpec[] = [
  collections.bots,
  collections.guidelines,
  collections.journeys,
  collections.tools,
  collections.tool_mappings,
  collections.conversations,
  collections.messages,
  collections.api_keys,
  collections.users,
  collections.role_permissions,
  collections.user_api_keys,
  collections.global_api_keys,
  collections.bot_platform_accounts,
  collections.channel_updates,
  collections.channel_conversations,
  collections.bot_webhook_configs,
  collections.webhook_deliveries,
  ...usageCollections,
];

/** The collections created by migration `0003_secrets_channels`. */
export const secretsChannelsCollections: CollectionSpec[] = [
  collections.user_api_keys,
  collections.global_api_keys,
  collections.bot_platform_accounts,
  collections.channel_updates,
  collections.channel_conversations,
  collections.bot_webhook_configs,
  collections.webhook_deliveries,
];
