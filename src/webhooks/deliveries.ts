import { collections } from '../domain/index.ts';
import { OttoError } from '../domain/errors.ts';
import { canAccess, type Caller } from '../services/caller.ts';
import { and, eq, type Page, type Store, type Where } from '../storage/index.ts';
import type { WebhookDelivery } from './outbox.ts';

/**
 * Recent deliveries, newest first: of one webhook, or every webhook the caller may see (no
 * caller: all, for the CLI). Throws NOT_FOUND when `webhookId` is unknown or not the caller's,
 * StorageError.
 */
export async function listDeliveries(args: { store: Store; caller?: Caller; webhookId?: string; limit?: number; after?: string | null }): Promise<Page<WebhookDelivery>> {
  const deliveries = await args.store.collection<WebhookDelivery>(collections.webhook_deliveries);
  const clauses: Where[] = [];
  if (args.webhookId) {
    if (args.caller) {
      const configs = await args.store.collection<{ id: string; owner_id: string } & WebhookDelivery>(collections.bot_webhook_configs);
      const config = await configs.get({ id: args.webhookId });
      if (!config || !canAccess(args.caller, config.owner_id)) throw new OttoError('NOT_FOUND', `webhook ${args.webhookId} not found`);
    }
    clauses.push(eq('webhook_id', args.webhookId));
  } else if (args.caller && !args.caller.admin) {
    clauses.push(eq('owner_id', args.caller.owner_id));
  }
  const where = clauses.length === 0 ? undefined : clauses.length === 1 ? clauses[0] : and(...clauses);
  return deliveries.find({ where, sort: [{ field: 'created_at', direction: 'desc' }], limit: args.limit ?? 20, after: args.after ?? null });
}
