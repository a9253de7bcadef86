import type { LimitConfig } from '../config/index.js';
import { FairQueue } from './fair-queue.js';
import type { Waiter } from './waiter.js';

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
    this.burst = limit.burst;
    this.concurrency = limit.concurrency;
    this.tokens = limit.burst;
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
    this.burst = Math.max(1, (this.limit.burst * rate) / this.limit.rate);
    if (this.tokens > this.burst) this.tokens = this.burst;
  }
}
