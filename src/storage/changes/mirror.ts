/**
 * Mirrors: targets fed from the change log, each from its own durable cursor.
 *
 * A mirror's cursor lives in the primary's `_mirrors` collection (`{id, url, seq, …}`): every
 * change up to `seq` is in the mirror. A background loop reads the log after the cursor in
 * batches, applies each batch idempotently (`upsert({verbatim: true})` or `delete`), makes it
 * durable on the mirror, and only then moves the cursor. Nothing in the write path waits for it:
 * a mirror that is down only stops its own loop, which retries with backoff and catches up
 * from its cursor when the mirror returns. A mirror seen for the first time first gets a full
 * copy of the primary (so data written before the log existed is there too).
 *
 * Within a batch only the last change of each document is applied. With a transactional log
 * (seq order = commit order) that change's document is the state to write; with a write-ahead
 * log two processes' writes of one document may be logged in the opposite order of their
 * commits, so the state is read from the primary instead (one query per collection per batch).
 * Either way a unique-index collision on the mirror (a document there is older than the
 * primary's) is healed by bringing the colliding documents to the primary's state first.
 *
 * Several processes may share a primary and a mirror list: a lease in the cursor document
 * lets one of them feed each mirror while the others stand by.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { StorageError, isStorageError, type Collection, type Doc, type Scalar, type Store } from '../contract.ts';
import { InterruptibleSleep } from '../interruptible-sleep.ts';
import { and, eq } from '../where.ts';
import type { ChangeLog } from './change-log.ts';
import { MIRRORS_SPEC, type ChangeRecord, type MirrorCursor } from './records.ts';
import { flushTarget, mirrorId, openTarget, parseTargetUrl, type TargetUrl } from './targets.ts';

/** A mirror's state as `/health` and `otto mirror status` show it. */
export interface MirrorStatus {
  /** The mirror's URL without credentials. */
  url: string;
  /** Every change up to this seq is in the mirror. */
  seq: number;
  /** The primary's last seq minus `seq`. */
  lag: number;
  /** How old the oldest change not yet in the mirror is (0 when caught up). */
  seconds_behind: number;
  /** `ok`: caught up (or nearly); `behind`: changes waiting longer than the threshold, or the first copy not done; `down`: the last attempt failed. */
  status: 'ok' | 'behind' | 'down';
  last_error?: string;
  /** Whether this process is the one feeding the mirror (others stand by). */
  active: boolean;
}

/** Settings of the mirror loops. */
export interface MirrorOptions {
  /** Changes applied per batch; default 500. */
  batchSize?: number;
  /** How often an idle mirror looks for changes from other processes; default 1000 ms (this process's own wake it at once). */
  intervalMs?: number;
  /** How often an idle mirror checks that its target still answers; default 5000 ms. */
  probeMs?: number;
  /** Longest wait between retries of a failing mirror; default 30000 ms. */
  maxBackoffMs?: number;
  /** How long a process's claim to feed a mirror lasts without renewal; default 30000 ms. */
  leaseMs?: number;
  /**
   * After applying a batch smaller than `batchSize`, how long the loop lets changes gather
   * before the next one; default 100 ms. A stream of single writes is then applied, made
   * durable and its cursor saved once per interval instead of once per write (each of those
   * is an fsync, and the cursor save a write on the primary, which would compete with the
   * writes being mirrored). A mirror lags by at most this much more.
   */
  lingerMs?: number;
  /** A mirror whose oldest missing change is older than this is `behind`; default 10 s. */
  behindAfterS?: number;
  /** Opens a target (tests inject failures); default `openTarget`. */
  open?: (target: TargetUrl) => Promise<Store>;
  /** One line per state change (down, back, caught up after an outage). */
  onEvent?: (line: string) => void;
  /**
   * Asked before a batch is read, with an ordered log only (where every change up to the head
   * is committed): when it resolves true, the target wants none of the changes committed so
   * far, and the cursor moves to the head without reading them. The head is read before
   * asking, so whatever the answer depends on (the webhook outbox: whether any webhook is
   * enabled) is asked after those changes were committed. Throws as the caller's check.
   */
  skipWhen?: () => Promise<boolean>;
}

