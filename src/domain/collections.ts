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
    ],
  },
  messages: {
    name: 'messages',
    schemaVersion: 1,
    indexes: [{ name: 'conversation_offset', fields: [['conversation_id', 1], ['offset', 1]], unique: true }],
  },
  api_keys: {
    name: 'api_keys',
    schemaVersion: 1,
    indexes: [{ name: 'key_hash', fields: [['key_hash', 1]], unique: true }],
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
} satisfies Record<string, CollectionSpec>;

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
];
