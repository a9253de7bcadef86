import { performance } from 'node:perf_hooks';
import type { LimitConfig, QueueConfig } from '../config/index.js';
import { GatewayErrors } from '../errors.js';
import type { AbortLike } from '../proxy/client-gone.js';
import { SlotList } from '../slot-list.js';
import { Bucket } from './bucket.js';
import type { AppRef } from './fair-queue.js';
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
/**
 * Scopes (projects, or project and identity pairs) kept per limit, whatever callers send: past it the least
 * recently used idle bucket goes. 4096 scopes of every default bucket stay under 50 MiB (test/tree.test.ts).
 */
export const MAX_SCOPES_PER_LIMIT = 4096;

/** One limit's buckets, by scope, oldest use first (an approximate LRU, see bucket()). */
interface Scopes {
  limit: LimitConfig;
  readonly buckets: Map<string, Bucket>;
  /** Lookups so far: a bucket not moved for half the bound's worth of them may be near the old end. */
  uses: number;
}

/**
 * Admits requests into their buckets: straight through when every bucket has a token and a slot and
 * nobody is waiting, else into the fair queue of the bucket that said no. No timer per request: one
 * timer per bucket waiting for tokens, one sweep for deadlines and apps gone while anything waits.
 */
export class Scheduler {
  private readonly byName = new Map<string, Scopes>();
  /** Not a Set: churned by every waiter, its V8 tables would chain as the watchdog's Map did (slot-list.ts). */
  private readonly waiting = new SlotList<Waiter>();
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Forgets buckets unused for a while; runs only while there are buckets to forget. */
  private idleTimer: NodeJS.Timeout | null = null;
  /**
   * A request's buckets as they are now (the quota tree's): a bucket learned since they were chosen applies to
   * its next attempt and, while it waits, to it too. Null: buckets never change after they were chosen.
   */
  refresh: ((path: BucketPath) => readonly Bucket[]) | null = null;

  constructor(
    readonly store: QuotaStore,
    private readonly queue: QueueConfig,
    private readonly observer: SchedulerObserver | null = null,
    private readonly maxScopes = MAX_SCOPES_PER_LIMIT,
  ) {}

  /**
   * The bucket of a limit for one scope, made on first use. Bounded per limit: the least recently used idle
   * bucket makes room. A bucket is moved to the young end only when it may have aged into the older half,
   * so a hot bucket costs one map lookup, not a delete and an insert per request.
   */
  bucket(limit: LimitConfig, scope: string): Bucket {
    let scopes = this.byName.get(limit.name);
    if (!scopes) {
      scopes = { limit, buckets: new Map(), uses: 0 };
      this.byName.set(limit.name, scopes);
    } else if (scopes.limit !== limit) this.retargetScopes(scopes, limit);
    const uses = ++scopes.uses;
    let bucket = scopes.buckets.get(scope);
    if (bucket) {
      if (uses - bucket.touched > this.maxScopes >> 1) {
        scopes.buckets.delete(scope);
        scopes.buckets.set(scope, bucket);
        bucket.touched = uses;
      }
      return bucket;
    }
    if (scopes.buckets.size >= this.maxScopes) this.evict(scopes);
    bucket = new Bucket(limit, scope, performance.now());
    bucket.touched = uses;
    scopes.buckets.set(scope, bucket);
    if (this.idleTimer === null) {
      this.idleTimer = setInterval(() => this.forgetIdle(), 60_000);
      this.idleTimer.unref();
    }
    return bucket;
  }

  /**
   * A new table (config reload): buckets whose limit name survives keep their tokens, slots, queue and what
   * was learned, under the new figures; the others are forgotten (calls holding them still release them).
   * `only`: the limits given are changed ones; the others stay.
   */
  retarget(limits: readonly LimitConfig[], only = false): void {
    const byName = new Map(limits.map((l) => [l.name, l]));
    for (const [name, scopes] of this.byName) {
      const limit = byName.get(name);
      if (limit === undefined) {
        if (!only) this.byName.delete(name);
      } else if (scopes.limit !== limit) this.retargetScopes(scopes, limit);
    }
  }

  /** Buckets kept for a limit now. */
  scopesOf(name: string): number {
    return this.byName.get(name)?.buckets.size ?? 0;
  }

  *allBuckets(): IterableIterator<Bucket> {
    for (const scopes of this.byName.values()) yield* scopes.buckets.values();
  }

  private retargetScopes(scopes: Scopes, limit: LimitConfig): void {
    scopes.limit = limit;
    for (const b of scopes.buckets.values()) {
      b.reconfigure(limit);
      this.limitsChanged(b);
    }
  }

