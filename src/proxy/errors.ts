import type { ErrorCode } from '../cdf/errors.js';

/** An answer the gateway gives itself, in CDF's error shape, with a stable `CDFGW_*` code. */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}