const DEFAULTS = { batchSize: 500, intervalMs: 1000, probeMs: 5000, maxBackoffMs: 30_000, leaseMs: 30_000, behindAfterS: 10, lingerMs: 100 };
/** Changes replayed before the head when a write-ahead log is copied (writes in flight during the copy). */
const SNAPSHOT_REPLAY_MARGIN = 1000;
const HEAL_DEPTH = 3;
/** Reads of primary states in flight at once. */
const STATE_READS = 16;
const STOP_WAIT_MS = 5_000;

/**
 * Whether a collection is copied to mirrors: the domain collections, `_counters` (counters go
 * with the documents they number) and any collection not named `_…`. Other system collections
 * describe one store's own state (its migrations, change log, mirror cursors, transfer
 * checkpoints) and stay with it, as in `otto transfer`.
 */
export function isMirrored(collection: string): boolean {
  return !collection.startsWith('_') || collection === '_counters';
}

/** One mirror and its background loop. */
export class Mirror {
  readonly target: TargetUrl;
  readonly id: string;
  private readonly log: ChangeLog;
  private readonly options: typeof DEFAULTS & Pick<MirrorOptions, 'open' | 'onEvent' | 'skipWhen'>;
  private readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private store: Store | undefined;
  private readonly targetCollections = new Map<string, Collection<Doc>>();
  private cursorDoc: MirrorCursor | null = null;
  private lastError: string | null = null;
  private active = false;
  private running: Promise<void> | undefined;
  private stopped = true;
  private readonly pause = new InterruptibleSleep();
  private lastProbe = 0;
  /** Whether the last batch applied was full (more changes are likely waiting). */
  private lastBatchFull = true;
  private removeListener: (() => void) | undefined;

  constructor(url: string, log: ChangeLog, options: MirrorOptions = {}) {
    this.target = parseTargetUrl(url);
    this.id = mirrorId(this.target.display);
    this.log = log;
    this.options = {
      batchSize: options.batchSize ?? DEFAULTS.batchSize,
      intervalMs: options.intervalMs ?? DEFAULTS.intervalMs,
      probeMs: options.probeMs ?? DEFAULTS.probeMs,
      maxBackoffMs: options.maxBackoffMs ?? DEFAULTS.maxBackoffMs,
      leaseMs: options.leaseMs ?? DEFAULTS.leaseMs,
      behindAfterS: options.behindAfterS ?? DEFAULTS.behindAfterS,
      lingerMs: options.lingerMs ?? DEFAULTS.lingerMs,
      open: options.open,
      onEvent: options.onEvent,
      skipWhen: options.skipWhen,
    };
  }

  get url(): string {
    return this.target.display;
  }

  /** Starts the background loop (idempotent). Never throws; failures show in `status()`. */
  start(): void {
    if (this.running) return;
    this.stopped = false;
    this.removeListener = this.log.onCommit(() => this.pause.wake());
    this.running = this.loop().finally(() => (this.running = undefined));
  }

  /** Stops the loop, waiting (at most ~5 s) for the batch in flight, and closes the target. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.removeListener?.();
    this.removeListener = undefined;
    this.pause.wake();
    const running = this.running;
    if (running) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)));
      await Promise.race([running, timeout]);
      clearTimeout(timer);
    }
    await this.closeTarget();
    if (this.active) await this.releaseLease().catch(() => {});
    this.active = false;
  }

  /**
   * Catches up in the foreground until the mirror has every change committed so far (or
   * `deadline` passes). Returns the status afterwards. Throws StorageError when the mirror or
   * the primary fails, or when another process holds the mirror's lease.
   */
  async syncOnce(args: { timeoutMs?: number } = {}): Promise<MirrorStatus> {
    const deadline = Date.now() + (args.timeoutMs ?? 60_000);
    this.stopped = false;
    try {
      for (;;) {
        const head = await this.log.lastSeq();
        const progressed = await this.step({ force: true });
        if (!progressed && (this.cursorDoc?.seq ?? 0) >= head && this.cursorDoc?.snapshot_done) break;
        if (Date.now() > deadline) throw new StorageError('UNAVAILABLE', `mirror ${this.url} did not catch up within ${Math.round((args.timeoutMs ?? 60_000) / 1000)} s`);
        if (!progressed) await delay(Math.min(200, this.log.recoveryMs));
      }
    } catch (error) {
      await this.recordError(error);
      throw error;
    }
    return this.status();
  }

