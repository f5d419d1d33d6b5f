import { collections } from '../../domain/collections.ts';
import type { Migration } from './migration.ts';

/**
 * Creates the collections Otto started with and their indexes (tables and generated columns on
 * SQLite). The list is fixed: collections added later are created by their own migrations, so
 * what 0001 does never changes once it is recorded.
 */
export const initialCollections: Migration = {
  id: '0001_initial_collections',
  description: 'create bots, guidelines, journeys, tools, tool mappings, conversations, messages, keys, counters and their indexes',
  async up({ store }) {
    for (const spec of [
      collections.counters,
      collections.bots,
      collections.guidelines,
      collections.journeys,
      collections.tools,
      collections.tool_mappings,
      collections.conversations,
      collections.messages,
      collections.api_keys,
    ]) {
      await store.collection(spec);
    }
  },
};
