import type { ClockTimer } from './clock.js';
import { FairQueue } from './fair-queue.js';
import type { Waiter } from './waiter.js';

/**
 * The scheduler's bookkeeping for one bucket: its queue, its timer, and when calls last waited for its
 * tokens or its slots. Written by the scheduler only.
 */
export class Lane {
  /** Made when a call first waits here: most buckets never queue. */
  private fair: FairQueue<Waiter> | null = null;
  timer: ClockTimer | null = null;
  timerAt = 0;
  draining = false;
  redrain = false;
  lastUsed: number;
  /** The scheduler's access count when this bucket was last moved to the young end of its LRU. */
  touched = 0;
  /** When a take last found no token here, and no free slot (what learning calls demand). */
  tokensWantedAt = Number.NEGATIVE_INFINITY;
  slotsWantedAt = Number.NEGATIVE_INFINITY;

  constructor(now: number) {
    this.lastUsed = now;
  }

  get queue(): FairQueue<Waiter> {
    this.fair ??= new FairQueue<Waiter>();
    return this.fair;
  }

  get queued(): number {
    return this.fair === null ? 0 : this.fair.size;
  }

  /** Nothing waits here and no timer runs: the bucket may be forgotten. */
  get idle(): boolean {
    return this.queued === 0 && this.timer === null;
  }
}
