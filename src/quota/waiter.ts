import type { AbortLike } from '../proxy/client-gone.js';
import type { Bucket } from './bucket.js';
import type { Lease } from './lease.js';
import type { AppRef } from './scheduler.js';

/** A request waiting for a token and a slot in every one of its buckets. */
export interface Waiter {
  readonly buckets: readonly Bucket[];
  readonly app: string;
  /** The app as the scheduler knows it (a shared store orders apps fairly across replicas with it). */
  readonly appRef: AppRef;
  readonly weight: number;
  readonly priority: number;
  readonly deadline: number;
  readonly enqueuedAt: number;
  /** The bucket whose queue holds it now. */
  home: Bucket;
  cancelled: boolean;
  resolve(lease: Lease): void;
  reject(err: Error): void;
  onAbort: (() => void) | null;
  signal: AbortLike | undefined;
}
