/**
 * Degraded mode: a Store wrapper that keeps Otto serving while its primary (MongoDB) is
 * unreachable, with the same contract, so services never know.
 *
 * - **Normal**: every call goes to the primary. A call failing with UNAVAILABLE switches to
 *   degraded mode and is served there instead.
 * - **Degraded, with a mirror**: reads come from the mirror (the first of OTTO_MIRRORS) with
 *   the spooled writes laid over it, so a process reads its own writes. Writes are checked
 *   against that view (ids, unique indexes, versions), appended to the spool and fsynced before
 *   they are acknowledged. A background probe notices the primary's return and replays the
 *   spool into it in order; writes keep going to the spool until it is empty, then everything
 *   goes to the primary again.
 * - **Degraded, without a mirror** (or without a usable spool): nothing is pretended. Reads and
 *   writes throw StorageError UNAVAILABLE (HTTP 503) until the probe finds the primary again.
 *
 * Replay is idempotent, so a crash in the middle only repeats work: an insert whose id is
 * already there is done; an update whose document is at the version the write produced, with
 * its fields, is done; deletes of absent documents are done. (An `increment` replayed twice
 * after a crash adds twice: counters may skip a number, never repeat one.)
 * A write whose document changed in the primary meanwhile (its version is not the one the write
 * was based on) is not applied: it is recorded in `_conflicts`. A message whose offset was taken
 * meanwhile is appended after the conversation's last message instead (offsets stay unique, the
 * spooled messages keep their order); such renumberings are counted in the status.
 */
import { aggregateDocuments, normalizeAggregate } from '../aggregate.ts';
import {
  StorageError,
  isStorageError,
  type AggregateOptions,
  type AggregateRow,
  type Capabilities,
  type Collection,
  type CollectionSpec,
  type Doc,
  type FindOptions,
  type NewDoc,
  type Page,
  type Scalar,
  type StoredMeta,
  type Store,
  type StoreHealth,
  type Where,
  type WriteHook,
} from '../contract.ts';
import { openStoreUrl, parseStoreUrl, describeStoreUrl } from '../store-url.ts';
import { applyPatch, assertFieldName, assertId, assertNumbered, assertSpec, assertStep, laterThan, patchFields, serializeDocument, stampNew } from '../validate.ts';
import { and, compareBySort, encodeCursor, eq, isAfterCursor, matches, normalizeFind } from '../where.ts';
import { CONFLICTS_SPEC, countOpenConflicts, type ConflictRecord } from './conflicts.ts';
import { Spool, type SpoolEntry, type SpoolResult, type SpooledWrite } from './spool.ts';

/** A numbered field that replay moves to the end of its scope when its value was taken meanwhile. */
export interface RenumberRule {
  collection: string;
  /** The numbered field, e.g. `offset`. */
  field: string;
  /** The field the numbers are unique within, e.g. `conversation_id`. */
  scope: string;
}

/** Settings of {@link createResilientStore}. */
export interface ResilientStoreOptions {
  /**
   * Connects to the primary (and migrates it, attaches its change log, …). Called at creation
   * and, while that fails, by every probe. Must throw StorageError UNAVAILABLE when the server
   * cannot be reached; any other error at creation is fatal.
   */
  connect: () => Promise<Store>;
  /** How the primary is shown before it has ever connected. */
  describe: { engine: string; location: string };
  /** Store URL reads are served from while degraded (`jsonl:<dir>`, `sqlite:<file>`, `mongodb://…/<db>`), or undefined for none. */
  mirror?: string;
  /** Folder relative mirror paths are taken from. */
  cwd?: string;
  /** The spool folder. */
  spoolDir: string;
  /** How often the primary is probed while degraded (ms). */
  retryMs: number;
  /** Numbered fields replay may renumber; default: message offsets within their conversation. */
  renumber?: RenumberRule[];
  /** One line per state change (degraded, back, conflicts). */
  onEvent?: (line: string) => void;
  /** Called after the primary has come back and the spool is replayed (e.g. to reload caches). Errors are reported, not thrown. */
  onRecovered?: () => Promise<void> | void;
}

/** What `/health` and `otto doctor` show about degraded mode. */
export interface DegradedStatus {
  /** True while the primary is not the one serving (unreachable, or its spool is being replayed). */
  active: boolean;
  /** When degraded mode began (ISO-8601), or null. */
  since: string | null;
  /** Why, in a few words, or null. */
  reason: string | null;
  /** The mirror reads come from while degraded (no credentials), or null when there is none. */
  reads_from: string | null;
  /** Where writes go now: `primary`, `spool`, or `refused` (503). */
  writes: 'primary' | 'spool' | 'refused';
  spool_dir: string;
  /** Acknowledged writes not yet in the primary. */
  spool_backlog: number;
  /** Open conflicts in `_conflicts` (as of the last replay or check). */
  conflicts: number;
  /** Spooled messages given a new offset on replay because theirs was taken meanwhile. */
  renumbered: number;
  /** The last probe or replay failure, when degraded. */
  last_error?: string;
}

