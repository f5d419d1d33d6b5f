import { collections, usageCollections } from '../../domain/collections.ts';
import { PRICING_AS_OF, seededPrices, type ModelPricing } from '../../domain/usage.ts';
import { isStorageError } from '../contract.ts';
import type { Migration } from './migration.ts';

/**
 * Creates `ai_activity_logs` (indexed by day and owner, owner and day, bot and day),
 * `ai_model_configs` and `usage_budgets`, and seeds the prices of common models (as of
 * PRICING_AS_OF). A price that exists (seeded before, or set by an admin) is never
 * overwritten. Idempotent.
 */
export const usage: Migration = {
  id: '0004_usage',
  description: 'create activity logs (by day, owner and bot), model pricing (seeded for common models) and monthly budgets',
  async up({ store }) {
    for (const spec of usageCollections) await store.collection(spec);
    const pricing = await store.collection<ModelPricing>(collections.ai_model_configs);
    for (const price of seededPrices) {
      if (await pricing.get({ id: price.model })) continue;
      try {
        await pricing.insert({
          doc: { id: price.model, model: price.model, input_usd_per_1m: price.input, output_usd_per_1m: price.output, source: 'seed', as_of: PRICING_AS_OF },
        });
      } catch (error) {
        // Another process seeded it meanwhile.
        if (!isStorageError(error, 'DUPLICATE')) throw error;
      }
    }
  },
};
