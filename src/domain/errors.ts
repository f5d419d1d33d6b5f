/**
 * The error domain code throws for callers to see: a registered code, a message written
 * for the person calling, and the field at fault. The HTTP layer maps codes to statuses
 * (`src/http/errors.ts`); the CLI prints the message.
 */
export type OttoErrorCode =
  | 'BAD_REQUEST'
  | 'INVALID'
  | 'INVALID_JSON'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'DUPLICATE'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'RATE_LIMITED'
  | 'BUDGET_EXCEEDED'
  | 'PROVIDER_FAILED'
  | 'PROVIDER_TIMEOUT'
  | 'UNAVAILABLE'
  | 'SECRETS_DISABLED'
  | 'SECRET_KEY_MISSING'
  | 'SECRET_CORRUPT'
  | 'UPSTREAM_FAILED';

export class OttoError extends Error {
  readonly code: OttoErrorCode;
  readonly field: string | undefined;
  /** Extra, client-safe detail (e.g. the stored user message when a provider failed). */
  readonly detail: Record<string, unknown> | undefined;
  constructor(code: OttoErrorCode, message: string, options: { field?: string; cause?: unknown; detail?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OttoError';
    this.code = code;
    this.field = options.field;
    this.detail = options.detail;
  }
}
