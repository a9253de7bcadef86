import type { QueueConfig } from '../config/index.js';
import { GatewayErrors } from '../errors.js';
import type { AbortLike } from '../proxy/client-gone.js';
import { SlotList } from '../slot-list.js';
import type { Demand } from './adaptive.js';
import { Bucket, type QuotaLimit } from './bucket.js';
import { type Clock, type ClockTimer, systemClock } from './clock.js';
import type { AppRef } from './fair-queue.js';
import { Lane } from './lane.js';
import type { Lease } from './lease.js';
import type { BucketPath } from './path.js';
import type { Blocked, QuotaStore } from './store.js';
import type { Waiter } from './waiter.js';

export type { AppRef } from './fair-queue.js';

/** A request the queue would not take or could not serve in time: the app gets 429 with Retry-After. */
export class QueueRejected extends Error {
  constructor(
    readonly reason: 'full' | 'timeout' | 'aborted',
    readonly bucket: Bucket,
    readonly retryAfterSec: number,
  ) {
    super(
      reason === 'full'
        ? GatewayErrors.QUEUE_FULL.format(bucket.limit.name)
        : reason === 'timeout'
          ? GatewayErrors.QUEUE_TIMEOUT.format(bucket.limit.name)
          : GatewayErrors.CLIENT_GONE.format(),
    );
  }
}

/** What the scheduler reports as it works, for metrics. */
export interface SchedulerObserver {
  onAdmitted(bucket: readonly Bucket[], waitedMs: number): void;
  onRejected(bucket: Bucket, reason: QueueRejected['reason']): void;
}

const NO_BUCKETS: readonly Bucket[] = [];
const SWEEP_MS = 25;
const IDLE_BUCKET_MS = 10 * 60_000;
const FORGET_EVERY_MS = 60_000;
/** Calls that waited this recently for a bucket are its demand (learning raises only buckets with some). */
const DEMAND_MS = 500;
/**
 * Buckets kept in all, whatever callers send (made-up projects and identities): past it the least recently
 * used idle bucket of the same limit makes room, else of any limit.
 */
export const MAX_BUCKETS = 16_384;

/** One limit's buckets, by scope, oldest use first (an approximate LRU, see bucket()). */
interface Scopes {
  limit: QuotaLimit;
  readonly buckets: Map<string, Bucket>;
  /** Lookups so far: a bucket not moved for half the bound's worth of them may be near the old end. */
  uses: number;
}

const laneOf = (b: Bucket) => b.lane as Lane;

/**
 * Admits requests into their buckets: straight through when every bucket has a token and a slot and
 * nobody is waiting, else into the fair queue of the bucket that said no. No timer per request: one
 * timer per bucket waiting for tokens, one sweep for deadlines and apps gone while anything waits.
 */
export class Scheduler {
  private readonly byName = new Map<string, Scopes>();
  private bucketCount = 0;
  /** Not a Set: churned by every waiter, its V8 tables would chain through scavenges (slot-list.ts). */
  private readonly waiting = new SlotList<Waiter>();
  private sweepTimer: ClockTimer | null = null;
  /** Forgets buckets unused for a while; runs only while there are buckets to forget. */
  private idleTimer: ClockTimer | null = null;
  /**
   * A request's buckets as they are now (the quota tree's): a bucket learned since they were chosen applies to
   * its next attempt and, while it waits, to it too. Null: buckets never change after they were chosen.
   */
  refresh: ((path: BucketPath) => readonly Bucket[]) | null = null;

  constructor(
    readonly store: QuotaStore,
    private readonly queue: QueueConfig,
    private readonly observer: SchedulerObserver | null = null,
    private readonly maxBuckets = MAX_BUCKETS,
    readonly clock: Clock = systemClock,
  ) {}

