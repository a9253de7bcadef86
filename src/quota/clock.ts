import { performance } from 'node:perf_hooks';

/** A timer a Clock started; `unref` lets the process exit while it runs. */
export interface ClockTimer {
  unref?(): unknown;
}

/**
 * Where the quota reads the time and starts its timers: the process's monotonic clock in the gateway, a
 * clock the test moves in unit tests, so that buckets, queues, deadlines and learning can be tested on
 * counts and order without waiting.
 */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
  setInterval(fn: () => void, ms: number): ClockTimer;
  clearInterval(timer: ClockTimer): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (timer) => clearInterval(timer as NodeJS.Timeout),
};
