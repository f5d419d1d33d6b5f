/**
 * The change log, mirrors and their targets: Otto's "every write is an event" stream.
 * See `change-log.ts` (how records are written and read) and `mirror.ts` (how mirrors follow it).
 */
export { attachChangeLog, openChangeLogReader, type LoggedStore } from './attach.ts';
export { DEFAULT_RECOVERY_MS, isTransactionalStore, type ChangeLog, type ChangeLogOptions, type ReadChangesResult } from './change-log.ts';
export { isMirrored, Mirror, MirrorSet, type MirrorOptions, type MirrorStatus } from './mirror.ts';
export { CHANGES_SPEC, MIRRORS_SPEC, UNLOGGED_COLLECTIONS, type ChangeRecord, type MirrorCursor, type StoredChange } from './records.ts';
export { pruneChangeLog, schedulePruning, type PruneResult } from './prune.ts';
export { flushTarget, mirrorId, openTarget, parseTargetUrl, type TargetUrl } from './targets.ts';
