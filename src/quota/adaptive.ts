import type { AdaptiveConfig, LearnedFigures } from '../config/index.js';
import { SlidingCounter } from '../retry/window.js';
import type { Bucket } from './bucket.js';

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
  /** Where CDF pushed back last: held just under until `rateHoldUntil`, then probed past in small steps. */
  rateCeiling: number;
  rateHoldUntil: number;
  concurrencyCeiling: number;
  concurrencyHoldUntil: number;
  /** Answers over the last two intervals: [passed, throttled]. */
  recent: SlidingCounter;
  /**
   * A learned rate estimated from the calls that got through (CDF stated none), not yet cut: it may be far
   * under the hidden limit, so it climbs in steps of a share of itself (doubling in about 2.5 s) until the
   * first 429 says where the limit is; then in the usual small steps.
   */
  slowStart: boolean;
  /** When the state was made (the bucket learned, or learned again). */
  since: number;
  /** The learned figures the state was made from: a bucket learned again starts again from them. */
  learnedFrom: LearnedFigures | undefined;
}

const PASSED = 0;
const THROTTLED = 1;
/** Below this share of 429s the bucket runs at the edge (clock and network jitter): no cut, draining is enough. */
const EDGE_SHARE = 0.05;
/** A few 429s more: cut gently. */
const GENTLE = 0.9;
/** Past this share of 429s the configured limit is plainly too high: cut in proportion, at most by `decrease`. */
const HARD_SHARE = 0.25;
/** A concurrency 429 without a stated limit says little about how far off it is: cut by a quarter. */
const CONCURRENCY_CUT = 0.75;
/** Climb in small steps above this share of the ceiling ... */
const NEAR = 0.95;
/** ... and hold this share of it while the hold lasts. */
const HOLD = 0.98;
/** An estimated learned rate climbs by this many times `increase` of itself per interval until its first cut. */
const SLOW_START = 4;
/** CDF states the limit it enforced: "Project exceeded maximum number='50' of concurrent requests." */
const STATED_LIMIT = /maximum number\s*=\s*'?(\d+(?:\.\d+)?)'?/i;

/**
 * Where an estimated rate stops probing after a 429: what got through lately, not where the 429s began, but
 * never under `decrease` of the rate (what gets through while CDF's bucket is still in debt from a storm is
 * far under its rate: a 5/s endpoint was held at 1.5/s).
 */
function heldAt(rate: number, gotThrough: number | undefined, decrease: number): number {
  if (gotThrough === undefined || !(gotThrough > 0)) return rate;
  return Math.min(rate, Math.max(gotThrough, rate * decrease));
}

export function throttleKind(message: string | null): ThrottleKind {
  return message !== null && /concurren/i.test(message) ? 'concurrency' : 'rate';
}

/** The limit CDF's 429 message names, or null. */
export function statedLimit(message: string | null): number | null {
  const m = message === null ? null : STATED_LIMIT.exec(message);
  const n = m ? Number(m[1]) : Number.NaN;
  return Number.isFinite(n) && n > 0 ? n : null;
}

/**
 * Learns the real limit from CDF's 429s (AIMD). A 429 on a call the bucket admitted means the real
 * limit is lower. The bucket's tokens follow CDF's down at once (its bucket is empty, and the throttled
 * call may have been charged). When CDF's message states the limit it enforced, the bucket drops just
 * under it and holds there; otherwise the rate is cut in proportion to the recent share of 429s (at
 * most by `decrease`), gently when some were 429s, and not at all for an odd one, which is jitter at
 * the edge; a concurrency 429 cuts the concurrency by a quarter. A 429 to a call sent before the last
 * cut says nothing new. While calls succeed, both climb back additively, hold just under the last
 * ceiling for `holdMs`, then probe past it in small steps (the limit may have been raised, or other
 * consumers of the project gone). Evaluated on answers, so it needs no timers.
 */
export class AdaptiveLimits {
  private readonly state = new WeakMap<Bucket, AimdState>();

  constructor(
    private readonly config: AdaptiveConfig,
    private readonly apply: (change: LimitChange) => void,
  ) {}

