export { AdaptiveLimits, type Demand, type LimitChange } from './adaptive.js';
export { AppDirectory } from './apps.js';
export type { Attribution, Candidate, Level, ThrottleFacts } from './attribution.js';
export { attribute } from './attribution.js';
export { Bucket, type Provenance, type QuotaLimit } from './bucket.js';
export { type Clock, type ClockTimer, systemClock } from './clock.js';
export {
  AimdConcurrency,
  type ConcurrencyEstimator,
  CubicRate,
  type EstimatorSettings,
  type RateEstimator,
} from './estimator.js';
export { readHint, type ThrottleHint, type ThrottleKind } from './hint.js';
export type { Lease } from './lease.js';
export { coversClass, LimitTable, quotaLimit } from './limits.js';
export type { BucketPath } from './path.js';
export {
  type AppRef,
  MAX_BUCKETS,
  QueueRejected,
  Scheduler,
  type SchedulerObserver,
} from './scheduler.js';
export { ShadowLedger, type ShadowObserver, type ShadowOutcome } from './shadow.js';
export { type Blocked, MemoryStore, type QuotaStore } from './store.js';
export { depthOf, type LearnedView, learnedName, QuotaTree, type TreeObserver } from './tree.js';
