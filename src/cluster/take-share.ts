import type { Bucket } from '../quota/index.js';

/** A replica's share is measured over at least this many of its own takes. */
const OWN_TAKES = 32;

interface Window {
  /** Every replica's takes (the shared counter) when the window opened, and this replica's since. */
  all0: number;
  own: number;
}

/**
 * This replica's share of a shared bucket's calls, from the counter every take increments in Redis: what
 * one replica sees of CDF's answers is that share of all, and the rate it learns from them is all's.
 */
export class TakeShare {
  private readonly windows = new WeakMap<Bucket, Window>();

  /** A take this replica made; `all`: the bucket's takes by every replica, counting this one. */
  taken(bucket: Bucket, all: number): void {
    if (!(all >= 1)) return;
    const w = this.windows.get(bucket);
    // A counter that went back expired with the bucket's keys: the window starts again.
    if (w === undefined || all <= w.all0) {
      this.windows.set(bucket, { all0: all, own: 0 });
      return;
    }
    if (++w.own < OWN_TAKES) return;
    bucket.shareCalls(w.own / (all - w.all0));
    w.all0 = all;
    w.own = 0;
  }
}