  /**
   * A 429 charged to `bucket` (the quota tree chose it as the narrowest budget that explains it).
   * `stated`: the limit CDF's message named, if any; `sentAt`: when the throttled attempt was admitted.
   */
  charge(
    bucket: Bucket,
    kind: ThrottleKind,
    stated: number | null,
    now: number,
    sentAt = now,
    /** The rate the bucket's calls got through at lately (CDF's verdict on its estimate), when known. */
    gotThrough?: number,
  ): void {
    if (!this.config.enabled) return;
    const s = this.stateOf(bucket, now);
    s.recent.add(THROTTLED, now);
    // One token for the throttled call, which CDF may have charged, and one of margin: the two buckets
    // started apart by the first call's transit, and jitter that large must not overdraw CDF's again.
    bucket.tokens = Math.max(-bucket.burst, Math.min(bucket.tokens, 0) - 2);
    const limit = bucket.limit;
    let { rate, concurrency } = bucket;
    // A learned bucket's figures are younger than the call: its 429 says nothing about them (a storm's late
    // 429s halved an estimate learned from that very storm).
    if (limit.learned !== undefined && stated === null && sentAt <= s.since) return;
    let ceiling: number | undefined;
    if (kind === 'rate' && s.slowStart && sentAt > s.since) {
      // The first 429 since the estimate: the limit is about here, at most what got through. Not probed past
      // it again until the hold is over (probing to where the 429s began kept 1-2 429s a second coming).
      s.slowStart = false;
      ceiling = heldAt(rate, gotThrough, this.config.decrease);
      s.rateCeiling = ceiling;
    }
    if (kind === 'rate') {
      // CDF named its limit: whatever else happens, do not probe past it for a while.
      if (stated !== null) this.noteRateCeiling(s, stated, now);
      if (stated !== null && rate > stated * HOLD) {
        rate = stated * HOLD;
        s.rateCeiling = stated;
      } else {
        if (ceiling === undefined && (sentAt <= s.rateCutAt || now - s.rateCutAt < this.config.intervalMs)) return;
        const share = this.throttledShare(s, now);
        if (ceiling === undefined && share <= EDGE_SHARE) return;
        // Where the 429s began, or lower: what got through (an estimate probed to where they began kept one
        // coming every two or three seconds).
        s.rateCeiling = stated ?? ceiling ?? heldAt(rate, gotThrough, this.config.decrease);
        rate =
          ceiling !== undefined
            ? Math.min(rate * GENTLE, ceiling * HOLD)
            : rate * (share > HARD_SHARE ? Math.max(this.config.decrease, 1 - share) : GENTLE);
      }
      rate = Math.max(this.rateScale(bucket, s) * this.config.floor, rate);
      s.slowStart = false;
      s.rateCutAt = now;
      s.rateHoldUntil = now + this.config.holdMs;
    } else {
      if (stated !== null) {
        s.concurrencyCeiling = Math.min(s.concurrencyCeiling, Math.floor(stated) + 1);
        s.concurrencyHoldUntil = Math.max(s.concurrencyHoldUntil, now + this.config.holdMs);
      }
      if (stated !== null && concurrency > stated) {
        concurrency = Math.max(1, Math.floor(stated));
        s.concurrencyCeiling = concurrency + 1;
      } else {
        if (sentAt <= s.concurrencyCutAt || now - s.concurrencyCutAt < this.config.intervalMs) return;
        s.concurrencyCeiling = concurrency;
        concurrency = Math.floor(concurrency * Math.max(this.config.decrease, CONCURRENCY_CUT));
      }
      concurrency = Math.max(Math.ceil(limit.concurrency * this.config.floor), concurrency);
      s.concurrencyCutAt = now;
      s.concurrencyHoldUntil = now + this.config.holdMs;
    }
    s.raisedAt = now;
    if (rate === bucket.rate && concurrency === bucket.concurrency) return;
    this.apply({ bucket, direction: 'decrease', kind, rate, concurrency });
  }

  /**
   * A 429 charged to a bucket just made for it (learned): its tokens follow CDF's down, and the 429 counts
   * towards its share, but its figures are what was just learned: no cut on top.
   */
  follow(bucket: Bucket, now: number): void {
    if (!this.config.enabled) return;
    this.stateOf(bucket, now).recent.add(THROTTLED, now);
    bucket.tokens = Math.max(-bucket.burst, Math.min(bucket.tokens, 0) - 2);
  }

  onSuccess(buckets: readonly Bucket[], now: number): void {
    if (!this.config.enabled) return;
    for (let i = 0; i < buckets.length; i++) this.onPassed(buckets[i], now);
  }

