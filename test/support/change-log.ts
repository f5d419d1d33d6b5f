import type { ChangeLog, ChangeRecord } from '../../src/storage/changes/index.ts';

/** Every committed change after `after`, following the log to its end (bounded). */
export async function readAll(log: ChangeLog, after = 0): Promise<ChangeRecord[]> {
  const out: ChangeRecord[] = [];
  let cursor = after;
  for (let i = 0; i < 1000; i++) {
    const batch = await log.readChanges({ after: cursor, limit: 100 });
    out.push(...batch.changes);
    if (batch.next === cursor) return out;
    cursor = batch.next;
  }
  throw new Error('the log did not end');
}
