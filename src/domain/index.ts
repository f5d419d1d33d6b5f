export * from './entities.ts';
export { collections, domainCollections, usageCollections } from './collections.ts';
export { newId } from './ids.ts';
export { adminOnlyPermissions, allPermissions, defaultRolePermissions, isRole, permissionDescriptions, roles, type Permission, type Role } from './permissions.ts';
export * from './usage.ts';
