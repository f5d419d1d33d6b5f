import type { FastifyInstance } from 'fastify';
import type { OttoConfig } from '../config.ts';
import type { Provider } from '../engine/index.ts';
import { createServices, type Services } from '../services/index.ts';
import type { ChangeLog } from '../storage/changes/index.ts';
import { openPrimary, type PrimaryMirrors } from '../storage/degraded/open.ts';
import type { ResilientStore } from '../storage/degraded/index.ts';
import type { StorageStartup } from '../storage/index.ts';
import { buildApp } from './app.ts';
import { createIntegrations, type Integrations } from '../services/integrations.ts';
import { assertSafeBinding } from './auth.ts';

/** A whole Otto: storage, services and the HTTP app, not yet listening. */
export interface Otto {
  config: OttoConfig;
  storage: StorageStartup;
  services: Services;
  /**
   * The change log of the primary (every write this process makes is in it). Reading it throws
   * StorageError UNAVAILABLE while a MongoDB primary has not been reached since startup.
   */
  readonly changes: ChangeLog;
  /** The mirrors fed from it (OTTO_MIRRORS), already following the log (`mirrors.set` once the primary was reached). */
  mirrors: PrimaryMirrors;
  /** Degraded mode of a MongoDB primary (see README, Degraded mode); undefined for other engines. */
  degraded: ResilientStore | undefined;
  /** Provider keys, channels and outgoing webhooks (the webhook outbox and dispatcher run in the background). */
  integrations: Integrations;
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
  // Migrated, with its change log and mirrors; a MongoDB primary is wrapped for degraded mode.
  const opened = await openPrimary({ config, onProgress: args.onProgress, onEvent: args.onEvent });
  const storage: StorageStartup = opened.storage;
  const degraded = opened.resilient;
  let services: Services | undefined;
  const mirrors = opened.mirrors;
  let integrations: Integrations | undefined;
  // The log as the services see it: the primary's, once it has been reached.
  const changes = new Proxy({} as ChangeLog, {
    get: (_target, prop) => {
      const log = opened.changes as unknown as Record<PropertyKey, unknown>;
      const value = log[prop];
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(log) : value;
    },
  });
  try {
    services = await createServices({ store: storage.store, config, provider: args.provider, onBackgroundError: (error) => {
        if (!degraded?.explains(error)) args.onEvent?.(`background: ${(error as Error).message}`);
      } });
    await assertSafeBinding(config.http.host, services.keys);
    integrations = await createIntegrations({ store: storage.store, log: changes, config, services, providerInjected: args.provider !== undefined, onEvent: args.onEvent });
    const app = await buildApp({ config, storage, services, mirrors, degraded, integrations, logger: args.logger });
    mirrors.start();
    const connected = integrations;
    const ready = services;
    let integrationsStarted = false;
    const startIntegrations = async () => {
      if (integrationsStarted) return;
      await connected.start();
      integrationsStarted = true;
    };
    // Started now, or (when the primary was unreachable at startup) once it is back.
    if (!degraded?.degradedStatus().active) await startIntegrations();
    opened.onRecovered = async () => {
      // Replaying the spool may have renumbered messages written meanwhile.
      ready.conversations.forgetWindows();
      await ready.registry.rehydrate();
      await startIntegrations();
    };
    let closed = false;
    const feeding = mirrors;
    const store = storage.store;
    return {
      config,
      storage,
      services: ready,
      get changes(): ChangeLog {
        return opened.changes;
      },
      mirrors: feeding,
      degraded,
      integrations: connected,
      app,
      async close() {
        if (closed) return;
        closed = true;
        await app.close();
        await connected.close();
        ready.close();
        await feeding.stop();
        await store.close();
      },
    };
  } catch (error) {
    await integrations?.close();
    services?.close();
    await mirrors.stop();
    await storage.store.close();
    throw error;
  }
}
