import { describe, expect, it } from 'vitest';
import { type AppRef, MemoryStore, QueueRejected, Scheduler } from '../src/quota/index.js';
import { ManualClock } from './lab.js';
import { quotaLimitOf } from './limits.js';

/**
 * The scheduler on a clock the test moves: its per-bucket timer, its deadline sweep and its idle timer fire
 * when the clock says, and every assertion is on counts and order.
 */
const app = (id: string): AppRef => ({ id, identity: id, weight: 1, priority: 0, label: id });
const queue = { maxWaitMs: 30_000, maxQueued: 100 };

function setup(rate: number, concurrency = 100) {
  const clock = new ManualClock();
  const scheduler = new Scheduler(new MemoryStore(), queue, null, 1000, clock);
  const bucket = scheduler.bucket(quotaLimitOf({ name: 'b', rate, burst: rate, concurrency }), 'p');
  return { clock, scheduler, bucket };
}

describe('scheduler (injected clock)', () => {
  it("admits a waiter when its bucket's timer says a token is there, not before", async () => {
    const { clock, scheduler, bucket } = setup(10);
    // The burst (10, less a 50 ms reserve: 9.5) goes at once.
    for (let i = 0; i < 9; i++) (await scheduler.acquire([bucket], app('a'), 60_000)).release();
    const admitted: number[] = [];
    const waiters = [0, 1, 2].map(() =>
      scheduler.acquire([bucket], app('a'), 60_000).then((lease) => {
        admitted.push(clock.now());
        lease.release();
      }),
    );
    await clock.runUntil(10);
    expect(admitted).toEqual([]);
    expect(scheduler.queuedCount()).toBe(3);
    await clock.runUntil(1000);
    await Promise.all(waiters);
    // One token every 100 ms from half a token: at about 50, 150 and 250 ms.
    expect(admitted).toHaveLength(3);
    expect(admitted[0]).toBeGreaterThanOrEqual(40);
    expect(admitted[0]).toBeLessThanOrEqual(60);
    expect(admitted[2] - admitted[0]).toBeGreaterThanOrEqual(190);
    expect(admitted[2] - admitted[0]).toBeLessThanOrEqual(210);
    scheduler.close();
  });

  it('serves the queue fairly between apps as tokens come, one turn each', async () => {
    const { clock, scheduler, bucket } = setup(10);
    for (let i = 0; i < 9; i++) (await scheduler.acquire([bucket], app('warm'), 60_000)).release();
    const order: string[] = [];
    const waiting = [
      ...[1, 2, 3, 4].map(() => ['greedy', scheduler.acquire([bucket], app('greedy'), 60_000)] as const),
      ...[1, 2].map(() => ['light', scheduler.acquire([bucket], app('light'), 60_000)] as const),
    ].map(([who, p]) =>
      p.then((l) => {
        order.push(who);
        l.release();
      }),
    );
    await clock.runUntil(2000);
    await Promise.all(waiting);
    expect(order).toEqual(['greedy', 'light', 'greedy', 'light', 'greedy', 'greedy']);
    scheduler.close();
  });

  it('rejects a waiter at its deadline at the next sweep (every 25 ms), and stops sweeping once nothing waits', async () => {
    const { clock, scheduler, bucket } = setup(1);
    (await scheduler.acquire([bucket], app('a'), 60_000)).release();
    let rejectedAt = -1;
    const waiter = scheduler.acquire([bucket], app('a'), 300).catch((err: unknown) => {
      expect(err).toBeInstanceOf(QueueRejected);
      expect((err as QueueRejected).reason).toBe('timeout');
      rejectedAt = clock.now();
    });
    await clock.runUntil(299);
    expect(rejectedAt).toBe(-1);
    await clock.runUntil(400);
    await waiter;
    expect(rejectedAt).toBeGreaterThanOrEqual(300);
    expect(rejectedAt).toBeLessThanOrEqual(325);
    expect(scheduler.queuedCount()).toBe(0);
    scheduler.close();
  });

  it('drops a waiter whose app went away at the next sweep, taking no token', async () => {
    const { clock, scheduler, bucket } = setup(1);
    (await scheduler.acquire([bucket], app('a'), 60_000)).release();
    const gone = { aborted: false, addEventListener() {}, removeEventListener() {} };
    const reason = scheduler.acquire([bucket], app('a'), 60_000, gone).catch((err: QueueRejected) => err.reason);
    await clock.runUntil(100);
    gone.aborted = true;
    await clock.runUntil(130);
    expect(await reason).toBe('aborted');
    const tokens = bucket.tokensAt(clock.now());
    await clock.runUntil(2000);
    expect(bucket.tokensAt(clock.now())).toBeGreaterThan(tokens);
    scheduler.close();
  });

  it('says a bucket had demand for its tokens or its slots only while calls recently waited for them', async () => {
    const { clock, scheduler, bucket } = setup(10, 1);
    const first = await scheduler.acquire([bucket], app('a'), 60_000);
    expect(scheduler.demandOf(bucket, clock.now())).toEqual({ rate: false, slots: false });
    const second = scheduler.acquire([bucket], app('a'), 60_000);
    expect(scheduler.demandOf(bucket, clock.now())).toEqual({ rate: false, slots: true });
    first.release();
    (await second).release();
    await clock.runUntil(2000);
    expect(scheduler.demandOf(bucket, clock.now())).toEqual({ rate: false, slots: false });
    scheduler.close();
  });

  it('stamps buckets with its clock and forgets idle ones after ten minutes, then stops its idle timer', async () => {
    const { clock, scheduler, bucket } = setup(10);
    await clock.runUntil(5 * 60_000);
    expect(bucket.refilledAt).toBe(0);
    const later = scheduler.bucket(quotaLimitOf({ name: 'c', rate: 5, concurrency: 1 }), 'p');
    expect(later.refilledAt).toBe(5 * 60_000);
    expect(scheduler.bucketsKept).toBe(2);
    await clock.runUntil(11 * 60_000);
    expect(scheduler.bucketsKept).toBe(1);
    await clock.runUntil(17 * 60_000);
    expect(scheduler.bucketsKept).toBe(0);
    // A new bucket after the timer stopped starts it again.
    scheduler.bucket(quotaLimitOf({ name: 'd', rate: 5, concurrency: 1 }), 'p');
    await clock.runUntil(28 * 60_000);
    expect(scheduler.bucketsKept).toBe(0);
    scheduler.close();
  });
});
