/**
 * The gateway's own error codes, stable strings like fastify's `FST_ERR_*`: in the log line (`errCode`) and
 * in the body's `error` object next to CDF's `code` and `message` (`gatewayCode`), so an app or an operator
 * can tell the gateway's answers from CDF's and act on them without parsing messages. Add new codes here.
 */
export const ErrorCodes = {
  /** The request target could steer the gateway to another host or path (absolute form, `..`, `\`). */
  BAD_TARGET: 'CDFGW_BAD_TARGET',
  /** Fastify refused the request before the proxy saw it (malformed header, bad content length, ...). */
  BAD_REQUEST: 'CDFGW_BAD_REQUEST',
  /** `partition=m/n` malformed or over `partitions.max` (query or JSON body). */
  BAD_PARTITION: 'CDFGW_BAD_PARTITION',
  /** The request body is larger than `server.bodyLimitBytes`. */
  BODY_TOO_LARGE: 'CDFGW_BODY_TOO_LARGE',
  /** The app closed the connection before its whole body arrived. */
  BODY_INCOMPLETE: 'CDFGW_BODY_INCOMPLETE',
  /** The app's streamed body made no progress for `server.responseIdleTimeoutMs`. */
  BODY_STALLED: 'CDFGW_BODY_STALLED',
  /** A project path without `Authorization`, `api-key` or a cookie: CDF would answer 401. */
  NO_CREDENTIALS: 'CDFGW_NO_CREDENTIALS',
  /** The project is not in the `projects` allow-list. */
  PROJECT_NOT_ALLOWED: 'CDFGW_PROJECT_NOT_ALLOWED',
  /** The queue of a bucket is full (`queue.maxQueued`). */
  QUEUE_FULL: 'CDFGW_QUEUE_FULL',
  /** A request waited `queue.maxWaitMs` (or `retry.maxWaitMs`) for a token and a slot. */
  QUEUE_TIMEOUT: 'CDFGW_QUEUE_TIMEOUT',
  /** The circuit breaker is open: CDF kept failing. */
  CIRCUIT_OPEN: 'CDFGW_CIRCUIT_OPEN',
  /** CDF could not be reached (connection refused, reset, DNS). */
  UPSTREAM_UNREACHABLE: 'CDFGW_UPSTREAM_UNREACHABLE',
  /** CDF did not answer within `upstream.timeoutMs`. */
  UPSTREAM_TIMEOUT: 'CDFGW_UPSTREAM_TIMEOUT',
  /** CDF's answer broke off midway. */
  UPSTREAM_BROKEN: 'CDFGW_UPSTREAM_BROKEN',
  /** The app went away (logged only; status 499). */
  CLIENT_GONE: 'CDFGW_CLIENT_GONE',
  /** The answer made no progress for `server.responseIdleTimeoutMs` (the app stopped reading). */
  RESPONSE_STALLED: 'CDFGW_RESPONSE_STALLED',
  /** No such gateway route (admin port). */
  NOT_FOUND: 'CDFGW_NOT_FOUND',
  /** The admin surface needs `Authorization: Bearer <metrics.token>`. */
  ADMIN_UNAUTHORIZED: 'CDFGW_ADMIN_UNAUTHORIZED',
  /** A bug: the gateway failed to handle the request. */
  INTERNAL: 'CDFGW_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** CDF's error shape: `{"error": {"code": 429, "message": "...", "gatewayCode": "CDFGW_..."}}`. */
export function cdfErrorBody(code: number, message: string, extra?: Record<string, unknown>): string {
  return JSON.stringify({ error: { code, message, ...extra } });
}

/** The gateway's own error body, with its stable code. */
export function gatewayErrorBody(status: number, gatewayCode: ErrorCode, message: string): string {
  return JSON.stringify({ error: { code: status, message, gatewayCode } });
}

/** The `message` of a CDF error body, or null when the body is not one. */
export function cdfErrorMessage(body: Buffer | string | null): string | null {
  if (body === null || body.length === 0) return null;
  try {
    const parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as {
      error?: { message?: unknown };
    };
    return typeof parsed?.error?.message === 'string' ? parsed.error.message : null;
  } catch {
    return null;
  }
}
