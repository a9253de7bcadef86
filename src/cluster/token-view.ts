import { performance } from 'node:perf_hooks';
import type { Bucket } from '../quota/index.js';

/**
 * The local bucket as a view of the shared one: its token count is copied from each answer (for metrics
 * and the dashboard), and a count lowered by someone else in between (the adaptive limits do that on a
 * 429: CDF's bucket is empty, and may have charged the throttled call) becomes a cap sent once with the
 * next command, so the shared bucket follows and every replica's next call does not meet the same wall.
 */
export class TokenView {
  /** The token count this store last put in each bucket (to notice when someone else lowers it). */
  private readonly shown = new WeakMap<Bucket, number>();
  /** Caps on buckets' tokens not sent to Redis yet. */
  private readonly caps = new WeakMap<Bucket, number>();

  /** Copies the shared (or local share's) token count into the bucket. */
  show(bucket: Bucket, tokens: number): void {
    this.noteLowered(bucket);
    bucket.mirror(tokens, performance.now());
    this.shown.set(bucket, tokens);
  }

  /** The cap to send with the next command on this bucket, once. */
  takeCap(bucket: Bucket): number | undefined {
    this.noteLowered(bucket);
    const cap = this.caps.get(bucket);
    if (cap !== undefined) this.caps.delete(bucket);
    return cap;
  }

  private noteLowered(bucket: Bucket): void {
    const shown = this.shown.get(bucket);
    if (shown === undefined || !(bucket.tokens < shown)) return;
    const pending = this.caps.get(bucket);
    this.caps.set(bucket, pending === undefined ? bucket.tokens : Math.min(pending, bucket.tokens));
    this.shown.set(bucket, bucket.tokens);
  }
}
