import { EngineError } from '../errors.ts';
import type { Provider } from './types.ts';

/** The offline provider's name; `runTurn` and `runBuilderTurn` take the rules path for it. */
export const OFFLINE_PROVIDER_NAME = 'offline';

/**
 * The offline rules provider: deterministic, needs no key and no network. It is not a
 * language model: `runTurn` composes offline replies itself from matched guidelines,
 * journeys and tool results, and `runBuilderTurn` parses its command language, so there is
 * exactly one code path per provider. Its `complete` therefore always rejects with
 * EngineError `PROVIDER_UNSUPPORTED` — nothing in the engine calls it.
 */
export function createOfflineRulesProvider(): Provider {
  return Object.freeze({
    name: OFFLINE_PROVIDER_NAME,
    model: 'rules',
    complete(): Promise<never> {
      return Promise.reject(
        new EngineError('PROVIDER_UNSUPPORTED', 'the offline provider has no language model; replies are composed by the rules engine'),
      );
    },
  });
}

/** True when `provider` is the offline rules provider (its name is `offline`). */
export function isOfflineProvider(provider: Provider): boolean {
  return provider.name === OFFLINE_PROVIDER_NAME;
}