  private async loop(): Promise<void> {
    let backoff = 0;
    while (!this.stopped) {
      let progressed = false;
      try {
        progressed = await this.step({ force: false });
        backoff = 0;
      } catch (error) {
        if (this.stopped) break;
        await this.recordError(error);
        await this.closeTarget();
        backoff = Math.min(Math.max(backoff * 2, 250), this.options.maxBackoffMs);
        await this.pause.sleep(backoff);
        continue;
      }
      if (!progressed && !this.stopped) await this.pause.sleep(this.options.intervalMs);
      // A partial batch: let more changes gather (commits do not cut this short) before the next one.
      else if (progressed && !this.lastBatchFull && !this.stopped && this.options.lingerMs > 0) await delay(this.options.lingerMs);
    }
  }

  /**
   * One round: hold the lease, make the first copy if needed, apply one batch. Returns true
   * when it moved the cursor (so the caller goes on at once). Throws StorageError.
   */
  private async step(args: { force: boolean }): Promise<boolean> {
    if (!(await this.holdLease(args.force))) return false;
    const store = await this.openStore();
    const cursor = this.cursorDoc!;
    if (!cursor.snapshot_done) {
      await this.snapshot(store);
      this.recovered();
      return true;
    }
    if (this.options.skipWhen && this.log.ordered) {
      const head = await this.log.lastSeq();
      if (head > cursor.seq && (await this.options.skipWhen())) {
        this.lastBatchFull = false;
        await this.saveCursor({ seq: head });
        this.recovered();
        return true;
      }
    }
    const batch = await this.log.readChanges({ after: cursor.seq, limit: this.options.batchSize });
    if (batch.next === cursor.seq) {
      if (Date.now() - this.lastProbe >= this.options.probeMs) {
        this.lastProbe = Date.now();
        const probe = await store.health();
        if (!probe.ok) throw new StorageError('UNAVAILABLE', probe.error ?? 'the mirror does not answer');
      }
      this.recovered();
      return false;
    }
    this.lastBatchFull = batch.changes.length >= this.options.batchSize;
    await this.apply(store, batch.changes);
    await flushTarget(store);
    await this.saveCursor({ seq: batch.next });
    this.lastProbe = Date.now();
    this.recovered();
    return true;
  }

  /** Applies a batch: the last change of each document, in the order of those changes. */
  private async apply(store: Store, changes: ChangeRecord[]): Promise<void> {
    const last = new Map<string, ChangeRecord>();
    for (const change of changes) {
      if (!isMirrored(change.collection)) continue;
      const key = `${change.collection}\u0000${change.id}`;
      last.delete(key);
      last.set(key, change);
    }
    const states = this.log.ordered ? new Map([...last].map(([key, c]) => [key, c.doc])) : await this.currentStates([...last.values()]);
    for (const [key, change] of last) await this.put(store, change.collection, change.id, states.get(key) ?? null, 0);
  }

