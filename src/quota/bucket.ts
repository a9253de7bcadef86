import type { LimitConfig } from '../config/index.js';
import { FairQueue } from './fair-queue.js';
import type { Waiter } from './waiter.js';

/**
 * Calls reach CDF later than the gateway admits them, by a transit time that varies: a slow call
 * followed by fast ones arrives bunched, and CDF's bucket, counted at arrival, sees less refill
 * between them than ours did. Keeping this much of the burst in reserve absorbs that much jitter.
 * Without it, a gateway set to exactly CDF's quota saw 4-9 429s in its first second (quota test).
 */
const JITTER_ALLOWANCE_MS = 50;

function capacity(burst: number, rate: number): number {
  return Math.max(1, burst - (rate * JITTER_ALLOWANCE_MS) / 1000);
}

/**
 * One token bucket with a concurrency cap, for one limit and one scope (a project, or a project and an
 * identity). `rate`, `burst` and `concurrency` are the effective values: adaptive limits lower them
 * below the configured ones when CDF pushes back.
 */
export class Bucket {
  /** The configured (or learned) limit; replaced by the tree on a reload that keeps this bucket's name. */
  limit: LimitConfig;
  rate: number;
  burst: number;
  concurrency: number;
  tokens: number;
  refilledAt: number;
  inFlight = 0;
  readonly queue = new FairQueue<Waiter>();
  timer: NodeJS.Timeout | null = null;
  timerAt = 0;
  draining = false;
  redrain = false;
  lastUsed: number;
  /** The scheduler's access count when this bucket was last moved to the young end of its LRU (see Scheduler). */
  touched = 0;

  constructor(
    limit: LimitConfig,
    /** The project, or project and identity: what this bucket is counted over. */
    readonly scope: string,
    now: number,
  ) {
    this.limit = limit;
    this.rate = limit.rate;
    this.concurrency = limit.concurrency;
    this.burst = capacity(limit.burst, limit.rate);
    // A learned bucket starts at the figures learned so far, below the ceiling it may probe up to.
    if (limit.learned) this.setEffective(limit.learned.rate, limit.learned.concurrency);
    this.tokens = this.burst;
    this.refilledAt = now;
    this.lastUsed = now;
  }

  /** Stable name for logs, metrics and shared stores. */
  get key(): string {
    return `${this.limit.name}:${this.scope}`;
  }

  refill(now: number): void {
    const elapsed = now - this.refilledAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.refilledAt = now;
    }
  }

  // --- The bucket's API for stores (src/cluster/): the only ways they change a bucket. ---------------------

  /** Lowers the tokens to at most `tokens` (CDF's bucket is emptier than ours: a 429, or another replica). */
  cap(tokens: number): void {
    if (this.tokens > tokens) this.tokens = tokens;
  }

  /** The shared bucket's token count, as a shared store answered it at `at` (the view for metrics). */
  mirror(tokens: number, at: number): void {
    this.tokens = tokens;
    this.refilledAt = at;
  }

  /** Effective limits another replica published (through the store): this replica follows them. */
  follow(rate: number, concurrency: number): void {
    if (rate !== this.rate || concurrency !== this.concurrency) this.setEffective(rate, concurrency);
  }

  /** A slot taken (by a store that answered for it elsewhere, e.g. Redis). */
  hold(): void {
    this.inFlight++;
  }

  /** A slot given back; never below zero. */
  unhold(): void {
    if (this.inFlight > 0) this.inFlight--;
  }

  /**
   * A reload changed this bucket's configured figures: what was learned below the old figures stays (as far
   * as the new ones allow), a bucket running at its old figures moves to the new ones. Tokens and slots stay.
   */
  reconfigure(limit: LimitConfig): void {
    const old = this.limit;
    this.limit = limit;
    if (limit.learned) {
      this.setEffective(limit.learned.rate, limit.learned.concurrency);
      return;
    }
    const rate = this.rate >= old.rate ? limit.rate : Math.min(this.rate, limit.rate);
    const concurrency =
      this.concurrency >= old.concurrency ? limit.concurrency : Math.min(this.concurrency, limit.concurrency);
    this.setEffective(rate, concurrency);
  }

  /** Sets effective limits (adaptive); the burst shrinks with the rate so a lowered bucket cannot dump its old burst. */
  setEffective(rate: number, concurrency: number): void {
    this.rate = rate;
    this.concurrency = concurrency;
    this.burst = capacity((this.limit.burst * rate) / this.limit.rate, rate);
    if (this.tokens > this.burst) this.tokens = this.burst;
    // Debt is at most one burst (CDF's floor too), also after a cut shrank the burst.
    else if (this.tokens < -this.burst) this.tokens = -this.burst;
  }
}
