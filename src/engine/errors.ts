/**
 * Errors the engine throws. Only provider problems (and a caller's abort) fail a turn;
 * tool failures are recorded as agent steps and answered in words.
 */

/** Every code an EngineError carries. */
export const engineErrorCodes = [
  'PROVIDER_TIMEOUT',
  'PROVIDER_FAILED',
  'PROVIDER_BAD_RESPONSE',
  'PROVIDER_UNSUPPORTED',
  'INVALID_CONFIG',
  'ABORTED',
] as const;

/**
 * - `PROVIDER_TIMEOUT`: the model did not answer within the provider's timeout.
 * - `PROVIDER_FAILED`: the model could not be reached or answered with a non-2xx status.
 * - `PROVIDER_BAD_RESPONSE`: the model answered 2xx with something that is not a usable completion.
 * - `PROVIDER_UNSUPPORTED`: the provider cannot do what was asked (the offline provider has no LLM).
 * - `INVALID_CONFIG`: `createProvider` was given an unusable configuration.
 * - `ABORTED`: the caller's AbortSignal fired.
 */
export type EngineErrorCode = (typeof engineErrorCodes)[number];

/**
 * An engine failure with a stable `code`. Messages never contain API keys or tool
 * endpoint headers, so they are safe to log and to store with the conversation.
 */
export class EngineError extends Error {
  readonly code: EngineErrorCode;
  constructor(code: EngineErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EngineError';
    this.code = code;
  }
}

/** True when `error` is an EngineError (optionally with the given code). */
export function isEngineError(error: unknown, code?: EngineErrorCode): error is EngineError {
  return error instanceof EngineError && (code === undefined || error.code === code);
}
