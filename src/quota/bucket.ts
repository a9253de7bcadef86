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

  constructor(
    readonly limit: LimitConfig,
    /** The project, or project and identity: what this bucket is counted over. */
    readonly scope: string,
    now: number,
  ) {
    this.rate = limit.rate;
    this.concurrency = limit.concurrency;
    this.burst = capacity(limit.burst, limit.rate);
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

  /** Sets effective limits (adaptive); the burst shrinks with the rate so a lowered bucket cannot dump its old burst. */
  setEffective(rate: number, concurrency: number): void {
    this.rate = rate;
    this.concurrency = concurrency;
    this.burst = capacity((this.limit.burst * rate) / this.limit.rate, rate);
    if (this.tokens > this.burst) this.tokens = this.burst;
  }
}