  /**
   * The bucket of a limit for one scope, made on first use. A bucket is moved to the young end of its
   * limit's LRU only when it may have aged into the older half, so a hot bucket costs one map lookup, not a
   * delete and an insert per request.
   */
  bucket(limit: QuotaLimit, scope: string): Bucket {
    let scopes = this.byName.get(limit.name);
    if (!scopes) {
      scopes = { limit, buckets: new Map(), uses: 0 };
      this.byName.set(limit.name, scopes);
    } else if (scopes.limit !== limit) this.retargetScopes(scopes, limit);
    const uses = ++scopes.uses;
    let bucket = scopes.buckets.get(scope);
    if (bucket) {
      const lane = laneOf(bucket);
      if (uses - lane.touched > scopes.buckets.size >> 1) {
        scopes.buckets.delete(scope);
        scopes.buckets.set(scope, bucket);
        lane.touched = uses;
      }
      return bucket;
    }
    if (this.bucketCount >= this.maxBuckets) this.makeRoom(scopes);
    const now = this.clock.now();
    const lane = new Lane(now);
    bucket = new Bucket(limit, scope, now, lane);
    lane.touched = uses;
    scopes.buckets.set(scope, bucket);
    this.bucketCount++;
    if (this.idleTimer === null) {
      this.idleTimer = this.clock.setInterval(() => this.forgetIdle(), FORGET_EVERY_MS);
      this.idleTimer.unref?.();
    }
    return bucket;
  }

  /**
   * A new table (config reload): buckets whose limit name survives keep their tokens, slots, queue and what
   * was learned, under the new figures; the others are forgotten (calls holding them still release them).
   * `only`: the limits given are changed ones; the others stay.
   */
  retarget(limits: readonly QuotaLimit[], only = false): void {
    const byName = new Map(limits.map((l) => [l.name, l]));
    for (const [name, scopes] of this.byName) {
      const limit = byName.get(name);
      if (limit === undefined) {
        if (!only) this.forgetLimit(name, scopes);
      } else if (scopes.limit !== limit) this.retargetScopes(scopes, limit);
    }
  }

  /** Forgets a limit's buckets (a learned one undone); calls holding them still release them. */
  forget(name: string): void {
    const scopes = this.byName.get(name);
    if (scopes) this.forgetLimit(name, scopes);
  }

  /** Buckets kept for a limit now. */
  scopesOf(name: string): number {
    return this.byName.get(name)?.buckets.size ?? 0;
  }

  get bucketsKept(): number {
    return this.bucketCount;
  }

  *allBuckets(): IterableIterator<Bucket> {
    for (const scopes of this.byName.values()) yield* scopes.buckets.values();
  }

  /** A bucket in use outside acquire (a shadow bucket): not to be forgotten as idle. */
  used(bucket: Bucket, now: number): void {
    laneOf(bucket).lastUsed = now;
  }

  /** Calls waiting in a bucket's queue now. */
  queuedAt(bucket: Bucket): number {
    return laneOf(bucket).queued;
  }

  /** Whether calls waited lately for the bucket's tokens, or for its slots (learning's demand). */
  demandOf(bucket: Bucket, now: number): Demand {
    const lane = laneOf(bucket);
    return { rate: now - lane.tokensWantedAt < DEMAND_MS, slots: now - lane.slotsWantedAt < DEMAND_MS };
  }

  private retargetScopes(scopes: Scopes, limit: QuotaLimit): void {
    scopes.limit = limit;
    for (const b of scopes.buckets.values()) {
      b.reconfigure(limit);
      this.limitsChanged(b);
    }
  }

  private forgetLimit(name: string, scopes: Scopes): void {
    this.byName.delete(name);
    this.bucketCount -= scopes.buckets.size;
  }

  /** Drops the least recently used idle bucket, of `prefer`'s limit when it has one, else of any. */
  private makeRoom(prefer: Scopes): void {
    if (this.evictOne(prefer)) return;
    for (const scopes of this.byName.values()) if (scopes !== prefer && this.evictOne(scopes)) return;
  }

  private evictOne(scopes: Scopes): boolean {
    for (const [scope, b] of scopes.buckets) {
      if (b.inFlight > 0 || !laneOf(b).idle) continue;
      scopes.buckets.delete(scope);
      this.bucketCount--;
      return true;
    }
    return false;
  }

  /**
   * Waits for a token and a slot in every bucket; rejects with QueueRejected. With the request's `path`, its
   * buckets are the tree's current ones for it, then and while it waits.
   */
  acquire(
    chosen: readonly Bucket[],
    app: AppRef,
    deadline: number,
    signal?: AbortLike,
    path?: BucketPath,
  ): Promise<Lease> {
    if (chosen.length === 0) return Promise.resolve(this.lease(NO_BUCKETS, 0));
    // A retry of a call whose buckets were chosen before a 429 storm taught the tree a bucket on its path.
    const buckets = path === undefined || this.refresh === null ? chosen : this.refresh(path);
    const now = this.clock.now();
    for (let i = 0; i < buckets.length; i++) {
      const lane = laneOf(buckets[i]);
      lane.lastUsed = now;
      // Someone is already waiting here: going first would jump the fair queue.
      if (lane.queued > 0)
        return this.wait(buckets, app, deadline, signal, path, { bucket: buckets[i], waitMs: -2 }, now);
    }
    const taken = this.store.take(buckets, now, app);
    if (taken === null) return Promise.resolve(this.lease(buckets, 0));
    if (!(taken instanceof Promise)) return this.wait(buckets, app, deadline, signal, path, taken, now);
    return taken.then((blocked) =>
      blocked === null ? this.lease(buckets, 0) : this.wait(buckets, app, deadline, signal, path, blocked, now),
    );
  }

