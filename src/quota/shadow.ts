import type { QueueConfig } from '../config/index.js';
import type { Bucket } from './bucket.js';

export type ShadowOutcome = 'admitted' | 'queued' | 'refused';

/** Told of every shadow decision (metrics). */
export type ShadowObserver = (bucket: Bucket, outcome: ShadowOutcome, waitMs: number) => void;

/**
 * Buckets in `mode: shadow`: what they would have done to each attempt, counted on a model of their own,
 * while the attempt goes on as if they were not there. No queue, no timer: a bucket's tokens may go below
 * zero, which is the queue it would have had (each waiter holds a token it is owed), so the wait a call
 * would have had is `-tokens / rate`. Past `queue.maxWaitMs`, or with `queue.maxQueued` owed already, the
 * call would have been refused (and takes no token). Slots count the calls really in flight through the
 * bucket, from admission until CDF's answer arrives: one more than `concurrency` would have waited.
 */
export class ShadowLedger {
  constructor(
    private readonly queue: QueueConfig,
    private readonly observe: ShadowObserver,
    /** The scheduler that keeps the buckets: told they are in use, so it does not forget them. */
    private readonly scheduler: { used(bucket: Bucket, now: number): void },
  ) {}

  /** One attempt at `now` through `buckets`; `release` when its answer (or failure) arrived. */
  take(buckets: readonly Bucket[], now: number): void {
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i];
      this.scheduler.used(b, now);
      b.refill(now);
      b.hold();
      const overSlots = b.inFlight > b.concurrency;
      if (b.tokens >= 1) {
        b.owe();
        this.observe(b, overSlots ? 'queued' : 'admitted', 0);
        continue;
      }
      const waitMs = ((1 - b.tokens) * 1000) / b.rate;
      if (waitMs > this.queue.maxWaitMs || -b.tokens >= this.queue.maxQueued) {
        this.observe(b, 'refused', 0);
        continue;
      }
      b.owe();
      this.observe(b, 'queued', waitMs);
    }
  }

  release(buckets: readonly Bucket[]): void {
    for (let i = 0; i < buckets.length; i++) buckets[i].unhold();
  }
}
