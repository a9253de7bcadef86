import type { LimitConfig } from '../config/index.js';
import type { Bucket } from './bucket.js';
import type { AppRef } from './fair-queue.js';

/** Why a take failed: the bucket that said no, and when to try again (-1: when a slot is released). */
export interface Blocked {
  bucket: Bucket;
  waitMs: number;
}

/**
 * Where tokens and slots live. The in-memory store is the default; the Redis store (src/cluster/)
 * shares them between replicas. A take is all-or-nothing over the buckets of one request.
 */
export interface QuotaStore {
  /**
   * Takes one token and one slot from every bucket, or nothing; null when taken. For a shared store that
   * orders apps fairly across replicas (the in-memory store leaves that to the queues): `app` is who
   * asks, and `stillWaitingAt` the bucket whose queue here still holds others after this one.
   */
  take(
    buckets: readonly Bucket[],
    now: number,
    app?: AppRef,
    stillWaitingAt?: Bucket,
  ): Blocked | null | Promise<Blocked | null>;
  /** Gives back the slots of a take. */
  release(buckets: readonly Bucket[]): void;
  /** Publishes a bucket's new effective limits (adaptive) to whoever shares the store. */
  publishEffective(bucket: Bucket): void;
  /** Publishes a learned bucket, so other replicas adopt it (QuotaTree.adopt); optional for local stores. */
  publishLearned?(limit: LimitConfig): void;
  /** Withdraws a learned bucket the tree undid, so other replicas drop it too; optional for local stores. */
  withdrawLearned?(key: string): void;
  /**
   * Calls `learned` with buckets other replicas learned (the quota tree adopts them) and `withdrawn` with the
   * keys of those they undid; optional.
   */
  onLearned?(learned: (limit: LimitConfig) => void, withdrawn: (key: string) => void): void;
  /**
   * How often to look again while a request waits for a slot that only another replica can free
   * (0: never, slots are only freed here and every release wakes the queue).
   */
  readonly slotPollMs: number;
  /** Whether takes are answered locally ("memory") or by a shared store, and if it is reachable now. */
  status(): { mode: string; healthy: boolean };
  close(): Promise<void>;
}

export class MemoryStore implements QuotaStore {
  readonly slotPollMs = 0;

  take(buckets: readonly Bucket[], now: number): Blocked | null {
    for (let i = 0; i < buckets.length; i++) {
      const waitMs = buckets[i].blockedFor(now);
      if (waitMs !== 0) return { bucket: buckets[i], waitMs };
    }
    for (let i = 0; i < buckets.length; i++) buckets[i].take();
    return null;
  }

  release(buckets: readonly Bucket[]): void {
    for (let i = 0; i < buckets.length; i++) buckets[i].unhold();
  }

  publishEffective(): void {}

  status() {
    return { mode: 'memory', healthy: true };
  }

  async close(): Promise<void> {}
}