  /**
   * The primary's current state of each changed document (null when gone), by
   * `collection\0id`: gets by id, a few at a time (an indexed lookup on every engine).
   */
  private async currentStates(changes: ChangeRecord[]): Promise<Map<string, Doc | null>> {
    const states = new Map<string, Doc | null>();
    for (let i = 0; i < changes.length; i += STATE_READS) {
      await Promise.all(
        changes.slice(i, i + STATE_READS).map(async (c) => {
          const primary = await this.log.primary.collection(this.log.specFor(c.collection));
          states.set(`${c.collection}\u0000${c.id}`, await primary.get({ id: c.id }));
        }),
      );
    }
    return states;
  }

  /** Writes one document's state to the mirror (null: deleted), healing unique-index collisions. */
  private async put(store: Store, collection: string, id: string, doc: Doc | null, depth: number): Promise<void> {
    const target = await this.targetCollection(store, collection);
    if (doc === null) {
      await target.delete({ id });
      return;
    }
    try {
      await target.upsert({ doc, verbatim: true });
    } catch (error) {
      if (!isStorageError(error, 'DUPLICATE') || depth >= HEAL_DEPTH) throw error;
      if (await this.heal(store, collection, doc, depth)) await target.upsert({ doc, verbatim: true });
    }
  }

  /**
   * `doc` collides on a unique index of the mirror with another document. The primary cannot
   * hold both, so one of them is not the primary's current state: a replayed change older than
   * the mirror (after a crash between applying a batch and saving the cursor), or a document the
   * mirror has not caught up on. Brings whichever is stale to the primary's state. Returns true
   * when `doc` should still be written, false when the primary's newer state was written instead.
   * Throws DUPLICATE when both are current (the mirror's indexes disagree with the primary's).
   */
  private async heal(store: Store, collection: string, doc: Doc, depth: number): Promise<boolean> {
    const spec = this.log.specFor(collection);
    const target = await this.targetCollection(store, collection);
    const primary = await this.log.primary.collection(spec);
    const current = await primary.get({ id: doc.id });
    if (!sameState(current, doc)) {
      await this.put(store, collection, doc.id, current, depth + 1);
      return false;
    }
    for (const index of spec.indexes) {
      if (!index.unique) continue;
      const values = index.fields.map(([f]) => (doc as Record<string, unknown>)[f]);
      if (values.some((v) => v === null || v === undefined || typeof v === 'object')) continue;
      const where = and(...index.fields.map(([f], i) => eq(f, values[i] as Scalar)));
      const page = await target.find({ where, sort: [{ field: 'id', direction: 'asc' }], limit: 10 });
      for (const other of page.items) {
        if (other.id === doc.id) continue;
        const theirs = await primary.get({ id: other.id });
        if (sameState(theirs, other)) {
          throw new StorageError('DUPLICATE', `${collection}: ${doc.id} and ${other.id} share unique ${index.name ?? index.fields.map(([f]) => f).join(',')} on the mirror ${this.url} but not on the primary`);
        }
        await this.put(store, collection, other.id, theirs, depth + 1);
      }
    }
    return true;
  }

  /**
   * Copies every mirrored collection of the primary (see `isMirrored`), then sets the cursor
   * to the log's head at the start of the copy (minus a replay margin for write-ahead logs,
   * whose writes in flight may land after the copy read them).
   */
  private async snapshot(store: Store): Promise<void> {
    const head = await this.log.lastSeq();
    // Never below a pruned start: those seqs are gone (and were settled and read long before).
    const start = this.log.ordered ? head : Math.max(0, head - SNAPSHOT_REPLAY_MARGIN, (await this.log.firstSeq()) - 1);
    this.event(`mirror ${this.url}: copying the primary (first sync)`);
    let copied = 0;
    for (const name of await this.log.primary.listCollections()) {
      if (!isMirrored(name)) continue;
      const source = await this.log.primary.collection(this.log.specFor(name));
      await this.targetCollection(store, name);
      for await (const batch of source.scan({ batchSize: 500 })) {
        for (const doc of batch) await this.put(store, name, doc.id, doc, 0);
        copied += batch.length;
        await this.holdLease(true);
        if (this.stopped) throw new StorageError('UNAVAILABLE', 'stopped during the first copy');
      }
    }
    await flushTarget(store);
    await this.saveCursor({ seq: start, snapshot_done: true });
    this.event(`mirror ${this.url}: copied ${copied} document(s); following the change log from seq ${start}`);
  }

