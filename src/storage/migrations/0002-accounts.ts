import { collections } from '../../domain/collections.ts';
import { defaultRolePermissions, roles, type RolePermissionsRecord } from '../../domain/index.ts';
import { isStorageError } from '../contract.ts';
import type { Migration } from './migration.ts';

/**
 * Accounts: creates `users` (username unique, email), `role_permissions` (seeded with the
 * default table, one document per role, keeping any role an admin already changed), the
 * access-key indexes of `api_keys` (prefix, owner), and the indexes retention and the
 * recent-conversations list use. Idempotent.
 */
export const accounts: Migration = {
  id: '0002_accounts',
  description: 'create users and role_permissions (seeded), access-key, retention and recent-conversation indexes',
  async up({ store }) {
    await store.collection(collections.users);
    await store.collection(collections.api_keys);
    await store.collection(collections.conversations);
    await store.collection(collections.messages);
    const table = await store.collection<RolePermissionsRecord>(collections.role_permissions);
    for (const role of roles) {
      if (await table.get({ id: role })) continue;
      try {
        await table.insert({ doc: { id: role, role, permissions: [...defaultRolePermissions[role]] } });
      } catch (error) {
        // Another process seeded it first.
        if (!isStorageError(error, 'DUPLICATE')) throw error;
      }
    }
  },
};
