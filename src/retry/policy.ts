/** What went wrong with one upstream attempt. */
export type Failure =
  | { kind: 'status'; status: number; autoRetryable: boolean }
  /** No response: `sent` tells whether the request may have reached CDF (a reset after sending). */
  | { kind: 'network'; code: string; sent: boolean; timeout: boolean };

export interface RetrySubject {
  /** Reads are safe to repeat: GET, HEAD, OPTIONS and the POSTs CDF's API marks READ/LIST. */
  readonly read: boolean;
  /** The body can be sent again (it was buffered, or there is none). */
  readonly replayable: boolean;
}

/**
 * Why a failed attempt may be repeated, or null when it must not. A 429 means CDF did not process the
 * call, so any method is repeated; other failures only where repeating cannot write twice.
 */
export function retryReason(failure: Failure, subject: RetrySubject): string | null {
  if (!subject.replayable) return null;
  if (failure.kind === 'status') {
    if (failure.status === 429) return 'throttled';
    const transient = failure.status === 502 || failure.status === 503 || failure.status === 504;
    if (failure.autoRetryable && failure.status >= 500) return 'auto-retryable';
    if (transient && subject.read) return `status-${failure.status}`;
    return null;
  }
  // Never sent (refused, connect timeout): repeating cannot write twice.
  if (!failure.sent) return 'connect';
  if (subject.read) return failure.timeout ? 'timeout' : 'reset';
  return null;
}

/** CDF marks answers safe to retry with a header, or in the error body. */
export function isAutoRetryable(headers: Record<string, string | string[] | undefined>, body: Buffer | null): boolean {
  if (headers['cdf-is-auto-retryable'] === 'true') return true;
  return body !== null && body.length < 65_536 && body.includes('"isAutoRetryable":true');
}
