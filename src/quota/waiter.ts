import type { AbortLike } from '../proxy/client-gone.js';
import type { Slotted } from '../slot-list.js';
import type { Bucket } from './bucket.js';
import type { AppRef } from './fair-queue.js';
import type { Lease } from './lease.js';
import type { BucketPath } from './path.js';

/** A request waiting for a token and a slot in every one of its buckets. */
export interface Waiter extends Slotted {
  /** Replaced when the quota tree learns a bucket on its path while it waits (Scheduler.refreshWaiting). */
  buckets: readonly Bucket[];
  readonly app: AppRef;
  readonly deadline: number;
  readonly enqueuedAt: number;
  /** The bucket whose queue holds it now. */
  home: Bucket;
  cancelled: boolean;
  resolve(lease: Lease): void;
  reject(err: Error): void;
  /**
   * Read at the deadline sweep and when its turn comes, not listened to: a listener per waiter would keep
   * served waiters, and their requests, alive through scavenges.
   */
  readonly signal: AbortLike | undefined;
  /** The request's way through the tree, to choose its buckets again while it waits; none in tests. */
  path: BucketPath | undefined;
}
