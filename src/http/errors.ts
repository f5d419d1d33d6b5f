import { OttoError, type OttoErrorCode } from '../domain/errors.ts';
import { isStorageError, type StorageErrorCode } from '../storage/contract.ts';

/**
 * The one registry of error codes the API answers with, and their HTTP statuses.
 * Bodies are `{error: {code, message, field?}}`.
 */
export const errorStatuses: Record<OttoErrorCode | StorageErrorCode, number> = {
  BAD_REQUEST: 400,
  INVALID: 400,
  INVALID_JSON: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  DUPLICATE: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  /** A monthly usage budget (user or bot) is spent; the message names it and when it resets. */
  BUDGET_EXCEEDED: 429,
  INTERNAL: 500,
  UNSUPPORTED: 501,
  PROVIDER_FAILED: 502,
  UNAVAILABLE: 503,
  PROVIDER_TIMEOUT: 504,
  SECRETS_DISABLED: 409,
  SECRET_KEY_MISSING: 500,
  SECRET_CORRUPT: 500,
  UPSTREAM_FAILED: 502,
};

export type ErrorCode = keyof typeof errorStatuses;

/** Codes whose messages Otto writes itself for the client, so they are sent even at 5xx. */
const AUTHORED_5XX = new Set<ErrorCode>(['PROVIDER_FAILED', 'PROVIDER_TIMEOUT', 'SECRET_KEY_MISSING', 'SECRET_CORRUPT', 'UPSTREAM_FAILED']);

/** The JSON body of an error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string; detail?: Record<string, unknown> };
}

/** JSON Schema of the error body, for the OpenAPI document. */
export const errorBodySchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', enum: Object.keys(errorStatuses) },
        message: { type: 'string' },
        field: { type: 'string' },
        detail: { type: 'object', additionalProperties: true },
      },
    },
  },
} as const;

/**
 * Maps any thrown value to a status and a body safe to send: OttoErrors and StorageErrors
 * keep their code and message below 500; at 500 and above only messages Otto authored for
 * the client are sent, everything else gets a generic message.
 */
export function toErrorResponse(error: unknown): { status: number; body: ErrorBody } {
  let code: ErrorCode = 'INTERNAL';
  let message = 'internal error';
  let field: string | undefined;
  let detail: Record<string, unknown> | undefined;
  if (error instanceof OttoError) {
    ({ code, message, field, detail } = error);
  } else if (isStorageError(error)) {
    code = error.code;
    message = error.message;
    field = error.field;
  }
  const status = errorStatuses[code];
  if (status >= 500 && !AUTHORED_5XX.has(code)) {
    message = code === 'UNAVAILABLE' ? 'storage is unavailable; try again shortly' : code === 'UNSUPPORTED' ? 'not supported by this storage engine' : 'internal error';
    field = undefined;
    detail = undefined;
  }
  const body: ErrorBody['error'] = { code, message };
  if (field) body.field = field;
  if (detail) body.detail = detail;
  return { status, body: { error: body } };
}
