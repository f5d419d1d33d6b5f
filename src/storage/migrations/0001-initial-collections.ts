import { collections, domainCollections } from '../../domain/collections.ts';
import type { Migration } from './migration.ts';

/** Creates every collection and its indexes (tables and generated columns on SQLite). */
export const initialCollections: Migration = {
  id: '0001_initial_collections',
  description: 'create bots, guidelines, journeys, tools, tool mappings, conversations, messages, keys, counters and their indexes',
  async up({ store }) {
    await store.collection(collections.counters);
    for (const spec of domainCollections) await store.collection(spec);
  },
};
