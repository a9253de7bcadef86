import type { AdaptiveConfig } from '../config/index.js';
import type { Bucket } from '../quota/index.js';
import { SlidingCounter } from './window.js';

export type ThrottleKind = 'rate' | 'concurrency';

export interface LimitChange {
  bucket: Bucket;
  direction: 'decrease' | 'increase';
  kind: ThrottleKind | 'both';
  rate: number;
  concurrency: number;
}

interface AimdState {
  rateCutAt: number;
  concurrencyCutAt: number;
  raisedAt: number;
  /** The rate at which CDF last pushed back: recovery slows down near it. */
  rateCeiling: number;
  concurrencyCeiling: number;
  /** Answers over the last two intervals: [passed, throttled]. */
  recent: SlidingCounter;
}

const PASSED = 0;
const THROTTLED = 1;
/** Below this share of 429s the bucket runs at the edge (clock and network jitter): no cut, draining is enough. */
const EDGE_SHARE = 0.05;
/** A few 429s more: cut gently. */
const GENTLE = 0.9;
/** Past this share of 429s the configured limit is plainly too high: cut by `decrease`. */
const HARD_SHARE = 0.25;
/** A concurrency 429 says less about how far off the limit is: cut by at most a quarter. */
const CONCURRENCY_CUT = 0.75;
/** Climb in small steps above this share of the ceiling ... */
const NEAR = 0.95;
/** ... and stay just under it this long after a cut before probing past it. */
const HOLD_MS = 5000;
const HOLD = 0.98;

/** CDF names the cap it enforced: "... maximum number='50' of concurrent requests ...". */
export function throttleKind(message: string | null): ThrottleKind {
  return message !== null && /concurren/i.test(message) ? 'concurrency' : 'rate';
}

/**
 * Learns the real limit from CDF's 429s (AIMD). A 429 on a call the bucket admitted means the real
 * limit is lower. The bucket's tokens are drained at once (CDF's bucket is empty), and the rate is cut
 * by `decrease` when many recent answers were 429s, gently when some were, and not at all for an odd
 * one (a bucket at the very edge of CDF's sees those from clock and network jitter alone); a concurrency 429 cuts the
 * concurrency by `decrease`. At most one cut of each kind per interval. While calls succeed both
 * climb back additively, in small steps near the level where CDF pushed back last. Evaluated on
 * answers, so it needs no timers.
 */
export class AdaptiveLimits {
  private readonly state = new WeakMap<Bucket, AimdState>();

  constructor(
    private readonly config: AdaptiveConfig,
    private readonly apply: (change: LimitChange) => void,
  ) {}

  /** `sentAt`: when the throttled attempt was admitted; 429s to calls sent before the last cut say nothing new. */
  onThrottled(buckets: readonly Bucket[], message: string | null, now: number, sentAt = now): void {
    if (!this.config.enabled || buckets.length === 0) return;
    const kind = throttleKind(message);
    const bucket = this.tightest(buckets, kind, message);
    const s = this.stateOf(bucket, now);
    s.recent.add(THROTTLED, now);
    const limit = bucket.limit;
    let { rate, concurrency } = bucket;
    if (kind === 'rate') {
      // CDF's bucket is empty now: so is ours, or the next calls meet the same wall.
      if (bucket.tokens > 0) bucket.tokens = 0;
      if (sentAt <= s.rateCutAt || now - s.rateCutAt < this.config.intervalMs) return;
      const share = this.throttledShare(s, now);
      if (share <= EDGE_SHARE) return;
      s.rateCutAt = now;
      if (share > HARD_SHARE) {
        // Plainly too high: cut in proportion; CDF let about (1 - share) of the rate through, so the
        // real limit is near there.
        s.rateCeiling = rate * (1 - share) * 1.1;
        rate *= Math.max(this.config.decrease, 1 - share);
      } else {
        s.rateCeiling = rate;
        rate *= GENTLE;
      }
      rate = Math.max(limit.rate * this.config.floor, rate);
    } else {
      if (sentAt <= s.concurrencyCutAt || now - s.concurrencyCutAt < this.config.intervalMs) return;
      s.concurrencyCutAt = now;
      s.concurrencyCeiling = concurrency;
      concurrency = Math.max(
        Math.ceil(limit.concurrency * this.config.floor),
        Math.floor(concurrency * Math.max(this.config.decrease, CONCURRENCY_CUT)),
      );
    }
    s.raisedAt = now;
    if (rate === bucket.rate && concurrency === bucket.concurrency) return;
    this.apply({ bucket, direction: 'decrease', kind, rate, concurrency });
  }

  onSuccess(buckets: readonly Bucket[], now: number): void {
    if (!this.config.enabled) return;
    for (let i = 0; i < buckets.length; i++) {
      const bucket = buckets[i];
      const s = this.stateOf(bucket, now);
      s.recent.add(PASSED, now);
      const limit = bucket.limit;
      if (bucket.rate >= limit.rate && bucket.concurrency >= limit.concurrency) continue;
      if (now - s.raisedAt < this.config.intervalMs) continue;
      s.raisedAt = now;
      let step = limit.rate * this.config.increase;
      // Climb fast far below where CDF pushed back last time, hold just under it for a while, then probe gently.
      const holding = now - s.rateCutAt < HOLD_MS && Number.isFinite(s.rateCeiling);
      if (bucket.rate + step > s.rateCeiling * NEAR) step /= 4;
      let top = limit.rate;
      if (holding) top = Math.min(top, Math.max(bucket.rate, s.rateCeiling * HOLD));
      const rate = Math.min(top, bucket.rate + step);
      // A concurrency that met a 429 is not tried again until it has been quiet for a while.
      if (now - s.concurrencyCutAt > HOLD_MS * 2) s.concurrencyCeiling = Number.POSITIVE_INFINITY;
      const concurrency =
        bucket.concurrency < limit.concurrency && bucket.concurrency + 1 < s.concurrencyCeiling
          ? bucket.concurrency + 1
          : bucket.concurrency;
      if (rate === bucket.rate && concurrency === bucket.concurrency) continue;
      this.apply({ bucket, direction: 'increase', kind: 'both', rate, concurrency });
    }
  }

  private throttledShare(s: AimdState, now: number): number {
    const throttled = s.recent.sum(THROTTLED, now);
    return throttled / Math.max(1, throttled + s.recent.sum(PASSED, now));
  }

  private stateOf(bucket: Bucket, now: number): AimdState {
    let s = this.state.get(bucket);
    if (!s) {
      const long = now - 10 * this.config.intervalMs;
      s = {
        rateCutAt: long,
        concurrencyCutAt: long,
        raisedAt: long,
        rateCeiling: Number.POSITIVE_INFINITY,
        concurrencyCeiling: Number.POSITIVE_INFINITY,
        recent: new SlidingCounter(this.config.intervalMs * 2, 2),
      };
      this.state.set(bucket, s);
    }
    return s;
  }

  /** The bucket CDF most likely meant: per identity when it says so, else the tightest for the kind of limit. */
  private tightest(buckets: readonly Bucket[], kind: ThrottleKind, message: string | null): Bucket {
    const wantIdentity = message !== null && /identity/i.test(message);
    let best = buckets[0];
    for (const b of buckets) {
      const bFits = (b.limit.per === 'identity') === wantIdentity;
      const bestFits = (best.limit.per === 'identity') === wantIdentity;
      if (bFits !== bestFits) {
        if (bFits) best = b;
        continue;
      }
      if (kind === 'rate' ? b.rate < best.rate : b.concurrency < best.concurrency) best = b;
    }
    return best;
  }
}
