/**
 * A Store wrapper for unit tests of degraded mode: it forwards to a real store until told the
 * server is "down", then every call throws StorageError UNAVAILABLE (as the MongoDB engine does
 * when its server is gone). `crashAfterWrites` lets that many writes through and then goes down
 * right after the next one has been applied: a crash between a write and its bookkeeping.
 */
import { StorageError, type Collection, type CollectionSpec, type Doc, type Store } from '../../src/storage/contract.ts';

export interface Outage {
  down: boolean;
  /** Writes still allowed before the store goes down just after applying one more; undefined: no crash planned. */
  crashAfterWrites?: number;
  /** Writes applied through the wrapper. */
  writes: number;
}

const WRITES = new Set(['insert', 'insertMany', 'insertNumbered', 'upsert', 'update', 'delete', 'deleteMany', 'increment']);

function unavailable(): StorageError {
  return new StorageError('UNAVAILABLE', 'test outage: the server is unavailable');
}

/** Wraps `inner`; `outage` is read on every call. */
export function flakyStore(inner: Store, outage: Outage): Store {
  const wrapCollection = (c: Collection<Doc>): Collection<Doc> =>
    new Proxy(c, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (outage.down) throw unavailable();
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          if (!WRITES.has(String(prop))) return result;
          return (result as Promise<unknown>).then((out) => {
            outage.writes++;
            if (outage.crashAfterWrites !== undefined && outage.crashAfterWrites-- <= 0) {
              outage.down = true;
              throw unavailable();
            }
            return out;
          });
        };
      },
    });
  return {
    get engine() {
      return inner.engine;
    },
    get location() {
      return inner.location;
    },
    get capabilities() {
      return inner.capabilities;
    },
    async collection<T>(spec: CollectionSpec) {
      if (outage.down) throw unavailable();
      return wrapCollection((await inner.collection(spec)) as Collection<Doc>) as unknown as Collection<T & Doc>;
    },
    async listCollections() {
      if (outage.down) throw unavailable();
      return inner.listCollections();
    },
    async listIndexes(args: { collection: string }) {
      if (outage.down) throw unavailable();
      return inner.listIndexes(args);
    },
    onWrite: (hook) => inner.onWrite(hook),
    async health() {
      if (outage.down) return { ok: false, engine: inner.engine, location: inner.location, latency_ms: 0, error: 'test outage' };
      return inner.health();
    },
    close: async () => {},
  } as Store;
}