/** A Store that survives its primary's outages; see the module comment. */
export interface ResilientStore extends Store {
  /** The current degraded-mode state. Never throws. */
  degradedStatus(): DegradedStatus;
  /** A short reason for the `Otto-Degraded` header while degraded, else null. */
  degradedReason(): string | null;
  /** True when requests can be served (the primary answers, or a mirror and the spool stand in). */
  serving(): boolean;
  /** True when `error` is the unavailability degraded mode already reports (so background work need not report it again). Never throws. */
  explains(error: unknown): boolean;
  /** Probes the primary now and replays the spool when it answers. Returns true when back to normal. Never throws. */
  probe(): Promise<boolean>;
  /** Counts the open conflicts in the primary again. Throws StorageError UNAVAILABLE while degraded. */
  refreshConflicts(): Promise<number>;
}

const DEFAULT_RENUMBER: RenumberRule[] = [{ collection: 'messages', field: 'offset', scope: 'conversation_id' }];
const OFFLINE_CAPABILITIES: Capabilities = { transactions: false, changeStreams: false, ttl: false, durable: true, multiProcess: false };
const META = new Set(['id', 'version', 'created_at', 'updated_at']);
const RENUMBER_ATTEMPTS = 50;
const MIRROR_SELECTION_TIMEOUT_MS = 2_000;
const MIRROR_CLOSE_DELAY_MS = 5_000;

/**
 * Creates the wrapper and tries the primary once. Returns it serving from the primary, or
 * degraded (when the primary is UNAVAILABLE). A spool holding writes from an earlier run is
 * replayed before this returns when the primary answers. Throws StorageError for anything but
 * an unreachable primary (bad configuration, failed migration, corrupt spool).
 */
export async function createResilientStore(options: ResilientStoreOptions): Promise<ResilientStore> {
  const store = new ResilientStoreImpl(options);
  await store.start();
  return store;
}

