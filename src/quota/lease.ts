import type { Bucket } from './bucket.js';

/** A token taken and a slot held in each bucket; release() gives the slots back, once. */
export interface Lease {
  readonly buckets: readonly Bucket[];
  /** How long the request waited in the queue, in ms (0 when it went straight through). */
  readonly waitedMs: number;
  release(): void;
}
