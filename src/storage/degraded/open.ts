/**
 * Opening the primary the way `otto serve` runs it: migrated, with its change log attached and
 * its mirrors following the log, and, for a MongoDB primary, inside a {@link ResilientStore} so
 * Otto keeps serving (degraded) while the server is unreachable.
 */
import type { OttoConfig } from '../../config.ts';
import { attachChangeLog, MirrorSet, type ChangeLog, type MirrorStatus } from '../changes/index.ts';
import { StorageError, type Store } from '../contract.ts';
import { openStorage, type StorageStartup } from '../index.ts';
import { parseTargetUrl } from '../changes/targets.ts';
import { createResilientStore, type ResilientStore } from './resilient-store.ts';

/** The mirrors of the primary, once it has been reached (before that, each is reported down). */
export class PrimaryMirrors {
  private readonly urls: string[];
  private current: MirrorSet | undefined;
  private started = false;

  constructor(urls: string[]) {
    this.urls = urls;
  }

  /** The mirror set following the primary's log, or undefined before the primary was first reached. */
  get set(): MirrorSet | undefined {
    return this.current;
  }

  /** Uses `set` from now on (started at once when `start` was called before). */
  attach(set: MirrorSet): void {
    this.current = set;
    if (this.started) set.start();
  }

  /** Starts feeding the mirrors (now, or when the primary is first reached). Never throws. */
  start(): void {
    this.started = true;
    this.current?.start();
  }

  /** Stops feeding them. Never throws. */
  async stop(): Promise<void> {
    this.started = false;
    await this.current?.stop();
  }

  /** Every mirror's status; before the primary was reached, each is `down`. Never throws. */
  async status(): Promise<MirrorStatus[]> {
    if (this.current) return this.current.status();
    return this.urls.map((url) => ({ url: safeDisplay(url), seq: 0, lag: 0, seconds_behind: 0, status: 'down' as const, last_error: 'the primary has not been reached yet', active: false }));
  }
}

function safeDisplay(url: string): string {
  try {
    return parseTargetUrl(url).display;
  } catch {
    return 'mirror';
  }
}

/** The primary as `createOtto` uses it. */
export interface OpenedPrimary {
  /** The store to give the services (resilient for MongoDB) and the migration state (updated when a late primary is migrated). */
  storage: StorageStartup;
  /** The primary's change log. Throws StorageError UNAVAILABLE while the primary has never been reached. */
  readonly changes: ChangeLog;
  mirrors: PrimaryMirrors;
  /** The degraded-mode wrapper (MongoDB primaries), else undefined. */
  resilient: ResilientStore | undefined;
  /** Set by the caller: run after the primary comes back and the spool is replayed (e.g. reload bots). */
  onRecovered: (() => Promise<void> | void) | undefined;
}

/**
 * Opens the configured primary (applying migrations unless OTTO_AUTO_MIGRATE=false), attaches its
 * change log and prepares its mirrors (not started). With OTTO_STORAGE=mongodb the store is
 * resilient: an unreachable server at startup or later puts it in degraded mode instead of
 * failing; without a mirror to read from, requests then answer 503 until the server is reached
 * (it is retried every OTTO_PRIMARY_RETRY_MS in the background).
 * Throws StorageError for anything but an unreachable server (bad configuration, failed
 * migration, a mirror that is the primary itself, a corrupt spool).
 */
export async function openPrimary(args: {
  config: OttoConfig;
  onProgress?: (line: string) => void;
  onEvent?: (line: string) => void;
}): Promise<OpenedPrimary> {
  const { config } = args;
  const mirrors = new PrimaryMirrors(config.mirrors.urls);
  let log: ChangeLog | undefined;
  const storage: StorageStartup = { store: undefined as unknown as Store, migrations: { appliedNow: [], applied: 0, pending: 0, total: 0 } };
  const connect = async (): Promise<Store> => {
    const opened = await openStorage({ config, migrate: config.autoMigrate, onProgress: args.onProgress });
    try {
      // Every write from here on is logged (in its transaction on SQLite, write-ahead elsewhere).
      const logged = await attachChangeLog(opened.store, { recoveryMs: config.changes.recoveryMs, onError: (error) => args.onEvent?.(`change log: ${(error as Error).message}`) });
      const set = new MirrorSet(config.mirrors.urls, logged.log, { intervalMs: config.mirrors.intervalMs, batchSize: config.mirrors.batchSize, onEvent: args.onEvent });
      for (const mirror of set.mirrors) {
        if (mirror.url.endsWith(`//${opened.store.location}`)) throw new StorageError('INVALID', `the mirror ${mirror.url} is the primary store itself`, { field: 'OTTO_MIRRORS' });
      }
      Object.assign(storage.migrations, opened.migrations);
      log = logged.log;
      mirrors.attach(set);
      return logged.store;
    } catch (error) {
      await opened.store.close();
      throw error;
    }
  };
  const result: OpenedPrimary = {
    storage,
    get changes(): ChangeLog {
      if (!log) throw new StorageError('UNAVAILABLE', 'the primary has not been reached yet, so its change log cannot be read');
      return log;
    },
    mirrors,
    resilient: undefined,
    onRecovered: undefined,
  };
  if (config.storage !== 'mongodb') {
    storage.store = await connect();
    return result;
  }
  const { mongoLocation } = await import('../mongodb/mongodb-store.ts');
  const resilient = await createResilientStore({
    connect,
    describe: { engine: 'mongodb', location: mongoLocation(config.mongodb.uri!, config.mongodb.database) },
    mirror: config.mirrors.urls[0],
    spoolDir: config.degraded.spoolDir,
    retryMs: config.degraded.retryMs,
    onEvent: args.onEvent,
    onRecovered: () => result.onRecovered?.(),
  });
  // Without a mirror to read from, Otto starts anyway: requests answer 503 and /health says so
  // while the primary is retried in the background (the store reported it as it went degraded).
  storage.store = resilient;
  result.resilient = resilient;
  return result;
}
