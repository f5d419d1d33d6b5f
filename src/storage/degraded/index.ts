/**
 * Degraded mode: serving from a mirror and a durable spool while the primary is unreachable,
 * and replaying the spool into it when it returns. See `resilient-store.ts`.
 */
export { createResilientStore, type DegradedStatus, type RenumberRule, type ResilientStore, type ResilientStoreOptions } from './resilient-store.ts';
export { Spool, readSpoolSummary, type SpoolEntry, type SpoolResult, type SpoolSummary, type SpooledWrite } from './spool.ts';
export { CONFLICTS_SPEC, countOpenConflicts, type ConflictRecord } from './conflicts.ts';
