export {
  AdaptiveLimits,
  type LimitChange,
  statedLimit,
  type ThrottleKind,
  throttleKind,
} from './adaptive.js';
export { AppDirectory } from './apps.js';
export { Bucket } from './bucket.js';
export type { Lease } from './lease.js';
export { coversClass, LimitTable } from './limits.js';
export type { BucketPath } from './path.js';
export {
  type AppRef,
  MAX_SCOPES_PER_LIMIT,
  QueueRejected,
  Scheduler,
  type SchedulerObserver,
} from './scheduler.js';
export { ShadowLedger, type ShadowObserver, type ShadowOutcome } from './shadow.js';
export { type Blocked, MemoryStore, type QuotaStore } from './store.js';
export { depthOf, type LearnedView, learnedName, QuotaTree, type TreeObserver } from './tree.js';
