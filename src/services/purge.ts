import { collections, type User } from '../domain/index.ts';
import { eq, isIn, type Collection, type Doc, type Store } from '../storage/index.ts';
import { targetSpec } from '../storage/transfer/collections.ts';
import { AUTH_REVISION_ID } from './accounts.ts';
import { DEFINITIONS_REVISION_ID } from './registry.ts';

/** How many documents of each collection a purge deleted. */
export interface PurgeSummary {
  owner_id: string;
  /** Collection name → documents deleted (only collections that had some). */
  deleted: Record<string, number>;
  total: number;
  /** Whether the user record itself was deleted. */
  user_deleted: boolean;
}

/** Domain collections first (bots before their definitions is not needed: every definition carries owner_id too), then others by name. */
const FIRST = [collections.bots.name, collections.guidelines.name, collections.journeys.name, collections.tools.name, collections.tool_mappings.name, collections.conversations.name, collections.messages.name, collections.api_keys.name];

/**
 * Deletes everything `owner_id` owns: every document with that `owner_id` in every collection
 * of the store except system ones (`_…`) — bots and their definitions, conversations, messages,
 * access keys, and whatever other owner-scoped collections exist — in batches of `batchSize`,
 * then the user record when `deleteUser` (default true). Reports progress per batch, and tells
 * every Otto process sharing the store to reload bots and keys. Idempotent: run it again after
 * an interruption. Returns a summary. Throws StorageError.
 */
export async function purgeOwner(args: {
  store: Store;
  owner_id: string;
  deleteUser?: boolean;
  batchSize?: number;
  onProgress?: (line: string) => void;
}): Promise<PurgeSummary> {
  const batchSize = args.batchSize ?? 500;
  const names = await args.store.listCollections();
  const ordered = [...FIRST.filter((n) => names.includes(n)), ...names.filter((n) => !FIRST.includes(n) && !n.startsWith('_') && n !== collections.users.name && n !== collections.role_permissions.name).sort()];
  const deleted: Record<string, number> = {};
  let total = 0;
  for (const name of ordered) {
    const collection: Collection<Doc> = await args.store.collection(targetSpec(name));
    let count = 0;
    for (;;) {
      const page = await collection.find({ where: eq('owner_id', args.owner_id), limit: batchSize });
      if (page.items.length === 0) break;
      count += await collection.deleteMany({ where: isIn('id', page.items.map((d) => d.id)) });
      args.onProgress?.(`${name}: ${count} deleted`);
    }
    if (count > 0) deleted[name] = count;
    total += count;
  }
  let user_deleted = false;
  if (args.deleteUser ?? true) {
    const users = await args.store.collection<User>(collections.users);
    user_deleted = await users.delete({ id: args.owner_id });
  }
  const counters = await args.store.collection(collections.counters);
  await counters.increment({ id: DEFINITIONS_REVISION_ID, field: 'value' });
  await counters.increment({ id: AUTH_REVISION_ID, field: 'value' });
  return { owner_id: args.owner_id, deleted, total, user_deleted };
}

/**
 * Gives everything `from` owns to `to`: sets `owner_id` on every document with `owner_id` =
 * `from` in every non-system collection, in batches (e.g. what the local admin made before the
 * first user existed). Tells every Otto process to reload bots. Idempotent; returns how many
 * documents moved per collection. Throws StorageError (DUPLICATE when `to` already has a bot of
 * the same name).
 */
export async function reassignOwner(args: { store: Store; from: string; to: string; batchSize?: number; onProgress?: (line: string) => void }): Promise<Record<string, number>> {
  const batchSize = args.batchSize ?? 500;
  const names = (await args.store.listCollections()).filter((n) => !n.startsWith('_') && n !== collections.users.name && n !== collections.role_permissions.name);
  const moved: Record<string, number> = {};
  for (const name of names) {
    const collection: Collection<Doc> = await args.store.collection(targetSpec(name));
    let count = 0;
    for (;;) {
      const page = await collection.find({ where: eq('owner_id', args.from), limit: batchSize });
      if (page.items.length === 0) break;
      for (const doc of page.items) await collection.update({ id: doc.id, patch: { owner_id: args.to } });
      count += page.items.length;
      args.onProgress?.(`${name}: ${count} moved`);
    }
    if (count > 0) moved[name] = count;
  }
  const counters = await args.store.collection(collections.counters);
  await counters.increment({ id: DEFINITIONS_REVISION_ID, field: 'value' });
  return moved;
}
