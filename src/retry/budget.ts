import { SlidingCounter } from './window.js';

const FIRST = 0;
const RETRY = 1;
/** Retries always allowed per second of window (as Finagle's budget does), so a quiet bucket can still ride out a few 429s. */
const MIN_RETRIES_PER_SECOND = 10;

/** Retries may add at most `ratio` on top of first attempts over the window, so an outage cannot become a storm. */
export class RetryBudget {
  private readonly counter: SlidingCounter;
  private readonly minRetries: number;

  constructor(
    private readonly ratio: number,
    windowMs: number,
  ) {
    this.counter = new SlidingCounter(windowMs, 2);
    this.minRetries = (MIN_RETRIES_PER_SECOND * windowMs) / 1000;
  }

  recordFirst(now: number): void {
    this.counter.add(FIRST, now);
  }

  /** Takes a retry from the budget when there is one left. */
  tryRetry(now: number): boolean {
    const retries = this.counter.sum(RETRY, now);
    if (retries >= this.minRetries && retries >= this.ratio * this.counter.sum(FIRST, now)) return false;
    this.counter.add(RETRY, now);
    return true;
  }
}