  /** Drops the least recently used idle buckets until there is room for one more. */
  private evict(scopes: Scopes): void {
    let excess = scopes.buckets.size - this.maxScopes + 1;
    for (const [scope, b] of scopes.buckets) {
      if (excess <= 0) break;
      if (b.inFlight > 0 || b.queue.size > 0 || b.timer) continue;
      scopes.buckets.delete(scope);
      excess--;
    }
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
    const now = performance.now();
    for (let i = 0; i < buckets.length; i++) {
      buckets[i].lastUsed = now;
      // Someone is already waiting here: going first would jump the fair queue.
      if (buckets[i].queue.size > 0)
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
   * storm's queued calls do not go out past the bucket their 429s just taught (they did: a queue admitted at
   * the configured figures for a second after the learned one existed).
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

  /** Effective limits changed (adaptive): waiters may fit now. */
  limitsChanged(bucket: Bucket): void {
    this.store.publishEffective(bucket);
    if (bucket.queue.size > 0) void this.drain(bucket);
  }

  queuedCount(): number {
    return this.waiting.size;
  }

  /** Rejects every waiter (shutdown) and stops the timers. */
  close(): void {
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = null;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const w of this.waiting.toArray()) this.drop(w, 'timeout');
    for (const b of this.allBuckets()) if (b.timer) clearTimeout(b.timer);
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
    if (home.queue.size >= this.queue.maxQueued) return this.refuse(home, 'full');
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
      home.queue.push(w.app, w);
      this.waiting.add(w);
      if (!this.sweepTimer) {
        this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
        this.sweepTimer.unref();
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
    return Math.max(1, Math.ceil((bucket.queue.size + 1) / bucket.rate));
  }

  private wake(bucket: Bucket, waitMs: number): void {
    if (waitMs === -2) void this.drain(bucket);
    else if (waitMs >= 0) this.schedule(bucket, waitMs);
    else if (this.store.slotPollMs > 0) this.schedule(bucket, this.store.slotPollMs);
  }

  private schedule(bucket: Bucket, waitMs: number): void {
    const at = performance.now() + waitMs;
    if (bucket.timer) {
      if (bucket.timerAt <= at) return;
      clearTimeout(bucket.timer);
    }
    bucket.timerAt = at;
    bucket.timer = setTimeout(() => {
      bucket.timer = null;
      void this.drain(bucket);
    }, waitMs);
  }

  /** Serves the bucket's queue, in fair order, for as long as the store says yes. */
  private async drain(bucket: Bucket): Promise<void> {
    if (bucket.draining) {
      bucket.redrain = true;
      return;
    }
    bucket.draining = true;
    try {
      do {
        bucket.redrain = false;
        for (;;) {
          const w = bucket.queue.peek();
          if (!w) break;
          if (w.signal?.aborted) {
            this.drop(w, 'aborted');
            continue;
          }
          // Its buckets as taken: refreshWaiting() may replace w.buckets while a shared store answers.
          const buckets = w.buckets;
          let blocked = this.store.take(buckets, performance.now(), w.app, bucket.queue.size > 1 ? bucket : undefined);
          if (blocked instanceof Promise) blocked = await blocked;
          const atHead = bucket.queue.peek() === w;
          if (w.cancelled) {
            if (blocked === null) this.store.release(buckets);
            continue;
          }
          if (blocked !== null && blocked.bucket === bucket) {
            this.wake(bucket, blocked.waitMs === -2 ? 0 : blocked.waitMs);
            break;
          }
          if (blocked === null) {
            if (atHead) bucket.queue.shift();
            else bucket.queue.cancel(w);
            this.grant(w, buckets);
          } else if (!atHead) {
          } else {
            bucket.queue.shift();
            // Free here but not in another of its buckets: wait there, first in line for its app.
            w.home = blocked.bucket;
            blocked.bucket.queue.push(w.app, w, true);
            this.wake(blocked.bucket, blocked.waitMs);
          }
        }
      } while (bucket.redrain);
    } finally {
      bucket.draining = false;
    }
  }

  private grant(w: Waiter, buckets: readonly Bucket[]): void {
    this.waiting.delete(w);
    w.resolve(this.lease(buckets, performance.now() - w.enqueuedAt));
  }

  private drop(w: Waiter, reason: QueueRejected['reason']): void {
    if (!this.waiting.delete(w)) return;
    w.home.queue.cancel(w);
    this.observer?.onRejected(w.home, reason);
    w.reject(new QueueRejected(reason, w.home, this.retryAfter(w.home)));
  }

  private sweep(): void {
    const now = performance.now();
    this.waiting.forEach((w) => {
      if (w.deadline <= now) this.drop(w, 'timeout');
      else if (w.signal?.aborted) this.drop(w, 'aborted');
    });
    if (this.waiting.size === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
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
        for (let i = 0; i < buckets.length; i++) if (buckets[i].queue.size > 0) void this.drain(buckets[i]);
      },
    };
  }

  private forgetIdle(): void {
    const now = performance.now();
    let left = 0;
    for (const scopes of this.byName.values()) {
      for (const [scope, b] of scopes.buckets) {
        if (now - b.lastUsed > IDLE_BUCKET_MS && b.inFlight === 0 && b.queue.size === 0 && !b.timer)
          scopes.buckets.delete(scope);
      }
      left += scopes.buckets.size;
    }
    // Nothing left to forget: an idle gateway runs no timer (the next bucket made starts it again).
    if (left === 0 && this.idleTimer !== null) {
      clearInterval(this.idleTimer);
      this.idleTimer = null;
    }
  }
}
