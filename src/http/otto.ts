import type { FastifyInstance } from 'fastify';
import type { OttoConfig } from '../config.ts';
import type { Provider } from '../engine/index.ts';
import { createServices, type Services } from '../services/index.ts';
import { attachChangeLog, MirrorSet, type ChangeLog } from '../storage/changes/index.ts';
import { openStorage, StorageError, type StorageStartup } from '../storage/index.ts';
import { buildApp } from './app.ts';
import { assertSafeBinding } from './auth.ts';

/** A whole Otto: storage, services and the HTTP app, not yet listening. */
export interface Otto {
  config: OttoConfig;
  storage: StorageStartup;
  services: Services;
  /** The change log of the primary (every write this process makes is in it). */
  changes: ChangeLog;
  /** The mirrors fed from it (OTTO_MIRRORS), already following the log. */
  mirrors: MirrorSet;
  app: FastifyInstance;
  /** Closes the app, stops background work and closes the store. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens storage (applying migrations unless turned off), rehydrates bots, and builds the app.
 * Throws ConfigError-free typed errors: StorageError when storage fails, OttoError FORBIDDEN
 * when the binding is unsafe (beyond loopback without a key). Never exits the process.
 */
export async function createOtto(args: {
  config: OttoConfig;
  provider?: Provider;
  onProgress?: (line: string) => void;
  /** Lines about background work (a mirror going down or coming back). */
  onEvent?: (line: string) => void;
  logger?: boolean;
}): Promise<Otto> {
  const { config } = args;
  const opened = await openStorage({ config, migrate: config.autoMigrate, onProgress: args.onProgress });
  let storage: StorageStartup = opened;
  let services: Services | undefined;
  let mirrors: MirrorSet | undefined;
  try {
    // Every write from here on is logged (in its transaction on SQLite, write-ahead elsewhere).
    const logged = await attachChangeLog(opened.store, { recoveryMs: config.changes.recoveryMs, onError: (error) => args.onEvent?.(`change log: ${(error as Error).message}`) });
    storage = { ...opened, store: logged.store };
    mirrors = new MirrorSet(config.mirrors.urls, logged.log, { intervalMs: config.mirrors.intervalMs, batchSize: config.mirrors.batchSize, onEvent: args.onEvent });
    for (const mirror of mirrors.mirrors) {
      if (mirror.url.endsWith(`//${opened.store.location}`)) throw new StorageError('INVALID', `the mirror ${mirror.url} is the primary store itself`, { field: 'OTTO_MIRRORS' });
    }
    services = await createServices({ store: storage.store, config, provider: args.provider });
    assertSafeBinding(config.http.host, services.keys);
    const app = await buildApp({ config, storage, services, mirrors, logger: args.logger });
    mirrors.start();
    let closed = false;
    const ready = services;
    const feeding = mirrors;
    const store = storage.store;
    return {
      config,
      storage,
      services: ready,
      changes: logged.log,
      mirrors: feeding,
      app,
      async close() {
        if (closed) return;
        closed = true;
        await app.close();
        ready.close();
        await feeding.stop();
        await store.close();
      },
    };
  } catch (error) {
    services?.close();
    await mirrors?.stop();
    await storage.store.close();
    throw error;
  }
}
