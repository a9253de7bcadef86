export { AppDirectory } from './apps.js';
export { Bucket } from './bucket.js';
export type { Lease } from './lease.js';
export { LimitTable } from './limits.js';
export { type AppRef, QueueRejected, Scheduler, type SchedulerObserver } from './scheduler.js';
export { ShadowLedger, type ShadowObserver, type ShadowOutcome } from './shadow.js';
export { type Blocked, MemoryStore, type QuotaStore } from './store.js';
