export * from './entities.ts';
export { collections, domainCollections } from './collections.ts';
export { newId } from './ids.ts';