/** A promise-chain mutex: one holder at a time, in arrival order. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<R>(fn: () => Promise<R> | R): Promise<R> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => mine);
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 300);
}

class ResilientStoreImpl implements ResilientStore {
  private readonly options: ResilientStoreOptions;
  private readonly renumberRules: RenumberRule[];
  private primary: Store | null = null;
  private readonly primaryCollections = new Map<string, Collection<Doc>>();
  private spool: Spool | null = null;
  private spoolError: string | null = null;
  private mirrorReader: Store | null = null;
  private mirrorOpening: Promise<Store> | null = null;
  private readonly mirrorCollections = new Map<string, Collection<Doc>>();
  private readonly mirrorDisplay: string | null;
  /** Documents as the spooled writes left them, by collection and id (null: deleted). */
  readonly overlay = new Map<string, Map<string, Doc | null>>();
  private readonly wrappers = new Map<string, ResilientCollection<Doc>>();
  private readonly hooks: Array<{ hook: WriteHook; detach: (() => void) | null }> = [];
  private readonly writeLock = new Mutex();
  private degraded: { since: string; reason: string } | null = null;
  private lastError: string | null = null;
  private conflicts = 0;
  private renumbered = 0;
  private timer: NodeJS.Timeout | null = null;
  private probing: Promise<boolean> | null = null;
  private closed = false;

  constructor(options: ResilientStoreOptions) {
    this.options = options;
    this.renumberRules = options.renumber ?? DEFAULT_RENUMBER;
    this.mirrorDisplay = options.mirror === undefined ? null : describeStoreUrl(parseStoreUrl(options.mirror), options.cwd);
  }

  async start(): Promise<void> {
    try {
      this.spool = Spool.open({ dir: this.options.spoolDir, primary: this.options.describe.location });
      for (const entry of this.spool.pending()) this.applyResults(entry.results);
    } catch (error) {
      if (!isStorageError(error, 'UNAVAILABLE')) throw error;
      this.spoolError = errorText(error);
      this.event(`degraded mode: no spool (${this.spoolError}); writes are refused while the primary is down`);
    }
    try {
      this.attachPrimary(await this.options.connect());
    } catch (error) {
      if (!isStorageError(error, 'UNAVAILABLE')) {
        this.spool?.close();
        throw error;
      }
      this.enterDegraded(error);
    }
    if (this.primary && (this.spool?.backlog ?? 0) > 0) {
      this.degraded = { since: new Date().toISOString(), reason: 'replaying spooled writes' };
      await this.probe();
    } else if (this.primary) {
      await this.refreshConflicts().catch(() => {});
    }
    this.timer = setInterval(() => void this.probe(), this.options.retryMs);
    this.timer.unref();
  }

  get engine(): string {
    return this.primary?.engine ?? this.options.describe.engine;
  }
  get location(): string {
    return this.primary?.location ?? this.options.describe.location;
  }
  get capabilities(): Capabilities {
    return this.primary?.capabilities ?? OFFLINE_CAPABILITIES;
  }

  // ---- state -------------------------------------------------------------------------

  private event(line: string): void {
    this.options.onEvent?.(line);
  }

  private attachPrimary(primary: Store): void {
    this.primary = primary;
    this.primaryCollections.clear();
    for (const entry of this.hooks) entry.detach = primary.onWrite(entry.hook);
  }

  /** Switches to degraded mode (idempotent) because of `error`. */
  enterDegraded(error: unknown): void {
    this.lastError = errorText(error);
    if (this.degraded) return;
    this.degraded = { since: new Date().toISOString(), reason: 'primary unreachable' };
    const mode = this.canRead() ? (this.canWrite() ? `reads from ${this.mirrorDisplay}, writes spooled in ${this.options.spoolDir}` : `reads from ${this.mirrorDisplay}, writes refused (${this.spoolError ?? 'no spool'})`) : 'no mirror configured: reads and writes answer 503';
    this.event(`degraded mode: the primary is unreachable (${this.lastError}); ${mode}; retrying every ${this.options.retryMs} ms`);
  }

  isDegraded(): boolean {
    return this.degraded !== null;
  }

  isClosed(): boolean {
    return this.closed;
  }

  /**
   * Whether a primary call's error means the primary is gone: UNAVAILABLE, or an unexpected
   * (INTERNAL) error while the primary no longer answers a health probe.
   */
  async lostPrimary(error: unknown): Promise<boolean> {
    if (this.closed || !this.primary) return false;
    if (isStorageError(error, 'UNAVAILABLE')) return true;
    if (error instanceof StorageError && error.code !== 'INTERNAL') return false;
    return !(await this.primary.health().catch(() => ({ ok: false }))).ok;
  }

  canRead(): boolean {
    return this.options.mirror !== undefined;
  }

  canWrite(): boolean {
    return this.canRead() && this.spool !== null;
  }

  degradedStatus(): DegradedStatus {
    const d = this.degraded;
    return {
      active: d !== null,
      since: d?.since ?? null,
      reason: d?.reason ?? null,
      reads_from: this.mirrorDisplay,
      writes: d === null ? 'primary' : this.canWrite() ? 'spool' : 'refused',
      spool_dir: this.options.spoolDir,
      spool_backlog: this.spool?.backlog ?? 0,
      conflicts: this.conflicts,
      renumbered: this.renumbered,
      ...(d !== null && this.lastError ? { last_error: this.lastError } : {}),
    };
  }

  degradedReason(): string | null {
    if (!this.degraded) return null;
    if (!this.canRead()) return `${this.degraded.reason}; no mirror, writes refused`;
    return `${this.degraded.reason}; reads from mirror, ${this.canWrite() ? 'writes spooled' : 'writes refused'}`;
  }

  serving(): boolean {
    return this.degraded === null || this.canRead();
  }

  explains(error: unknown): boolean {
    return this.degraded !== null && isStorageError(error, 'UNAVAILABLE');
  }

  async refreshConflicts(): Promise<number> {
    const primary = this.requirePrimary();
    const conflicts = await primary.collection<ConflictRecord>(CONFLICTS_SPEC);
    this.conflicts = await countOpenConflicts({ conflicts });
    return this.conflicts;
  }

  requirePrimary(): Store {
    if (!this.primary || this.degraded) throw this.unavailable();
    return this.primary;
  }

  unavailable(): StorageError {
    return new StorageError('UNAVAILABLE', 'the primary store is unreachable' + (this.canRead() ? '' : ' and no mirror is configured to read from'));
  }

  async primaryCollection(spec: CollectionSpec): Promise<Collection<Doc>> {
    const primary = this.primary;
    if (!primary) throw this.unavailable();
    let collection = this.primaryCollections.get(spec.name);
    if (!collection || collection.spec !== spec) {
      collection = await primary.collection<Doc>(spec);
      if (this.primary === primary) this.primaryCollections.set(spec.name, collection);
    }
    return collection;
  }

  /** The mirror's collection, opening the mirror when needed; null when the mirror lacks it. Throws UNAVAILABLE without a mirror. */
  async mirrorCollection(spec: CollectionSpec): Promise<Collection<Doc> | null> {
    if (this.options.mirror === undefined) throw this.unavailable();
    const cached = this.mirrorCollections.get(spec.name);
    if (cached && this.mirrorReader) return cached;
    if (!this.mirrorReader) {
      this.mirrorOpening ??= this.openMirror().finally(() => (this.mirrorOpening = null));
      this.mirrorReader = await this.mirrorOpening;
      this.mirrorCollections.clear();
    }
    try {
      const collection = await this.mirrorReader.collection<Doc>(spec);
      this.mirrorCollections.set(spec.name, collection);
      return collection;
    } catch (error) {
      if (isStorageError(error, 'UNAVAILABLE')) throw error;
      return null;
    }
  }

  private async openMirror(): Promise<Store> {
    let url = this.options.mirror!;
    const kind = parseStoreUrl(url).kind;
    if (kind === 'mongodb' && !/[?&]serverselectiontimeoutms=/i.test(url)) url = `${url}${url.includes('?') ? '&' : '?'}serverSelectionTimeoutMS=${MIRROR_SELECTION_TIMEOUT_MS}`;
    try {
      return await openStoreUrl(url, { cwd: this.options.cwd, source: kind !== 'mongodb' });
    } catch (error) {
      throw new StorageError('UNAVAILABLE', `the primary is unreachable and the mirror ${this.mirrorDisplay} cannot be read: ${errorText(error)}`, { cause: error });
    }
  }

  /** Forgets the mirror reader (a JSONL mirror is read when opened, so the next outage opens it afresh). */
  private dropMirror(): void {
    const reader = this.mirrorReader;
    this.mirrorReader = null;
    this.mirrorCollections.clear();
    if (reader) setTimeout(() => void reader.close().catch(() => {}), MIRROR_CLOSE_DELAY_MS).unref();
  }

  overlayOf(collection: string): Map<string, Doc | null> {
    let map = this.overlay.get(collection);
    if (!map) {
      map = new Map();
      this.overlay.set(collection, map);
    }
    return map;
  }

  private applyResults(results: SpoolResult[]): void {
    for (const r of results) this.overlayOf(r.collection).set(r.id, r.doc);
  }

  /**
   * Runs a write while degraded: under the write lock, `compute` checks it against the
   * degraded view and says what to spool; the entry is fsynced, then laid over the view.
   * When the primary came back while this waited for the lock, `primaryOp` runs instead.
   * Throws UNAVAILABLE when writes cannot be spooled.
   */
  async spoolWrite<R>(primaryOp: () => Promise<R>, compute: () => Promise<{ write: SpooledWrite; results: SpoolResult[]; value: R } | { value: R; write?: undefined }>): Promise<R> {
    return this.writeLock.run(async () => {
      if (!this.degraded) {
        try {
          return await primaryOp();
        } catch (error) {
          if (!(await this.lostPrimary(error))) throw error;
          this.enterDegraded(error);
        }
      }
      if (!this.canWrite()) throw this.unavailable();
      const outcome = await compute();
      if (outcome.write === undefined) return outcome.value;
      const entry = this.spool!.append({ write: outcome.write, results: outcome.results });
      this.applyResults(entry.results);
      return outcome.value;
    });
  }

  // ---- probe and replay ----------------------------------------------------------------

  probe(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (!this.degraded) return Promise.resolve(true);
    this.probing ??= this.probeOnce().finally(() => (this.probing = null));
    return this.probing;
  }

  private async probeOnce(): Promise<boolean> {
    try {
      if (!this.primary) {
        this.attachPrimary(await this.options.connect());
        this.event('degraded mode: connected to the primary');
      } else {
        const health = await this.primary.health();
        if (!health.ok) {
          this.lastError = health.error ?? 'the primary does not answer';
          return false;
        }
      }
      const replayed = await this.replay();
      if (this.degraded) return false;
      await this.refreshConflicts().catch(() => {});
      this.dropMirror();
      this.event(`degraded mode over: the primary is back${replayed ? `; ${replayed} spooled write(s) replayed` : ''}${this.conflicts ? `; ${this.conflicts} open conflict(s) in _conflicts (see \`otto doctor\`)` : ''}`);
      try {
        await this.options.onRecovered?.();
      } catch (error) {
        this.event(`after the primary came back: ${errorText(error)}`);
      }
      return true;
    } catch (error) {
      this.lastError = errorText(error);
      return false;
    }
  }

  /**
   * Replays the spool into the primary, oldest first, recording progress after each entry.
   * Leaves degraded mode (under the write lock) once the spool is empty. Returns how many
   * entries it replayed. Throws StorageError UNAVAILABLE when the primary goes away again.
   */
  private async replay(): Promise<number> {
    let count = 0;
    for (;;) {
      const next = await this.writeLock.run(() => {
        const entry = this.spool?.pending()[0];
        if (entry === undefined && !this.closed) {
          this.degraded = null;
          this.lastError = null;
          this.overlay.clear();
        }
        return entry;
      });
      if (next === undefined) return count;
      if (this.closed) throw new StorageError('UNAVAILABLE', 'the store is closed');
      await this.applyEntry(next);
      this.spool!.markReplayed({ seq: next.seq });
      count++;
    }
  }

  private async applyEntry(entry: SpoolEntry): Promise<void> {
    const write = entry.write;
    const c = await this.primaryCollection(write.spec);
    try {
      switch (write.op) {
        case 'insert':
          for (const doc of write.docs) await this.replayInsert(c, entry, doc, write.verbatim === true);
          return;
        case 'insert_numbered': {
          const present = await Promise.all(write.docs.map((d) => c.get({ id: d.id })));
          const missing = write.docs.filter((_, i) => present[i] === null);
          if (missing.length === 0) return;
          const counterSpec = this.wrappers.get(write.counter.collection)?.spec;
          if (counterSpec) await this.primaryCollection(counterSpec);
          const stored = await c.insertNumbered({ docs: missing, field: write.field, counter: write.counter });
          this.renumbered += stored.filter((d, i) => d[write.field] !== missing[i]![write.field]).length;
          return;
        }
        case 'update': {
          try {
            await c.update({ id: write.id, patch: write.patch, expectVersion: write.base_version });
          } catch (error) {
            if (isStorageError(error, 'NOT_FOUND')) return this.recordConflict(entry, write.id, 'the document was deleted in the primary meanwhile', write.base_version, null);
            if (!isStorageError(error, 'CONFLICT')) throw error;
            const current = await c.get({ id: write.id });
            if (current && current.version === write.base_version + 1 && sameFields(current, write.patch)) return; // applied before a crash
            return this.recordConflict(entry, write.id, `the document changed in the primary meanwhile (version ${current?.version ?? 'gone'}, the write was based on ${write.base_version})`, write.base_version, current?.version ?? null);
          }
          return;
        }
        case 'upsert': {
          const current = await c.get({ id: write.doc.id });
          const version = current?.version ?? null;
          if (version !== write.base_version) {
            if (current && sameFields(current, contentOf(write.doc)) && version === (write.base_version ?? 0) + 1) return; // applied before a crash
            return this.recordConflict(entry, write.doc.id, `the document changed in the primary meanwhile (version ${version ?? 'absent'}, the write was based on ${write.base_version ?? 'absent'})`, write.base_version, version);
          }
          await c.upsert({ doc: write.doc, verbatim: write.verbatim });
          return;
        }
        case 'delete':
          for (const target of write.targets) {
            try {
              await c.delete({ id: target.id, expectVersion: target.base_version });
            } catch (error) {
              if (!isStorageError(error, 'CONFLICT')) throw error;
              const current = await c.get({ id: target.id });
              await this.recordConflict(entry, target.id, `the document changed in the primary meanwhile (version ${current?.version ?? 'gone'}, the delete was based on ${target.base_version})`, target.base_version, current?.version ?? null);
            }
          }
          return;
        case 'increment':
          await c.increment({ id: write.id, field: write.field, by: write.by });
          return;
      }
    } catch (error) {
      if (isStorageError(error, 'UNAVAILABLE')) throw error;
      const id = 'id' in write ? write.id : 'doc' in write ? write.doc.id : (('docs' in write ? write.docs[0]?.id : write.targets[0]?.id) ?? '?');
      await this.recordConflict(entry, id, `replay failed: ${errorText(error)}`, null, null);
    }
  }

  private async replayInsert(c: Collection<Doc>, entry: SpoolEntry, doc: Doc, verbatim: boolean): Promise<void> {
    const rule = this.renumberRules.find((r) => r.collection === c.spec.name && typeof doc[r.field] === 'number' && typeof doc[r.scope] === 'string');
    let candidate = doc;
    for (let attempt = 0; attempt < RENUMBER_ATTEMPTS; attempt++) {
      try {
        if (verbatim) await c.insertMany({ docs: [candidate], verbatim: true });
        else await c.insert({ doc: candidate });
        if (candidate !== doc) this.renumbered++;
        return;
      } catch (error) {
        if (!isStorageError(error, 'DUPLICATE')) throw error;
      }
      const existing = await c.get({ id: doc.id });
      if (existing) {
        // Applied already: before a crash, or by the primary call that failed over (its reply was lost).
        if (existing.created_at === doc.created_at || sameFields(existing, contentOf(doc, rule?.field))) return;
        return this.recordConflict(entry, doc.id, 'another document with this id was written in the primary meanwhile', null, existing.version);
      }
      if (!rule) return this.recordConflict(entry, doc.id, 'a unique value of this document was taken in the primary meanwhile', null, null);
      const last = await c.find({ where: eq(rule.scope, doc[rule.scope] as string), sort: [{ field: rule.field, direction: 'desc' }], limit: 1 });
      const top = (last.items[0]?.[rule.field] as number | undefined) ?? 0;
      candidate = { ...doc, [rule.field]: top + 1 };
    }
    throw new StorageError('UNAVAILABLE', `could not find a free ${rule?.field ?? 'value'} for ${doc.id}; will retry`);
  }

  private async recordConflict(entry: SpoolEntry, docId: string, reason: string, base: number | null, current: number | null): Promise<void> {
    const primary = this.primary!;
    const conflicts = await primary.collection<ConflictRecord>(CONFLICTS_SPEC);
    const id = `conflict_${this.spool!.id}_${entry.seq}_${docId}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 200);
    const { spec, ...write } = entry.write;
    const doc = {
      id,
      status: 'open' as const,
      collection: spec.name,
      doc_id: docId,
      op: write.op,
      reason,
      base_version: base,
      primary_version: current,
      // As JSON text: the write may hold shapes (nested arrays) a MongoDB-compatible server refuses.
      spooled: JSON.stringify(write),
      spooled_at: entry.at,
      spool_entry: `${this.spool!.id}:${entry.seq}`,
    };
    try {
      await conflicts.insert({ doc });
    } catch (error) {
      if (isStorageError(error, 'DUPLICATE')) return; // recorded before a crash
      if (isStorageError(error, 'UNAVAILABLE')) throw error;
      // Never let one entry block the spool: keep what can be kept, and say so.
      this.event(`degraded mode: cannot record the conflict on ${spec.name} ${docId} in full (${errorText(error)}); recording it without the write`);
      try {
        await conflicts.insert({ doc: { ...doc, spooled: '(not storable)' } });
      } catch (again) {
        if (isStorageError(again, 'UNAVAILABLE')) throw again;
        if (!isStorageError(again, 'DUPLICATE')) this.event(`degraded mode: conflict on ${spec.name} ${docId} not recorded: ${errorText(again)}`);
      }
    }
    this.conflicts++;
    this.event(`degraded mode: conflict on ${spec.name} ${docId}: ${reason}; kept in _conflicts, not applied`);
  }

  // ---- Store ---------------------------------------------------------------------------

  async collection<T extends StoredMeta = Doc>(spec: CollectionSpec): Promise<Collection<T>> {
    if (this.closed) throw new StorageError('UNAVAILABLE', 'the store is closed');
    assertSpec(spec);
    if (this.primary && !this.degraded) {
      try {
        await this.primaryCollection(spec);
      } catch (error) {
        if (!isStorageError(error, 'UNAVAILABLE')) throw error;
        this.enterDegraded(error);
      }
    }
    let wrapper = this.wrappers.get(spec.name);
    if (!wrapper) {
      wrapper = new ResilientCollection<Doc>(spec, this);
      this.wrappers.set(spec.name, wrapper);
    } else {
      wrapper.spec = spec;
    }
    return wrapper as unknown as Collection<T>;
  }

  /** The wrapper of an opened collection (for insertNumbered's counter). */
  opened(name: string): ResilientCollection<Doc> | undefined {
    return this.wrappers.get(name);
  }

  async listCollections(): Promise<string[]> {
    return this.requirePrimary().listCollections();
  }

  async listIndexes(args: { collection: string }): Promise<string[]> {
    return this.requirePrimary().listIndexes(args);
  }

  onWrite(hook: WriteHook): () => void {
    const entry = { hook, detach: this.primary ? this.primary.onWrite(hook) : null };
    this.hooks.push(entry);
    return () => {
      entry.detach?.();
      const i = this.hooks.indexOf(entry);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  async health(): Promise<StoreHealth> {
    if (!this.primary) return { ok: false, engine: this.engine, location: this.location, latency_ms: 0, error: `not connected${this.lastError ? ` (${this.lastError})` : ''}` };
    return this.primary.health();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.probing?.catch(() => {});
    await this.writeLock.run(() => {});
    this.spool?.close();
    await this.mirrorReader?.close().catch(() => {});
    this.mirrorReader = null;
    await this.primary?.close();
  }
}

/** True when every field of `fields` (top level) holds the same JSON in `doc`. */
function sameFields(doc: Doc, fields: Record<string, unknown>): boolean {
  return Object.entries(fields).every(([key, value]) => JSON.stringify(doc[key]) === JSON.stringify(value));
}

/** The document's own fields (no metadata, nor `ignore`). */
function contentOf(doc: Doc, ignore?: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(doc).filter(([key]) => !META.has(key) && key !== ignore));
}

/** A collection of a {@link ResilientStore}. */
class ResilientCollection<T extends StoredMeta> implements Collection<T> {
  spec: CollectionSpec;
  private readonly store: ResilientStoreImpl;

  constructor(spec: CollectionSpec, store: ResilientStoreImpl) {
    this.spec = spec;
    this.store = store;
  }

  /** Runs `op` on the primary, or `fallback` when degraded (switching to degraded on UNAVAILABLE). */
  private async route<R>(op: (c: Collection<T>) => Promise<R>, fallback: () => Promise<R>): Promise<R> {
    if (!this.store.isDegraded()) {
      try {
        return await op((await this.store.primaryCollection(this.spec)) as unknown as Collection<T>);
      } catch (error) {
        if (!(await this.store.lostPrimary(error))) throw error;
        this.store.enterDegraded(error);
      }
    }
    return fallback();
  }

  /** A read while degraded: from the mirror and the spool's overlay. */
  private view<R>(read: () => Promise<R>): Promise<R> {
    if (!this.store.canRead()) throw this.store.unavailable();
    return read();
  }

  /** A write while degraded: checked against the view, spooled, laid over it. */
  private write<R>(op: (c: Collection<T>) => Promise<R>, compute: () => Promise<{ write: SpooledWrite; results: SpoolResult[]; value: R } | { value: R; write?: undefined }>): Promise<R> {
    return this.route(op, () => this.store.spoolWrite(async () => op((await this.store.primaryCollection(this.spec)) as unknown as Collection<T>), compute));
  }

  private get overlay(): Map<string, Doc | null> {
    return this.store.overlayOf(this.spec.name);
  }

  // ---- degraded view -------------------------------------------------------------------

  async viewGet(id: string): Promise<Doc | null> {
    const overlay = this.overlay;
    if (overlay.has(id)) return overlay.get(id) ?? null;
    const mirror = await this.store.mirrorCollection(this.spec);
    return mirror ? mirror.get({ id }) : null;
  }

  async viewFind(args: FindOptions = {}): Promise<Page<Doc>> {
    const query = normalizeFind(args);
    const overlay = this.overlay;
    const own = [...overlay.values()]
      .filter((d): d is Doc => d !== null && matches(d, query.where) && (query.after === null || isAfterCursor(d, query.sort, query.after)))
      .sort((a, b) => compareBySort(a, b, query.sort));
    const fromMirror: Doc[] = [];
    const mirror = await this.store.mirrorCollection(this.spec);
    if (mirror) {
      let after = args.after ?? null;
      while (fromMirror.length <= query.limit) {
        const page = await mirror.find({ where: args.where, sort: args.sort, limit: Math.min(1000, query.limit + 1 + overlay.size), after });
        for (const d of page.items) if (!overlay.has(d.id)) fromMirror.push(d);
        if (!page.next) break;
        after = page.next;
      }
    }
    const merged = [...own, ...fromMirror].sort((a, b) => compareBySort(a, b, query.sort)).slice(0, query.limit + 1);
    const items = merged.slice(0, query.limit);
    return { items, next: merged.length > query.limit ? encodeCursor(items.at(-1)!, query.sort) : null };
  }

  async viewCount(where: Where | undefined): Promise<number> {
    const mirror = await this.store.mirrorCollection(this.spec);
    let count = mirror ? await mirror.count(where === undefined ? {} : { where }) : 0;
    for (const [id, doc] of this.overlay) {
      const before = mirror ? await mirror.get({ id }) : null;
      if (before && matches(before, where)) count--;
      if (doc && matches(doc, where)) count++;
    }
    return count;
  }

  /** Every document matching `where` in the degraded view. */
  private async viewAll(where: Where | undefined): Promise<Doc[]> {
    const out: Doc[] = [];
    let after: string | null = null;
    do {
      const page: Page<Doc> = await this.viewFind({ where, sort: [{ field: 'id', direction: 'asc' }], limit: 1000, after });
      out.push(...page.items);
      after = page.next;
    } while (after);
    return out;
  }

  /** Throws DUPLICATE when a document would collide on its id (new documents) or a unique index in the degraded view. */
  private async assertUnique(docs: Doc[], isNew: boolean): Promise<void> {
    const seen = new Set<string>();
    for (const doc of docs) {
      if (isNew && (seen.has(doc.id) || (await this.viewGet(doc.id)) !== null)) {
        throw new StorageError('DUPLICATE', `${this.spec.name}: ${doc.id} already exists`, { field: 'id' });
      }
      seen.add(doc.id);
      for (const index of this.spec.indexes) {
        if (!index.unique) continue;
        const values = index.fields.map(([f]) => doc[f]);
        if (values.some((v) => v === undefined || v === null || typeof v === 'object')) continue;
        const where = and(...index.fields.map(([f], i) => eq(f, values[i] as Scalar)));
        const others = (await this.viewFind({ where, limit: 2 })).items.filter((d) => d.id !== doc.id);
        const batch = docs.some((d) => d !== doc && d.id !== doc.id && index.fields.every(([f]) => d[f] === doc[f]));
        if (others.length > 0 || batch) {
          throw new StorageError('DUPLICATE', `${this.spec.name}: a document with the same ${index.fields.map(([f]) => f).join(',')} already exists`, { field: index.fields.map(([f]) => f).join(',') });
        }
      }
    }
  }

  // ---- the contract --------------------------------------------------------------------

  async get(args: { id: string }): Promise<T | null> {
    const id = assertId(args?.id);
    return this.route((c) => c.get({ id }), () => this.view(async () => (await this.viewGet(id)) as T | null));
  }

  async find(args: FindOptions = {}): Promise<Page<T>> {
    return this.route((c) => c.find(args), () => this.view(async () => (await this.viewFind(args)) as unknown as Page<T>));
  }

  async count(args: { where?: Where } = {}): Promise<number> {
    return this.route((c) => c.count(args), () => this.view(() => this.viewCount(args?.where)));
  }

  async aggregate(args: AggregateOptions): Promise<AggregateRow[]> {
    return this.route(
      (c) => c.aggregate(args),
      () =>
        this.view(async () => {
          const query = normalizeAggregate(args);
          if (this.overlay.size === 0) {
            const mirror = await this.store.mirrorCollection(this.spec);
            return mirror ? mirror.aggregate(args) : [];
          }
          return aggregateDocuments((await this.viewAll(query.where)) as Array<Record<string, unknown>>, query);
        }),
    );
  }

  async *scan(args: { after?: string; batchSize?: number } = {}): AsyncIterable<T[]> {
    if (!this.store.isDegraded()) {
      let after = args.after;
      try {
        const c = (await this.store.primaryCollection(this.spec)) as unknown as Collection<T>;
        for await (const batch of c.scan({ ...args, after })) {
          yield batch;
          after = batch.at(-1)?.id ?? after;
        }
        return;
      } catch (error) {
        if (!(await this.store.lostPrimary(error))) throw error;
        this.store.enterDegraded(error);
        args = { ...args, ...(after === undefined ? {} : { after }) };
      }
    }
    if (!this.store.canRead()) throw this.store.unavailable();
    const size = args.batchSize ?? 500;
    let after = args.after ?? null;
    for (;;) {
      const page = await this.viewFind({ where: after === null ? undefined : { op: 'gt', field: 'id', value: after }, sort: [{ field: 'id', direction: 'asc' }], limit: Math.min(1000, Math.max(1, size)) });
      if (page.items.length === 0) return;
      yield page.items as unknown as T[];
      after = page.items.at(-1)!.id;
      if (!page.next) return;
    }
  }

  async insert(args: { doc: NewDoc<T> }): Promise<T> {
    return this.write(
      (c) => c.insert(args),
      async () => {
        const doc = stampNew<Doc>(args?.doc as unknown as NewDoc<Doc>);
        serializeDocument(doc);
        await this.assertUnique([doc], true);
        return { write: { op: 'insert', spec: this.spec, docs: [doc] }, results: [{ collection: this.spec.name, id: doc.id, doc }], value: doc as unknown as T };
      },
    );
  }

  async insertMany(args: { docs: NewDoc<T>[]; verbatim?: boolean }): Promise<T[]> {
    return this.write(
      (c) => c.insertMany(args),
      async () => {
        if (!Array.isArray(args?.docs)) throw new StorageError('INVALID', 'docs must be a list', { field: 'docs' });
        const docs = args.docs.map((d) => stampNew<Doc>(d as unknown as NewDoc<Doc>, { verbatim: args.verbatim }));
        for (const doc of docs) serializeDocument(doc);
        if (docs.length === 0) return { value: [] as T[] };
        await this.assertUnique(docs, true);
        return { write: { op: 'insert', spec: this.spec, docs, verbatim: args.verbatim === true }, results: docs.map((doc) => ({ collection: this.spec.name, id: doc.id, doc })), value: docs as unknown as T[] };
      },
    );
  }

  async insertNumbered(args: { docs: NewDoc<T>[]; field: string; counter: { collection: string; id: string; field: string } }): Promise<T[]> {
    return this.write(
      (c) => c.insertNumbered(args),
      async () => {
        const { field, counter } = assertNumbered(args);
        const counters = this.store.opened(counter.collection);
        if (!counters) throw new StorageError('INVALID', `collection ${JSON.stringify(counter.collection)} is not open on this store`, { field: 'counter' });
        const n = args.docs.length;
        if (n === 0) return { value: [] as T[] };
        const current = await counters.viewGet(counter.id);
        const previous = current?.[counter.field] ?? 0;
        if (typeof previous !== 'number') throw new StorageError('INVALID', `${counter.collection}: ${counter.field} of ${counter.id} is not a number`, { field: counter.field });
        const last = previous + n;
        const counterDoc = bumped(current, counter.id, counter.field, last);
        const docs = args.docs.map((d, i) => stampNew<Doc>({ ...(d as unknown as NewDoc<Doc>), [field]: last - n + 1 + i }));
        for (const doc of docs) serializeDocument(doc);
        await this.assertUnique(docs, true);
        return {
          write: { op: 'insert_numbered', spec: this.spec, docs, field, counter },
          results: [{ collection: counter.collection, id: counter.id, doc: counterDoc }, ...docs.map((doc) => ({ collection: this.spec.name, id: doc.id, doc }))],
          value: docs as unknown as T[],
        };
      },
    );
  }

  async upsert(args: { doc: NewDoc<T>; verbatim?: boolean }): Promise<T> {
    return this.write(
      (c) => c.upsert(args),
      async () => {
        const input = args?.doc as unknown as NewDoc<Doc>;
        const id = assertId((input as { id?: unknown } | undefined)?.id);
        const current = await this.viewGet(id);
        const doc = stampNew<Doc>(input, { verbatim: args.verbatim, version: current ? current.version + 1 : 1 });
        if (current && !args.verbatim) {
          doc.created_at = current.created_at;
          doc.updated_at = laterThan(current.updated_at);
        }
        serializeDocument(doc);
        await this.assertUnique([doc], false);
        return { write: { op: 'upsert', spec: this.spec, doc, verbatim: args.verbatim === true, base_version: current?.version ?? null }, results: [{ collection: this.spec.name, id, doc }], value: doc as unknown as T };
      },
    );
  }

  async update(args: { id: string; patch: Partial<Omit<T, 'id' | 'version' | 'created_at'>>; expectVersion?: number }): Promise<T> {
    return this.write(
      (c) => c.update(args),
      async () => {
        const id = assertId(args?.id);
        const fields = patchFields(args.patch as Record<string, unknown>);
        const current = await this.viewGet(id);
        if (!current) throw new StorageError('NOT_FOUND', `${this.spec.name}: ${id} not found`, { field: 'id' });
        if (args.expectVersion !== undefined && current.version !== args.expectVersion) {
          throw new StorageError('CONFLICT', `${this.spec.name}: ${id} is at version ${current.version}, not ${args.expectVersion}`, { field: 'version' });
        }
        const doc = applyPatch(current, fields);
        serializeDocument(doc);
        await this.assertUnique([doc], false);
        return { write: { op: 'update', spec: this.spec, id, patch: fields, base_version: current.version }, results: [{ collection: this.spec.name, id, doc }], value: doc as unknown as T };
      },
    );
  }

  async delete(args: { id: string; expectVersion?: number }): Promise<boolean> {
    return this.write(
      (c) => c.delete(args),
      async () => {
        const id = assertId(args?.id);
        const current = await this.viewGet(id);
        if (!current) return { value: false };
        if (args.expectVersion !== undefined && current.version !== args.expectVersion) {
          throw new StorageError('CONFLICT', `${this.spec.name}: ${id} is at version ${current.version}, not ${args.expectVersion}`, { field: 'version' });
        }
        return { write: { op: 'delete', spec: this.spec, targets: [{ id, base_version: current.version }] }, results: [{ collection: this.spec.name, id, doc: null }], value: true };
      },
    );
  }

  async deleteMany(args: { where: Where }): Promise<number> {
    return this.write(
      (c) => c.deleteMany(args),
      async () => {
        if (!args?.where) throw new StorageError('INVALID', 'deleteMany needs a where', { field: 'where' });
        const docs = await this.viewAll(args.where);
        if (docs.length === 0) return { value: 0 };
        return {
          write: { op: 'delete', spec: this.spec, targets: docs.map((d) => ({ id: d.id, base_version: d.version })) },
          results: docs.map((d) => ({ collection: this.spec.name, id: d.id, doc: null })),
          value: docs.length,
        };
      },
    );
  }

  async increment(args: { id: string; field: string; by?: number }): Promise<number> {
    return this.write(
      (c) => c.increment(args),
      async () => {
        const id = assertId(args?.id);
        const field = assertFieldName(args.field);
        if (META.has(field)) throw new StorageError('INVALID', `${field} cannot be incremented`, { field });
        const by = assertStep(args.by);
        const current = await this.viewGet(id);
        const previous = current?.[field] ?? 0;
        if (typeof previous !== 'number') throw new StorageError('INVALID', `${this.spec.name}: ${field} of ${id} is not a number`, { field });
        const value = previous + by;
        const doc = bumped(current, id, field, value);
        return { write: { op: 'increment', spec: this.spec, id, field, by }, results: [{ collection: this.spec.name, id, doc }], value };
      },
    );
  }
}

/** A counter document after an increment to `value` (created when missing). */
function bumped(current: Doc | null, id: string, field: string, value: number): Doc {
  if (!current) {
    const at = new Date().toISOString();
    return { id, [field]: value, version: 1, created_at: at, updated_at: at };
  }
  return { ...current, [field]: value, version: current.version + 1, updated_at: laterThan(current.updated_at) };
}
