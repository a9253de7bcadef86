import type { CircuitConfig } from '../config/index.js';
import { SlidingCounter } from './window.js';

export type CircuitState = 'closed' | 'open' | 'half-open';

const CALLS = 0;
const FAILURES = 1;

/**
 * Fails fast while the upstream keeps failing: opens when the failure share over the window passes the
 * threshold, lets one probe through after `openMs`, closes when a probe succeeds.
 */
export class CircuitBreaker {
  state: CircuitState = 'closed';
  private openedAt = 0;
  private probing = false;
  private counter: SlidingCounter;
  private windowMs: number;

  constructor(
    private readonly config: CircuitConfig,
    private readonly onChange: (state: CircuitState) => void = () => {},
  ) {
    this.windowMs = config.windowMs;
    this.counter = new SlidingCounter(config.windowMs, 2);
  }

  /** The config object changed in place (reload): a new window length starts a fresh count. */
  reconfigure(): void {
    if (this.config.windowMs === this.windowMs) return;
    this.windowMs = this.config.windowMs;
    this.counter = new SlidingCounter(this.windowMs, 2);
  }

  /** Whether an attempt may go upstream now. */
  allow(now: number): boolean {
    if (!this.config.enabled || this.state === 'closed') return true;
    if (this.state === 'open') {
      if (now - this.openedAt < this.config.openMs) return false;
      this.set('half-open');
    }
    if (this.probing) return false;
    this.probing = true;
    return true;
  }

  /** Seconds until the next probe. */
  retryAfterSec(now: number): number {
    return Math.max(1, Math.ceil((this.config.openMs - (now - this.openedAt)) / 1000));
  }

  record(ok: boolean, now: number): void {
    if (!this.config.enabled) return;
    if (this.state === 'half-open') {
      this.probing = false;
      if (ok) {
        this.set('closed');
        return;
      }
      this.open(now);
      return;
    }
    this.counter.add(CALLS, now);
    if (!ok) this.counter.add(FAILURES, now);
    if (this.state === 'closed' && !ok) {
      const calls = this.counter.sum(CALLS, now);
      if (calls >= this.config.minCalls && this.counter.sum(FAILURES, now) / calls >= this.config.failureRatio)
        this.open(now);
    }
  }

  /** A probe that ended without an answer either way (client went away) frees the probe slot. */
  abandon(): void {
    this.probing = false;
  }

  private open(now: number): void {
    this.openedAt = now;
    // Forget the window: after the probe, the breaker judges calls made from now on. (It used to sum at
    // now + 2 windows, which moved the window's clock ahead and stopped it sliding for two windows.)
    this.counter.reset(now);
    this.set('open');
  }

  private set(state: CircuitState): void {
    if (this.state === state) return;
    this.state = state;
    this.onChange(state);
  }
}
