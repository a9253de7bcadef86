/**
 * Every answer the gateway gives itself, declared once, as fastify's `lib/errors.js` does: each entry binds a
 * stable `CDFGW_*` code (in the log line's `errCode` and in the body's `gatewayCode`, next to CDF's `code`
 * and `message`), the HTTP status and the message, whose `%s` the call site fills in. An app or an operator
 * can then tell the gateway's answers from CDF's and act on the code without parsing the message. Call
 * sites name the entry (`throw new GatewayErrors.QUEUE_FULL(bucket)`); add new answers here.
 */

/** A gateway code, for the log line's `errCode` and the body's `gatewayCode`: one of GatewayErrors' below. */
export type ErrorCode = `CDFGW_${string}`;

/** The parameters a message template takes: one per `%s`. */
type Params<M extends string> = M extends `${string}%s${infer Rest}` ? [string | number, ...Params<Rest>] : [];

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** An answer the gateway gives itself, in CDF's error shape, with a stable `CDFGW_*` code. */
export class GatewayError extends Error {
  /** Extra headers of the answer (Retry-After, Connection). */
  headers: Readonly<Record<string, string>>;

  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    headers: Readonly<Record<string, string>> = NO_HEADERS,
  ) {
    super(message);
    this.headers = headers;
  }

  /** Adds headers only the call site knows (a Retry-After); returns this error. */
  withHeaders(headers: Readonly<Record<string, string>>): this {
    this.headers = this.headers === NO_HEADERS ? headers : { ...this.headers, ...headers };
    return this;
  }

  /** The body: `{"error":{"code":429,"message":"...","gatewayCode":"CDFGW_..."}}`. */
  body(): string {
    return JSON.stringify({ error: { code: this.status, message: this.message, gatewayCode: this.code } });
  }
}

/** What createError makes: `new X(...params)` is the answer; `X.code`, `X.status` and `X.format()` read the entry. */
export interface GatewayErrorType<C extends string, M extends string> {
  new (...params: Params<M>): GatewayError;
  readonly code: C;
  readonly status: number;
  /** The message with its parameters filled in, for a log line that has no answer of its own. */
  format(...params: Params<M>): string;
}

function createError<const C extends ErrorCode, const M extends string>(
  code: C,
  status: number,
  template: M,
  headers: Readonly<Record<string, string>> = NO_HEADERS,
): GatewayErrorType<C, M> {
  const pieces = template.split('%s');
  const format = (...params: Params<M>): string => {
    if (params.length === 0) return template;
    let out = pieces[0];
    for (let i = 1; i < pieces.length; i++) out += String(params[i - 1]) + pieces[i];
    return out;
  };
  return class extends GatewayError {
    static readonly code = code;
    static readonly status = status;
    static readonly format = format;
    constructor(...params: Params<M>) {
      super(status, code, format(...params), headers);
    }
  };
}

/** The rest of a body not read: the connection cannot carry another request. */
const CLOSE = Object.freeze({ connection: 'close' });

/** An answer that broke off midway, whether it stalled (a timeout) or its connection went. */
const BROKE_OFF = "CDF's answer broke off (%s).";

