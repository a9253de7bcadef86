import type { Bucket } from '../quota/index.js';

/**
 * The effective limits (adaptive) shared through Redis, as this replica last saw them: every replica
 * follows the shared ones, and a change it publishes starts from what it saw (so it cannot undo another
 * replica's cut it had not seen yet). Changes made while Redis was away wait here to be published.
 */
export class SharedLimits {
  private readonly seen = new WeakMap<Bucket, { rate: number; concurrency: number }>();
  private readonly unpublished = new Set<Bucket>();

  /** Another replica's adaptive limits (or this one's, published): the bucket follows them. */
  follow(bucket: Bucket, rate: number, concurrency: number): void {
    bucket.follow(rate, concurrency);
    const seen = this.seen.get(bucket);
    if (seen) {
      seen.rate = rate;
      seen.concurrency = concurrency;
    } else this.seen.set(bucket, { rate, concurrency });
  }

  /** What the bucket's shared limits were last seen as (the configured ones before any answer). */
  seenOf(bucket: Bucket): { rate: number; concurrency: number } {
    return this.seen.get(bucket) ?? { rate: bucket.limit.rate, concurrency: bucket.limit.concurrency };
  }

  /** Publishing failed or Redis is away: publish when it is back. */
  defer(bucket: Bucket): void {
    this.unpublished.add(bucket);
  }

  /** The deferred buckets, forgotten here (the caller publishes them). */
  drainDeferred(): Bucket[] {
    const pending = [...this.unpublished];
    this.unpublished.clear();
    return pending;
  }
}
