import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/index.js';
import type { GatewayError } from '../errors.js';
import type { Telemetry } from '../metrics/telemetry.js';
import type { Bucket } from '../quota/index.js';
import { backoffMs, type Failure, RetryBudget, retryAfterMs, retryReason } from '../retry/index.js';
import type { Exchange } from './exchange.js';
import type { UpstreamAnswer } from './types.js';

/** Retry budgets kept at most (one per limit). */
const MAX_BUDGETS = 1024;

/** A failed attempt that may be tried again; `otherwise` is what the app gets when it is not. */
export class TryAgain {
  constructor(
    readonly failure: Failure,
    readonly retryAfter: string | string[] | undefined,
    readonly throttled: boolean,
    readonly otherwise: UpstreamAnswer | GatewayError,
    /** CDF's answer, too large to read, that `otherwise` streams: dropped when the attempt is tried again. */
    readonly unread: Readable | null = null,
  ) {}

  /** The attempt is tried again: CDF's unread answer goes (its connection with it). */
  drop(): void {
    this.unread?.destroy();
  }
}

/**
 * Whether, and after how long, a failed attempt is tried again: where repeating it is safe (retryReason),
 * within `retry.maxAttempts` and the request's deadline, and within the retry budget of each of its buckets'
 * limits, so that retries add at most a share of the first attempts when CDF keeps failing. A budget per limit,
 * not per scope: what a storm may add is counted against the API's load, and made-up callers make no budgets.
 */
export class RetryPolicy {
  private budgets = new Map<string, RetryBudget>();
  private unbucketed: RetryBudget;
  private budgetSettings: string;

  constructor(
    private readonly config: GatewayConfig,
    private readonly telemetry: Telemetry,
    private readonly log: Logger,
  ) {
    const { budgetRatio, budgetWindowMs } = config.retry;
    this.unbucketed = new RetryBudget(budgetRatio, budgetWindowMs);
    this.budgetSettings = `${budgetRatio}/${budgetWindowMs}`;
  }

  /** Reload: `config.retry` changed in place; new budget settings start fresh budgets. */
  reconfigure(): void {
    const { budgetRatio, budgetWindowMs } = this.config.retry;
    if (`${budgetRatio}/${budgetWindowMs}` === this.budgetSettings) return;
    this.budgetSettings = `${budgetRatio}/${budgetWindowMs}`;
    this.budgets = new Map();
    this.unbucketed = new RetryBudget(budgetRatio, budgetWindowMs);
  }

  /** A request's first attempt: what the budgets allow retries against. */
  first(ex: Exchange, now: number): void {
    if (ex.buckets.length === 0) this.unbucketed.recordFirst(now);
    for (const b of ex.buckets) this.budgetOf(b).recordFirst(now);
  }

  /** The wait before the next attempt in ms, or -1 when the answer goes back to the app; logged and counted. */
  delayFor(ex: Exchange, outcome: TryAgain, deadline: number): number {
    const { config, telemetry, log } = this;
    const failure = outcome.failure;
    const reason = retryReason(failure, ex);
    if (reason === null || ex.attempts >= config.retry.maxAttempts) return -1;
    const now = performance.now();
    const hinted = retryAfterMs(outcome.retryAfter);
    const delay = hinted ?? backoffMs(ex.attempts - 1, config.retry.baseDelayMs, config.retry.maxDelayMs);
    if (now + delay >= deadline) return -1;
    if (!this.tryBudget(ex, now)) {
      telemetry.retryBudgetExhausted(ex);
      log.warn(
        { reqId: ex.requestId, reason, attempt: ex.attempts },
        'retry budget exhausted: passing the failure back',
      );
      return -1;
    }
    telemetry.retried(ex, reason);
    // A 429 is CDF asking for patience; anything else is CDF or the network failing: an operator's business.
    (reason === 'throttled' ? log.info : log.warn).call(
      log,
      {
        reqId: ex.requestId,
        reason,
        attempt: ex.attempts,
        upstreamStatus: failure.kind === 'status' ? failure.status : undefined,
        error: failure.kind === 'network' ? failure.code : undefined,
        delayMs: delay,
        retryAfter: hinted !== null,
      },
      'retrying upstream call',
    );
    return delay;
  }

  private tryBudget(ex: Exchange, now: number): boolean {
    if (ex.buckets.length === 0) return this.unbucketed.tryRetry(now);
    for (const b of ex.buckets) if (!this.budgetOf(b).tryRetry(now)) return false;
    return true;
  }

  private budgetOf(bucket: Bucket): RetryBudget {
    const name = bucket.limit.name;
    let budget = this.budgets.get(name);
    if (!budget) {
      // Limits are the table's, the per-family ones and at most 512 learned: a bound that stays small, but a
      // reload's renamed limits must not pile up.
      if (this.budgets.size >= MAX_BUDGETS) this.budgets.clear();
      budget = new RetryBudget(this.config.retry.budgetRatio, this.config.retry.budgetWindowMs);
      this.budgets.set(name, budget);
    }
    return budget;
  }
}
