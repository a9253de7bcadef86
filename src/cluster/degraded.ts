import { type Blocked, Bucket, MemoryStore } from '../quota/index.js';

/** What a take answered by the local share holds: the shadow buckets to give the slots back to. */
export type LocalHold = readonly Bucket[];

/**
 * The buckets a replica uses while Redis is away: an in-memory shadow of each shared bucket with
 * 1/expectedReplicas of its effective limits, so that the replicas together stay within the quota.
 * Shadows follow the shared bucket's effective limits (adaptive) at every take.
 */
export class LocalShare {
  private readonly memory = new MemoryStore();
  private readonly shadows = new WeakMap<Bucket, Bucket>();
  private readonly arrays = new WeakMap<readonly Bucket[], Bucket[]>();

  constructor(readonly replicas: number) {}

  /** Null and the shadows holding the slots, or why not (naming the shared bucket, not its shadow). */
  take(buckets: readonly Bucket[], now: number): { blocked: Blocked | null; hold: LocalHold } {
    let shadows = this.arrays.get(buckets);
    if (!shadows) {
      shadows = buckets.map((b) => this.shadowOf(b, now));
      this.arrays.set(buckets, shadows);
    }
    for (let i = 0; i < buckets.length; i++) this.follow(buckets[i], shadows[i]);
    const blocked = this.memory.take(shadows, now);
    if (blocked === null) return { blocked: null, hold: shadows };
    return { blocked: { bucket: buckets[shadows.indexOf(blocked.bucket)], waitMs: blocked.waitMs }, hold: shadows };
  }

  /** Lowers a bucket's share of tokens to at most `tokens` (CDF said its bucket is empty). */
  cap(bucket: Bucket, tokens: number): void {
    const shadow = this.shadows.get(bucket);
    shadow?.cap(tokens);
  }

  release(hold: LocalHold): void {
    this.memory.release(hold);
  }

  private shadowOf(bucket: Bucket, now: number): Bucket {
    let shadow = this.shadows.get(bucket);
    if (!shadow) {
      const l = bucket.limit;
      const n = this.replicas;
      shadow = new Bucket(
        { ...l, rate: l.rate / n, burst: Math.max(1, l.burst / n), concurrency: this.share(l.concurrency) },
        bucket.scope,
        now,
      );
      this.shadows.set(bucket, shadow);
    }
    return shadow;
  }

  private follow(bucket: Bucket, shadow: Bucket): void {
    const rate = bucket.rate / this.replicas;
    const concurrency = this.share(bucket.concurrency);
    shadow.follow(rate, concurrency);
  }

  /** Whole slots only, rounded down so the replicas together never exceed the limit; at least one. */
  private share(concurrency: number): number {
    return Math.max(1, Math.floor(concurrency / this.replicas));
  }
}