  /**
   * The tree learned (or dropped) buckets: waiting requests take their path's buckets as they are now, so a
   * storm's queued calls do not go out past the bucket their 429s just taught.
   */
  refreshWaiting(): void {
    if (this.refresh === null) return;
    const touched = new Set<Bucket>();
    const refresh = this.refresh;
    this.waiting.forEach((w) => {
      if (w.path === undefined) return;
      const fresh = refresh(w.path);
      if (fresh === w.buckets) return;
      w.buckets = fresh;
      touched.add(w.home);
    });
    for (const b of touched) void this.drain(b);
  }

  /** Effective limits changed (learning, a reload): shared stores hear of it, waiters may fit now. */
  limitsChanged(bucket: Bucket): void {
    this.store.publishEffective(bucket);
    if (laneOf(bucket).queued > 0) void this.drain(bucket);
  }

  queuedCount(): number {
    return this.waiting.size;
  }

  /** Rejects every waiter (shutdown) and stops the timers. */
  close(): void {
    if (this.idleTimer) this.clock.clearInterval(this.idleTimer);
    this.idleTimer = null;
    if (this.sweepTimer) this.clock.clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const w of this.waiting.toArray()) this.drop(w, 'timeout');
    for (const b of this.allBuckets()) {
      const lane = laneOf(b);
      if (lane.timer) this.clock.clearTimeout(lane.timer);
      lane.timer = null;
    }
  }

  /**
   * Notes which bucket refused a take, and why: calls wanted its tokens or its slots. Tokens owed after a 429
   * (the bucket follows CDF's debt) are not calls wanting more rate.
   */
  private wanted(blocked: Blocked, now: number): void {
    const b = blocked.bucket;
    const lane = laneOf(b);
    if (blocked.waitMs === -1) lane.slotsWantedAt = now;
    else if (blocked.waitMs >= 0 && now - b.indebtedAt > DEMAND_MS) lane.tokensWantedAt = now;
  }

  private wait(
    buckets: readonly Bucket[],
    app: AppRef,
    deadline: number,
    signal: AbortLike | undefined,
    path: BucketPath | undefined,
    blocked: Blocked,
    now: number,
  ): Promise<Lease> {
    const home = blocked.bucket;
    this.wanted(blocked, now);
    if (laneOf(home).queued >= this.queue.maxQueued) return this.refuse(home, 'full');
    if (deadline <= now) return this.refuse(home, 'timeout');
    if (signal?.aborted) return this.refuse(home, 'aborted');
    return new Promise<Lease>((resolve, reject) => {
      const w: Waiter = {
        slot: -1,
        buckets,
        app,
        deadline,
        enqueuedAt: now,
        home,
        cancelled: false,
        resolve,
        reject,
        signal,
        path,
      };
      laneOf(home).queue.push(w.app, w);
      this.waiting.add(w);
      if (!this.sweepTimer) {
        this.sweepTimer = this.clock.setInterval(() => this.sweep(), SWEEP_MS);
        this.sweepTimer.unref?.();
      }
      this.wake(home, blocked.waitMs);
    });
  }

  private refuse(bucket: Bucket, reason: QueueRejected['reason']): Promise<never> {
    this.observer?.onRejected(bucket, reason);
    return Promise.reject(new QueueRejected(reason, bucket, this.retryAfter(bucket)));
  }

  /** Seconds until the queue ahead would have drained at the bucket's rate. */
  private retryAfter(bucket: Bucket): number {
    return Math.max(1, Math.ceil((laneOf(bucket).queued + 1) / bucket.rate));
  }

  private wake(bucket: Bucket, waitMs: number): void {
    if (waitMs === -2) void this.drain(bucket);
    else if (waitMs >= 0) this.schedule(bucket, waitMs);
    else if (this.store.slotPollMs > 0) this.schedule(bucket, this.store.slotPollMs);
  }

  private schedule(bucket: Bucket, waitMs: number): void {
    const lane = laneOf(bucket);
    const at = this.clock.now() + waitMs;
    if (lane.timer) {
      if (lane.timerAt <= at) return;
      this.clock.clearTimeout(lane.timer);
    }
    lane.timerAt = at;
    lane.timer = this.clock.setTimeout(() => {
      lane.timer = null;
      void this.drain(bucket);
    }, waitMs);
  }

  /** Serves the bucket's queue, in fair order, for as long as the store says yes. */
  private async drain(bucket: Bucket): Promise<void> {
    const lane = laneOf(bucket);
    if (lane.draining) {
      lane.redrain = true;
      return;
    }
    lane.draining = true;
    try {
      do {
        lane.redrain = false;
        const queue = lane.queue;
        for (;;) {
          const w = queue.peek();
          if (!w) break;
          if (w.signal?.aborted) {
            this.drop(w, 'aborted');
            continue;
          }
          // Its buckets as taken: refreshWaiting() may replace w.buckets while a shared store answers.
          const buckets = w.buckets;
          const now = this.clock.now();
          let blocked = this.store.take(buckets, now, w.app, queue.size > 1 ? bucket : undefined);
          if (blocked instanceof Promise) blocked = await blocked;
          const atHead = queue.peek() === w;
          if (w.cancelled) {
            if (blocked === null) this.store.release(buckets);
            continue;
          }
          if (blocked !== null) this.wanted(blocked, now);
          if (blocked !== null && blocked.bucket === bucket) {
            this.wake(bucket, blocked.waitMs === -2 ? 0 : blocked.waitMs);
            break;
          }
          if (blocked === null) {
            if (atHead) queue.shift();
            else queue.cancel(w);
            this.grant(w, buckets);
          } else if (atHead) {
            queue.shift();
            // Free here but not in another of its buckets: wait there, first in line for its app.
            w.home = blocked.bucket;
            laneOf(blocked.bucket).queue.push(w.app, w, true);
            this.wake(blocked.bucket, blocked.waitMs);
          }
          // Not at the head any more (another waiter moved ahead while the store answered): its turn comes again.
        }
      } while (lane.redrain);
    } finally {
      lane.draining = false;
    }
  }

  private grant(w: Waiter, buckets: readonly Bucket[]): void {
    this.waiting.delete(w);
    w.resolve(this.lease(buckets, this.clock.now() - w.enqueuedAt));
  }

  private drop(w: Waiter, reason: QueueRejected['reason']): void {
    if (!this.waiting.delete(w)) return;
    laneOf(w.home).queue.cancel(w);
    this.observer?.onRejected(w.home, reason);
    w.reject(new QueueRejected(reason, w.home, this.retryAfter(w.home)));
  }

  /** Drops waiters past their deadline or whose app went away; stops itself when nothing waits. */
  sweep(): void {
    const now = this.clock.now();
    this.waiting.forEach((w) => {
      if (w.deadline <= now) this.drop(w, 'timeout');
      else if (w.signal?.aborted) this.drop(w, 'aborted');
    });
    if (this.waiting.size === 0 && this.sweepTimer) {
      this.clock.clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  private lease(buckets: readonly Bucket[], waitedMs: number): Lease {
    this.observer?.onAdmitted(buckets, waitedMs);
    let released = buckets.length === 0;
    return {
      buckets,
      waitedMs,
      release: () => {
        if (released) return;
        released = true;
        this.store.release(buckets);
        for (let i = 0; i < buckets.length; i++) if (laneOf(buckets[i]).queued > 0) void this.drain(buckets[i]);
      },
    };
  }

  /** Forgets buckets unused for a while; stops when nothing is left to forget. */
  forgetIdle(): void {
    const now = this.clock.now();
    let left = 0;
    for (const scopes of this.byName.values()) {
      for (const [scope, b] of scopes.buckets) {
        const lane = laneOf(b);
        if (now - lane.lastUsed > IDLE_BUCKET_MS && b.inFlight === 0 && lane.idle) {
          scopes.buckets.delete(scope);
          this.bucketCount--;
        }
      }
      left += scopes.buckets.size;
    }
    // Nothing left to forget: an idle gateway runs no timer (the next bucket made starts it again).
    if (left === 0 && this.idleTimer !== null) {
      this.clock.clearInterval(this.idleTimer);
      this.idleTimer = null;
    }
  }
}