  private onPassed(bucket: Bucket, now: number): void {
    {
      const s = this.stateOf(bucket, now);
      const limit = bucket.limit;
      s.recent.add(PASSED, now);
      if (bucket.rate >= limit.rate && bucket.concurrency >= limit.concurrency) return;
      if (now - s.raisedAt < this.config.intervalMs) return;
      s.raisedAt = now;
      let step = this.rateScale(bucket, s) * this.config.increase;
      if (s.slowStart) step = Math.max(step, bucket.rate * this.config.increase * SLOW_START);
      else if (bucket.rate + step > s.rateCeiling * NEAR) step /= 4;
      let top = limit.rate;
      if (now < s.rateHoldUntil) top = Math.min(top, Math.max(bucket.rate, s.rateCeiling * HOLD));
      // CDF enforces the figure it stated for a learned budget: probing past it only buys 429s.
      const statedRate = limit.learned?.statedRate;
      if (statedRate !== undefined) top = Math.min(top, Math.max(bucket.rate, statedRate * HOLD));
      const rate = Math.min(top, bucket.rate + step);
      const concurrencyTop = Math.min(limit.concurrency, limit.learned?.statedConcurrency ?? limit.concurrency);
      const concurrency =
        bucket.concurrency < concurrencyTop &&
        (now >= s.concurrencyHoldUntil || bucket.concurrency + 1 < s.concurrencyCeiling)
          ? bucket.concurrency + 1
          : bucket.concurrency;
      if (rate === bucket.rate && concurrency === bucket.concurrency) return;
      this.apply({ bucket, direction: 'increase', kind: 'both', rate, concurrency });
    }
  }

  /**
   * What the rate's steps and floor are shares of: the configured rate; for a learned bucket, what CDF
   * stated (its ceiling is its parents' figure, often far above: a 10/s endpoint inside a 170/s class would
   * otherwise climb 3.4/s per second past its limit, and never be cut below 8.5/s).
   */
  private rateScale(bucket: Bucket, s: AimdState): number {
    const limit = bucket.limit;
    return limit.learned && Number.isFinite(s.rateCeiling) ? Math.min(limit.rate, s.rateCeiling) : limit.rate;
  }

  private noteRateCeiling(s: AimdState, stated: number, now: number): void {
    s.rateCeiling = Math.min(s.rateCeiling, stated);
    s.rateHoldUntil = Math.max(s.rateHoldUntil, now + this.config.holdMs);
  }

  private throttledShare(s: AimdState, now: number): number {
    const throttled = s.recent.sum(THROTTLED, now);
    return throttled / Math.max(1, throttled + s.recent.sum(PASSED, now));
  }

  private stateOf(bucket: Bucket, now: number): AimdState {
    let s = this.state.get(bucket);
    // Learned again (lower, or from another kind of 429): its ceilings and holds start again from the new
    // figures; the recent answers still count.
    if (s && bucket.limit.learned !== undefined && s.learnedFrom !== bucket.limit.learned) {
      const old = s;
      this.state.delete(bucket);
      s = this.stateOf(bucket, now);
      s.recent = old.recent;
      s.rateCutAt = old.rateCutAt;
      s.concurrencyCutAt = old.concurrencyCutAt;
      s.raisedAt = old.raisedAt;
      return s;
    }
    if (!s) {
      const long = now - 10 * this.config.intervalMs;
      s = {
        rateCutAt: long,
        concurrencyCutAt: long,
        raisedAt: long,
        rateCeiling: Number.POSITIVE_INFINITY,
        rateHoldUntil: long,
        concurrencyCeiling: Number.POSITIVE_INFINITY,
        concurrencyHoldUntil: long,
        recent: new SlidingCounter(this.config.intervalMs * 2, 2),
        slowStart: false,
        since: now,
        learnedFrom: bucket.limit.learned,
      };
      // A learned bucket starts at what was learned: held just under it when CDF stated it, probed past it
      // in small steps when it was estimated from the calls that got through.
      const learned = bucket.limit.learned;
      if (learned) {
        s.rateCeiling = learned.statedRate ?? learned.rate;
        s.concurrencyCeiling = learned.concurrency + 1;
        if (learned.statedRate !== undefined) s.rateHoldUntil = now + this.config.holdMs;
        if (learned.statedConcurrency !== undefined) s.concurrencyHoldUntil = now + this.config.holdMs;
        // Its rate estimated from what got through (concurrency alone may have been stated).
        s.slowStart = learned.statedRate === undefined && learned.rate < bucket.limit.rate;
      }
      this.state.set(bucket, s);
    }
    return s;
  }
}
