import { EngineError } from '../errors.ts';
import { createOfflineRulesProvider } from './offline-rules.ts';
import { createOpenAiCompatibleProvider } from './openai-compatible.ts';
import type { Provider } from './types.ts';

/** Which provider to build, as configuration gives it. */
export interface ProviderConfig {
  provider: 'offline' | 'openai';
  /** OpenAI-compatible base URL; default `https://api.openai.com/v1`. */
  baseUrl?: string;
  apiKey?: string;
  /** Required for `openai`. */
  model?: string;
  timeoutMs?: number;
}

/** The default base URL for `provider: 'openai'`. */
export const DEFAULT_OPENAI_BASE_URL = 'https://api.openai.com/v1';

/**
 * Builds the configured provider. `offline` ignores every other field. `openai` needs a
 * model; throws EngineError `INVALID_CONFIG` otherwise or for an unusable base URL or timeout.
 */
export function createProvider(config: ProviderConfig): Provider {
  switch (config.provider) {
    case 'offline':
      return createOfflineRulesProvider();
    case 'openai':
      return createOpenAiCompatibleProvider({
        baseUrl: config.baseUrl || DEFAULT_OPENAI_BASE_URL,
        apiKey: config.apiKey,
        model: config.model ?? '',
        timeoutMs: config.timeoutMs,
      });
    default:
      throw new EngineError('INVALID_CONFIG', `unknown provider ${JSON.stringify((config as { provider?: unknown }).provider)}; use offline or openai`);
  }
}
