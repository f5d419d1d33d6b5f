import { collections } from '../../domain/collections.ts';
import type { Migration } from './migration.ts';

/** Creates `_conflicts`, where replaying the degraded-mode spool records writes it did not apply. */
export const degraded: Migration = {
  id: '0005_degraded',
  description: 'create _conflicts (spooled writes not applied because the primary changed meanwhile)',
  async up({ store }) {
    await store.collection(collections.conflicts);
  },
};
