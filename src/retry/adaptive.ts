import type { AdaptiveConfig } from '../config/index.js';
import type { Bucket } from '../quota/index.js';

export type ThrottleKind = 'rate' | 'concurrency';

export interface LimitChange {
  bucket: Bucket;
  direction: 'decrease' | 'increase';
  kind: ThrottleKind | 'both';
  rate: number;
  concurrency: number;
}

interface AimdState {
  changedAt: number;
  /** The rate at which CDF last pushed back: recovery slows down near it. */
  rateCeiling: number;
  concurrencyCeiling: number;
}

/** CDF names the cap it enforced: "... maximum number='50' of concurrent requests ...". */
export function throttleKind(message: string | null): ThrottleKind {
  return message !== null && /concurren/i.test(message) ? 'concurrency' : 'rate';
}

/**
 * Learns the real limit from CDF's 429s (AIMD): a 429 the bucket admitted cuts the effective rate or
 * concurrency multiplicatively, at most once per interval so one overshoot's burst of 429s counts once;
 * successes raise it additively back towards the configured value, in smaller steps near the rate
 * where CDF last pushed back. Evaluated on answers, so it needs no timers.
 */
export class AdaptiveLimits {
  private readonly state = new WeakMap<Bucket, AimdState>();

  constructor(
    private readonly config: AdaptiveConfig,
    private readonly apply: (change: LimitChange) => void,
  ) {}

  onThrottled(buckets: readonly Bucket[], message: string | null, now: number): void {
    if (!this.config.enabled || buckets.length === 0) return;
    const kind = throttleKind(message);
    const bucket = this.tightest(buckets, kind, message);
    const s = this.stateOf(bucket, now);
    if (now - s.changedAt < this.config.intervalMs) return;
    s.changedAt = now;
    const limit = bucket.limit;
    let { rate, concurrency } = bucket;
    if (kind === 'rate') {
      s.rateCeiling = rate;
      rate = Math.max(limit.rate * this.config.floor, rate * this.config.decrease);
    } else {
      s.concurrencyCeiling = concurrency;
      concurrency = Math.max(Math.ceil(limit.concurrency * this.config.floor), Math.floor(concurrency * this.config.decrease));
    }
    if (rate === bucket.rate && concurrency === bucket.concurrency) return;
    this.apply({ bucket, direction: 'decrease', kind, rate, concurrency });
  }

  onSuccess(buckets: readonly Bucket[], now: number): void {
    if (!this.config.enabled) return;
    for (let i = 0; i < buckets.length; i++) {
      const bucket = buckets[i];
      const limit = bucket.limit;
      if (bucket.rate >= limit.rate && bucket.concurrency >= limit.concurrency) continue;
      const s = this.stateOf(bucket, now);
      if (now - s.changedAt < this.config.intervalMs) continue;
      s.changedAt = now;
      let step = limit.rate * this.config.increase;
      // Probe gently where CDF pushed back last time; climb fast far below it.
      if (bucket.rate + step > s.rateCeiling * 0.95) step /= 4;
      const rate = Math.min(limit.rate, bucket.rate + step);
      const concurrency =
        bucket.concurrency < limit.concurrency && (bucket.concurrency < s.concurrencyCeiling || bucket.inFlight >= bucket.concurrency)
          ? bucket.concurrency + 1
          : bucket.concurrency;
      if (rate === bucket.rate && concurrency === bucket.concurrency) continue;
      this.apply({ bucket, direction: 'increase', kind: 'both', rate, concurrency });
    }
  }

  private stateOf(bucket: Bucket, now: number): AimdState {
    let s = this.state.get(bucket);
    if (!s) {
      s = { changedAt: now - this.config.intervalMs, rateCeiling: Number.POSITIVE_INFINITY, concurrencyCeiling: Number.POSITIVE_INFINITY };
      this.state.set(bucket, s);
    }
    return s;
  }

  /** The bucket CDF most likely meant: per identity when it says so, else the tightest for the kind of limit. */
  private tightest(buckets: readonly Bucket[], kind: ThrottleKind, message: string | null): Bucket {
    const identity = message !== null && /identity/i.test(message);
    let best = buckets[0];
    for (const b of buckets) {
      if (identity !== (b.limit.per === 'identity') && identity === (best.limit.per === 'identity')) continue;
      if (identity === (b.limit.per === 'identity') && identity !== (best.limit.per === 'identity')) {
        best = b;
        continue;
      }
      if (kind === 'rate' ? b.rate < best.rate : b.concurrency < best.concurrency) best = b;
    }
    return best;
  }
}
