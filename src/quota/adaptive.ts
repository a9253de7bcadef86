import type { AdaptiveConfig } from '../config/index.js';
import type { Bucket, Provenance } from './bucket.js';
import { AimdConcurrency, CubicRate } from './estimator.js';
import type { ThrottleKind } from './hint.js';

export interface LimitChange {
  bucket: Bucket;
  direction: 'decrease' | 'increase';
  kind: ThrottleKind | 'both';
  rate: number;
  concurrency: number;
}

/** Whether calls waited lately for a bucket's tokens, or for its slots (the scheduler knows). */
export interface Demand {
  rate: boolean;
  slots: boolean;
}

interface Learning {
  readonly rate: CubicRate;
  readonly concurrency: AimdConcurrency;
}

/** A stated rate is held this far under the figure (CDF enforces exactly what it states). */
const UNDER_STATED = 0.98;

/**
 * Each bucket's estimators, made the first time a bucket has something to learn (calls wait for it under
 * its ceiling, or CDF refuses its calls), and what they say applied through the tree. Figures change on
 * answers only: no timers.
 */
export class AdaptiveLimits {
  private readonly state = new WeakMap<Bucket, Learning>();

  constructor(
    /** The live section: a reload's new settings apply to the next step. */
    private readonly config: AdaptiveConfig,
    private readonly demandOf: (bucket: Bucket, now: number) => Demand,
    private readonly apply: (change: LimitChange, rateSource: Provenance, concurrencySource: Provenance) => void,
  ) {}

  /** A call through `bucket`, sent at `sentAt`, got an answer that was not a 429. */
  passed(bucket: Bucket, now: number, sentAt: number): void {
    let s = this.state.get(bucket);
    const d = this.demandOf(bucket, now);
    if (s === undefined) {
      // Nothing to learn until calls wait for it: then its answers count, for a climb or for the next 429.
      if (!d.rate && !d.slots) return;
      s = this.learningOf(bucket);
    }
    const rate = s.rate.passed(bucket.rate, now, d.rate, sentAt);
    const concurrency = s.concurrency.passed(bucket.concurrency, now, d.slots, sentAt);
    if (rate === bucket.rate && concurrency === bucket.concurrency) return;
    this.apply(
      { bucket, direction: 'increase', kind: 'both', rate, concurrency },
      rate === bucket.rate ? bucket.rateSource : 'learned',
      concurrency === bucket.concurrency ? bucket.concurrencySource : 'learned',
    );
  }

  /**
   * A 429 charged to `bucket`: its tokens follow CDF's down, and its estimator of that kind learns from it.
   * `stated`: the figure CDF's message named; `sentAt`: when the throttled call was admitted; `share`: the
   * share of 429s among the call's operation's answers lately (for a bucket that has seen too few itself).
   */
  charge(bucket: Bucket, kind: ThrottleKind, stated: number | null, now: number, sentAt: number, share = 0): void {
    // One token for the throttled call, which CDF may have charged, and one of margin.
    bucket.indebt(2, now);
    const s = this.learningOf(bucket);
    const learned = bucket.limit.learned;
    // A learned bucket's figures are younger than the call: its 429 says nothing about them (a figure it
    // states still bounds them).
    const stale = learned !== undefined && sentAt <= learned.at;
    if (stale && stated === null) {
      s.rate.noted(now);
      return;
    }
    if (kind === 'rate') {
      const rate = s.rate.throttled(bucket.rate, now, sentAt, stated, share, bucket.ownShare);
      if (rate !== bucket.rate)
        this.apply(
          { bucket, direction: 'decrease', kind, rate, concurrency: bucket.concurrency },
          stated !== null ? 'stated' : 'learned',
          bucket.concurrencySource,
        );
      return;
    }
    s.rate.noted(now);
    // Other replicas' calls were out too: about as many for each of ours as their share of the takes says.
    const inFlight = Math.round(bucket.inFlight / bucket.ownShare);
    const concurrency = s.concurrency.throttled(
      bucket.concurrency,
      now,
      stale ? Number.NEGATIVE_INFINITY : sentAt,
      stated,
      inFlight,
    );
    if (concurrency !== bucket.concurrency)
      this.apply(
        { bucket, direction: 'decrease', kind, rate: bucket.rate, concurrency },
        bucket.rateSource,
        stated !== null ? 'stated' : 'learned',
      );
  }

  /** A 429 of the bucket's calls that its figures do not explain (or not yet): its tokens follow CDF's. */
  follow(bucket: Bucket, now: number): void {
    bucket.indebt(2, now);
    this.state.get(bucket)?.rate.noted(now);
  }

  /**
   * Starts learning a bucket now (one just learned: its answers count from the start); `aim`: where a rate
   * estimated during a storm climbs to.
   */
  watch(bucket: Bucket, aim?: number): void {
    this.learningOf(bucket, aim);
  }

  /** Starts over from the bucket's figures now (a reload changed its limit). */
  forget(bucket: Bucket): void {
    this.state.delete(bucket);
  }

  private learningOf(bucket: Bucket, aim?: number): Learning {
    let s = this.state.get(bucket);
    if (s === undefined) {
      const limit = bucket.limit;
      const learned = limit.learned;
      const start = learned?.rate ?? limit.rate;
      const startConcurrency = learned?.concurrency ?? limit.concurrency;
      const rateCeiling =
        learned?.statedRate !== undefined ? Math.min(limit.maxRate, learned.statedRate * UNDER_STATED) : limit.maxRate;
      const concurrencyCeiling = Math.min(limit.maxConcurrency, learned?.statedConcurrency ?? limit.maxConcurrency);
      s = {
        rate: new CubicRate(
          this.config,
          bucket.rate,
          rateCeiling,
          Math.min(bucket.rate, start * this.config.floor),
          aim,
        ),
        concurrency: new AimdConcurrency(
          this.config,
          bucket.concurrency,
          concurrencyCeiling,
          Math.min(bucket.concurrency, Math.max(1, Math.ceil(startConcurrency * this.config.floor))),
        ),
      };
      this.state.set(bucket, s);
    }
    return s;
  }
}
