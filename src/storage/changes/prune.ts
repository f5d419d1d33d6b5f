/**
 * Pruning the change log. Every write leaves a record holding the whole document, so an
 * unpruned log grows like the data itself. A record may go once every consumer has read it
 * (every cursor in `_mirrors`: mirrors and the webhook outbox, configured here or in another
 * process) and it is older than the retention window. The newest record always stays: new seqs
 * are taken after it. A mirror added later starts from a snapshot, never from the pruned start.
 */
import { StorageError, type Collection, type Doc } from '../contract.ts';
import { and, gte, lte } from '../where.ts';
import type { ChangeLog } from './change-log.ts';
import { CHANGES_SPEC, INTENTS_SPEC, MIRRORS_SPEC, seqId, type MirrorCursor, type StoredChange } from './records.ts';

/** How many seqs one delete covers (each is a range delete on the primary key). */
const DELETE_CHUNK = 5_000;

/** What {@link pruneChangeLog} did (or, with `dryRun`, would do). */
export interface PruneResult {
  /** The log's highest seq. */
  head: number;
  /** The lowest seq still stored before pruning (0 for an empty log). */
  first: number;
  /** Records up to and including this seq are gone (or would be); 0 when none could go. */
  through: number;
  /** How many change records were deleted (0 on a dry run). */
  deleted: number;
  /** The cursor that holds pruning back the most (the least advanced), or null when there are none. */
  held_by: { id: string; url: string; seq: number } | null;
  /** Records written after this moment are kept whatever the cursors say (ISO-8601). */
  kept_since: string;
}

/**
 * Deletes the change records every consumer has read that are older than `keepMs`, never the
 * newest one. `dryRun` only computes what would go. Progress lines go to `onProgress`.
 * Returns what was (or would be) pruned. Throws StorageError (UNAVAILABLE while the primary is
 * unreachable; INVALID for a negative `keepMs`).
 */
export async function pruneChangeLog(args: { log: ChangeLog; keepMs: number; now?: number; dryRun?: boolean; onProgress?: (line: string) => void }): Promise<PruneResult> {
  const { log } = args;
  if (!Number.isFinite(args.keepMs) || args.keepMs < 0) throw new StorageError('INVALID', 'keepMs must be a number of milliseconds >= 0', { field: 'keepMs' });
  const cutoff = new Date((args.now ?? Date.now()) - args.keepMs).toISOString();
  const changes = await log.primary.collection<StoredChange>(CHANGES_SPEC);
  const head = await log.lastSeq();
  const intents = log.mode === 'write-ahead' ? await log.primary.collection<Doc>(INTENTS_SPEC) : undefined;
  const first = await log.firstSeq();
  const cursors = await log.primary.collection<MirrorCursor>(MIRRORS_SPEC);
  let held: PruneResult['held_by'] = null;
  for await (const batch of cursors.scan()) {
    for (const cursor of batch) if (!held || cursor.seq < held.seq) held = { id: cursor.id, url: cursor.url, seq: cursor.seq };
  }
  const result: PruneResult = { head, first, through: 0, deleted: 0, held_by: held, kept_since: cutoff };
  // Read by every consumer, and never the newest record.
  const limit = Math.min(held ? held.seq : head, head - 1);
  if (first === 0 || limit < first) return result;
  const through = await lastWrittenBefore({ changes, low: first, high: limit, cutoff });
  if (through < first) return result;
  result.through = through;
  if (args.dryRun) return result;
  for (let low = first; low <= through; low += DELETE_CHUNK) {
    const high = Math.min(through, low + DELETE_CHUNK - 1);
    const range = and(gte('id', seqId(low)), lte('id', seqId(high)));
    result.deleted += await changes.deleteMany({ where: range });
    // Intents go after their records (no reader reads below every cursor, so neither is missed).
    if (intents) await intents.deleteMany({ where: range });
    args.onProgress?.(`change log: pruned seq ${first}–${high} of ${first}–${through} (${result.deleted} record(s))`);
  }
  return result;
}

/**
 * The highest seq in [low, high] whose record was written before `cutoff` (records are written
 * in seq order, so their times rise with it), or low - 1 when none was. A seq without a
 * record counts as too new, which only ever keeps more.
 */
async function lastWrittenBefore(args: { changes: Collection<StoredChange>; low: number; high: number; cutoff: string }): Promise<number> {
  let low = args.low;
  let high = args.high;
  let found = args.low - 1;
  while (low <= high) {
    const mid = Math.floor((low + high) / 2);
    const record = await args.changes.get({ id: seqId(mid) });
    if (record && record.at < args.cutoff) {
      found = mid;
      low = mid + 1;
    } else {
      high = mid - 1;
    }
  }
  return found;
}

/**
 * Prunes `log()` every `intervalMs` (the first time after one interval) until the returned
 * function is called; `onPruned` hears of each prune that deleted something. `log` is asked each time (a degraded primary's log is unreadable until it
 * is reached). Errors go to `onError`, never thrown; one prune runs at a time.
 */
export function schedulePruning(args: { log: () => ChangeLog; keepMs: number; intervalMs: number; onError: (error: unknown) => void; onPruned?: (result: PruneResult) => void }): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void (async () => pruneChangeLog({ log: args.log(), keepMs: args.keepMs }))()
      .then((result) => {
        if (result.deleted > 0) args.onPruned?.(result);
      })
      .catch(args.onError)
      .finally(() => (running = false));
  }, args.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