export const GatewayErrors = {
  /** The request target could steer the gateway to another host or path (absolute form, `..`, `\`). */
  BAD_TARGET: createError('CDFGW_BAD_TARGET', 400, 'Bad request target: %s.', CLOSE),
  /** Node's HTTP parser refused the request (a bad header, a bad content length, ...); `%s` is its code. */
  MALFORMED_REQUEST: createError('CDFGW_BAD_REQUEST', 400, 'Malformed HTTP request (%s).'),
  /** The request headers did not all arrive within node's request timeout. */
  REQUEST_TIMEOUT: createError('CDFGW_BAD_REQUEST', 408, 'The request did not arrive in time.'),
  /** The request headers are over node's limit. */
  HEADERS_TOO_LARGE: createError('CDFGW_BAD_REQUEST', 431, 'The request headers are too large.'),
  /** `partition=m/n` malformed or over `partitions.max` (query or JSON body); `%s` says which. */
  BAD_PARTITION: createError('CDFGW_BAD_PARTITION', 400, '%s'),
  /** The request body is larger than `server.bodyLimitBytes`. */
  BODY_TOO_LARGE: createError(
    'CDFGW_BODY_TOO_LARGE',
    413,
    "Request body is larger than the gateway's limit of %s bytes.",
    CLOSE,
  ),
  /** The app closed the connection before its whole body arrived. */
  BODY_INCOMPLETE: createError(
    'CDFGW_BODY_INCOMPLETE',
    400,
    'The client closed the connection before sending the whole request body.',
  ),
  /** The app's streamed body made no progress for `server.responseIdleTimeoutMs` (`%s` in seconds). */
  BODY_STALLED: createError('CDFGW_BODY_STALLED', 408, 'The request body made no progress for %s s.', CLOSE),
  /** A project path without `Authorization`, `api-key` or a cookie: CDF would answer 401. */
  NO_CREDENTIALS: createError('CDFGW_NO_CREDENTIALS', 401, 'Unauthorized'),
  /** The project is not in the `projects` allow-list. */
  PROJECT_NOT_ALLOWED: createError('CDFGW_PROJECT_NOT_ALLOWED', 403, "Project '%s' is not served by this gateway."),
  /** The queue of a bucket is full (`queue.maxQueued`). */
  QUEUE_FULL: createError('CDFGW_QUEUE_FULL', 429, "Gateway queue for '%s' is full. Please try again later."),
  /** A request waited `queue.maxWaitMs` (or `retry.maxWaitMs`) for a token and a slot. */
  QUEUE_TIMEOUT: createError(
    'CDFGW_QUEUE_TIMEOUT',
    429,
    "Gateway waited too long for quota in '%s'. Please try again later.",
  ),
  /** The circuit breaker is open: CDF kept failing. */
  CIRCUIT_OPEN: createError(
    'CDFGW_CIRCUIT_OPEN',
    503,
    'CDF is failing; the gateway is not sending calls for a moment. Please try again later.',
  ),
  /** CDF could not be reached (connection refused, reset, DNS); `%s` is the network error's code. */
  UPSTREAM_UNREACHABLE: createError('CDFGW_UPSTREAM_UNREACHABLE', 502, 'CDF could not be reached (%s).'),
  /** CDF did not answer within `upstream.timeoutMs`. */
  UPSTREAM_TIMEOUT: createError('CDFGW_UPSTREAM_TIMEOUT', 504, 'CDF did not answer within %s ms.'),
  /** CDF's answer stopped arriving within `upstream.timeoutMs`, midway; `%s` is the error's code. */
  UPSTREAM_BODY_TIMEOUT: createError('CDFGW_UPSTREAM_TIMEOUT', 504, BROKE_OFF),
  /** CDF's answer broke off midway; `%s` is the error's code. */
  UPSTREAM_BROKEN: createError('CDFGW_UPSTREAM_BROKEN', 502, BROKE_OFF),
  /** The app went away (logged only: nobody reads the answer). */
  CLIENT_GONE: createError('CDFGW_CLIENT_GONE', 499, 'The client went away.'),
  /**
   * The answer made no progress for `server.responseIdleTimeoutMs` (the app stopped reading). Logged only:
   * the answer under way keeps the status it began with.
   */
  RESPONSE_STALLED: createError('CDFGW_RESPONSE_STALLED', 0, 'The app read nothing for %s s: answer ended.'),
  /** No such gateway route (main port, outside the proxied paths). */
  NOT_FOUND: createError('CDFGW_NOT_FOUND', 404, 'Not found.'),
  /** No such route on the admin port. */
  ADMIN_NOT_FOUND: createError('CDFGW_NOT_FOUND', 404, 'Not found: the admin port serves /metrics and /dashboard.'),
  /** The admin surface needs `Authorization: Bearer <metrics.token>`. */
  ADMIN_UNAUTHORIZED: createError(
    'CDFGW_ADMIN_UNAUTHORIZED',
    401,
    'The admin routes need the bearer token set in metrics.token.',
  ),
  /** A bug: the gateway failed to handle the request. */
  INTERNAL: createError('CDFGW_INTERNAL', 500, 'The gateway failed to handle the request.'),
} as const;

/**
 * Fastify refused the request before the proxy saw it (a malformed URL, ...): fastify's own table binds its
 * 4xx and message, which go to the app as they are, under the gateway's code for a bad request.
 */
export class FastifyRefused extends GatewayError {
  constructor(status: number, message: string) {
    super(status, GatewayErrors.MALFORMED_REQUEST.code, message);
  }
}