  private async targetCollection(store: Store, name: string): Promise<Collection<Doc>> {
    let collection = this.targetCollections.get(name);
    if (!collection) {
      collection = await store.collection(this.log.specFor(name));
      this.targetCollections.set(name, collection);
    }
    return collection;
  }

  private async openStore(): Promise<Store> {
    if (!this.store) {
      const store = await (this.options.open ?? openTarget)(this.target);
      if (this.stopped) {
        // stop() ran while this was connecting: do not leave it open.
        await store.close().catch(() => {});
        throw new StorageError('UNAVAILABLE', `mirror ${this.url} was stopped`);
      }
      this.store = store;
      this.targetCollections.clear();
    }
    return this.store;
  }

  private async closeTarget(): Promise<void> {
    const store = this.store;
    this.store = undefined;
    this.targetCollections.clear();
    await store?.close().catch(() => {});
  }

  // --- cursor and lease -------------------------------------------------------------------

  private async cursors(): Promise<Collection<MirrorCursor>> {
    return this.log.primary.collection<MirrorCursor>(MIRRORS_SPEC);
  }

  /** The cursor document, created (seq 0, no copy yet) when missing. */
  private async loadCursor(): Promise<MirrorCursor> {
    const cursors = await this.cursors();
    const found = await cursors.get({ id: this.id });
    if (found) return found;
    try {
      return await cursors.insert({
        doc: { id: this.id, url: this.url, seq: 0, snapshot_done: false, applied_at: null, last_error: null, last_error_at: null, lease_owner: null, lease_until: null },
      });
    } catch (error) {
      if (!isStorageError(error, 'DUPLICATE')) throw error;
      return (await cursors.get({ id: this.id }))!;
    }
  }

  /**
   * True when this process may feed the mirror now: it holds the lease (renewed when half
   * spent) or takes a free or expired one. `force` (foreground sync) waits for no one's lease
   * to expire but still refuses a live one held by another process.
   */
  private async holdLease(force: boolean): Promise<boolean> {
    const now = Date.now();
    const mine = this.active && this.cursorDoc?.lease_owner === this.owner && Date.parse(this.cursorDoc.lease_until ?? '') - now > this.options.leaseMs / 2;
    if (mine) return true;
    const cursor = await this.loadCursor();
    this.cursorDoc = cursor;
    const heldByOther = cursor.lease_owner !== null && cursor.lease_owner !== this.owner && Date.parse(cursor.lease_until ?? '') > now && !ownerIsGone(cursor.lease_owner);
    if (heldByOther) {
      this.active = false;
      if (force) throw new StorageError('CONFLICT', `mirror ${this.url} is being fed by ${cursor.lease_owner} (until ${cursor.lease_until})`);
      return false;
    }
    try {
      const cursors = await this.cursors();
      this.cursorDoc = await cursors.update({ id: this.id, patch: { lease_owner: this.owner, lease_until: new Date(now + this.options.leaseMs).toISOString() }, expectVersion: cursor.version });
      this.active = true;
      return true;
    } catch (error) {
      if (!isStorageError(error, 'CONFLICT')) throw error;
      this.active = false;
      return false;
    }
  }

  private async releaseLease(): Promise<void> {
    const cursor = this.cursorDoc;
    if (!cursor || cursor.lease_owner !== this.owner) return;
    const cursors = await this.cursors();
    await cursors.update({ id: this.id, patch: { lease_owner: null, lease_until: null }, expectVersion: cursor.version }).catch(() => {});
  }

