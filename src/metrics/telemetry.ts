import type { Exchange } from '../proxy/exchange.js';
import type { Bucket, LimitChange, QueueRejected, SchedulerObserver, ShadowOutcome } from '../quota/index.js';
import type { CircuitState } from '../retry/index.js';

/**
 * What the request path reports as it goes. The pipeline calls these; the Prometheus implementation
 * (metrics/) and the dashboard's history read them. Kept to plain calls on the hot path: no labels are
 * built unless an implementation needs them.
 */
export interface Telemetry extends SchedulerObserver {
  /** The record stage: the app's answer is sent (or the app went away). */
  requestDone(ex: Exchange, durationMs: number): void;
  /** One upstream attempt ended: its status, or 0 for a network error or timeout. */
  upstreamAttempt(ex: Exchange, status: number, durationMs: number): void;
  /** CDF answered 429; `retried` tells whether the gateway tried again or passed it on. */
  upstreamThrottled(ex: Exchange, retried: boolean): void;
  retried(ex: Exchange, reason: string): void;
  retryBudgetExhausted(ex: Exchange): void;
  limitChanged(change: LimitChange): void;
  circuitChanged(state: CircuitState): void;
  cacheOutcome(ex: Exchange): void;
  /** A bucket in `mode: shadow` would have admitted, queued (for `waitMs`) or refused an attempt. */
  shadowDecision(bucket: Bucket, outcome: ShadowOutcome, waitMs: number): void;
  /** A configuration reload was applied (`success`) or refused (`failure`). */
  configReload(result: 'success' | 'failure'): void;
}

export const noTelemetry: Telemetry = {
  requestDone() {},
  upstreamAttempt() {},
  upstreamThrottled() {},
  retried() {},
  retryBudgetExhausted() {},
  limitChanged() {},
  circuitChanged() {},
  cacheOutcome() {},
  configReload() {},
  shadowDecision() {},
  onAdmitted(_buckets: readonly Bucket[], _waitedMs: number) {},
  onRejected(_bucket: Bucket, _reason: QueueRejected['reason']) {},
};