  /** Moves the cursor (and renews the lease). A lost lease (CONFLICT) makes this process stand by. */
  private async saveCursor(fields: { seq: number; snapshot_done?: boolean }): Promise<void> {
    const cursor = this.cursorDoc!;
    const cursors = await this.cursors();
    try {
      this.cursorDoc = await cursors.update({
        id: this.id,
        patch: { ...fields, url: this.url, applied_at: new Date().toISOString(), last_error: null, lease_owner: this.owner, lease_until: new Date(Date.now() + this.options.leaseMs).toISOString() },
        expectVersion: cursor.version,
      });
    } catch (error) {
      if (isStorageError(error, 'CONFLICT')) this.active = false;
      throw error;
    }
  }

  private async recordError(error: unknown): Promise<void> {
    const message = describe(error);
    if (message !== this.lastError) this.event(`mirror ${this.url} is down: ${message}`);
    this.lastError = message;
    if (!this.active || !this.cursorDoc) return;
    try {
      const cursors = await this.cursors();
      this.cursorDoc = await cursors.update({ id: this.id, patch: { last_error: message, last_error_at: new Date().toISOString() }, expectVersion: this.cursorDoc.version });
    } catch {
      // The primary may be what is down; the error stays in this process's status.
    }
  }

  private recovered(): void {
    if (this.lastError === null) return;
    this.event(`mirror ${this.url} is back`);
    this.lastError = null;
  }

  private event(line: string): void {
    try {
      this.options.onEvent?.(line);
    } catch {
      // Reporting never breaks the loop.
    }
  }


  /** Where the mirror stands, from this process's loop when it feeds it, else from the cursor document. Throws StorageError when the primary fails. */
  async status(): Promise<MirrorStatus> {
    const head = await this.log.lastSeq();
    const cursor = this.active && this.cursorDoc ? this.cursorDoc : await (await this.cursors()).get({ id: this.id });
    const seq = cursor?.seq ?? 0;
    const lag = Math.max(0, head - seq);
    let secondsBehind = 0;
    if (lag > 0) {
      const at = Date.parse((await this.log.timeOf(seq + 1)) ?? '');
      if (Number.isFinite(at)) secondsBehind = Math.max(0, Math.round((Date.now() - at) / 100) / 10);
    }
    const recorded = cursor?.last_error && (cursor.last_error_at ?? '') > (cursor.applied_at ?? '') ? cursor.last_error : null;
    const error = this.active ? this.lastError : (this.lastError ?? recorded);
    const behind = !cursor?.snapshot_done || (lag > 0 && secondsBehind >= this.options.behindAfterS);
    const status: MirrorStatus['status'] = error ? 'down' : behind ? 'behind' : 'ok';
    return { url: this.url, seq, lag, seconds_behind: secondsBehind, status, ...(error ? { last_error: error } : {}), active: this.active };
  }
}

/** The mirrors of one primary. */
export class MirrorSet {
  readonly mirrors: Mirror[];

  constructor(urls: string[], log: ChangeLog, options: MirrorOptions = {}) {
    this.mirrors = urls.map((url) => new Mirror(url, log, options));
  }

  start(): void {
    for (const mirror of this.mirrors) mirror.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.mirrors.map((m) => m.stop()));
  }

  /** Every mirror's status; a mirror whose status cannot be read (primary down) is reported down. Never throws. */
  async status(): Promise<MirrorStatus[]> {
    return Promise.all(
      this.mirrors.map(async (m) => {
        try {
          return await m.status();
        } catch (error) {
          return { url: m.url, seq: 0, lag: 0, seconds_behind: 0, status: 'down' as const, last_error: `cannot read the cursor: ${describe(error)}`, active: false };
        }
      }),
    );
  }
}

/**
 * True when a lease owner (`host:pid:nonce`) is a process on this host that no longer runs
 * (e.g. an Otto killed with -9): its lease need not be waited out.
 */
function ownerIsGone(owner: string): boolean {
  const [host, pidText] = owner.split(':');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function sameState(a: Doc | null, b: Doc | null): boolean {
  if (a === null || b === null) return a === b;
  return a.version === b.version && a.updated_at === b.updated_at;
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!.slice(0, 500);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
