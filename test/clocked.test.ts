import { describe, expect, it } from 'vitest';
import type { CircuitConfig } from '../src/config/index.js';
import { BufferBudget, SPARE_KEEP_MS, uploadCapacity } from '../src/proxy/buffer-budget.js';
import type { Exchange } from '../src/proxy/exchange.js';
import { IdleWatchdog } from '../src/proxy/watchdog.js';
import { RetryBudget } from '../src/retry/budget.js';
import { CircuitBreaker, type CircuitState } from '../src/retry/circuit.js';
import { SlidingCounter } from '../src/retry/window.js';

// Logic that takes a clock, driven by a clock of the test's own: no sleeping, no timing assertions.

describe('SlidingCounter', () => {
  it('counts over the window and forgets what slid out of it', () => {
    const c = new SlidingCounter(1000, 2);
    c.add(0, 0);
    c.add(0, 450, 2);
    c.add(1, 450);
    expect(c.sum(0, 500)).toBe(3);
    expect(c.sum(1, 999)).toBe(1);
    // The slice of t=0 leaves at t=1000, the one of t=450 at t=1400 (slices of 100 ms).
    expect(c.sum(0, 1050)).toBe(2);
    expect(c.sum(0, 1450)).toBe(0);
    expect(c.sum(1, 1450)).toBe(0);
  });

  it('survives long gaps and clock values far ahead', () => {
    const c = new SlidingCounter(1000, 1);
    c.add(0, 10);
    expect(c.sum(0, 1_000_000)).toBe(0);
    c.add(0, 1_000_001);
    expect(c.sum(0, 1_000_002)).toBe(1);
  });

  it('reset() starts the window afresh at the time given, and it keeps sliding after', () => {
    const c = new SlidingCounter(1000, 1);
    c.add(0, 0, 5);
    c.reset(200);
    expect(c.sum(0, 200)).toBe(0);
    c.add(0, 300);
    expect(c.sum(0, 1200)).toBe(1);
    expect(c.sum(0, 1350)).toBe(0);
  });
});

describe('RetryBudget', () => {
  it('allows the floor of 10 retries per second of window when first attempts are few', () => {
    const b = new RetryBudget(0.2, 1000);
    b.recordFirst(0);
    let allowed = 0;
    for (let i = 0; i < 50; i++) if (b.tryRetry(10)) allowed++;
    expect(allowed).toBe(10);
  });

  it('allows retries up to the ratio of first attempts, then again once the window slid', () => {
    const b = new RetryBudget(0.2, 10_000);
    for (let i = 0; i < 1000; i++) b.recordFirst(0);
    let allowed = 0;
    for (let i = 0; i < 500; i++) if (b.tryRetry(100)) allowed++;
    expect(allowed).toBe(200);
    expect(b.tryRetry(5000)).toBe(false);
    // Past the window the first attempts and the retries are both forgotten: the floor applies again.
    let later = 0;
    for (let i = 0; i < 500; i++) if (b.tryRetry(20_500)) later++;
    expect(later).toBe(100);
  });
});

const CONFIG: CircuitConfig = { enabled: true, windowMs: 10_000, minCalls: 20, failureRatio: 0.5, openMs: 5000 };

function breaker(config: Partial<CircuitConfig> = {}) {
  const changes: CircuitState[] = [];
  const c = new CircuitBreaker({ ...CONFIG, ...config }, (s) => changes.push(s));
  return { c, changes };
}

function fail(c: CircuitBreaker, n: number, now: number): void {
  for (let i = 0; i < n; i++) c.record(false, now);
}

describe('CircuitBreaker', () => {
  it('stays closed below minCalls, opens at the failure ratio', () => {
    const { c, changes } = breaker();
    fail(c, 19, 0);
    expect(c.state).toBe('closed');
    fail(c, 1, 100);
    expect(c.state).toBe('open');
    expect(changes).toEqual(['open']);
    expect(c.allow(200)).toBe(false);
    expect(c.retryAfterSec(200)).toBe(5);
  });

  it('does not open on a ratio below the threshold', () => {
    const { c } = breaker();
    for (let i = 0; i < 40; i++) c.record(i % 3 !== 0, i * 10);
    expect(c.state).toBe('closed');
  });

  it('lets one probe through after openMs, closes on its success, reopens on its failure', () => {
    const { c, changes } = breaker();
    fail(c, 20, 0);
    expect(c.allow(4999)).toBe(false);
    expect(c.allow(5000)).toBe(true);
    expect(c.state).toBe('half-open');
    expect(c.allow(5001)).toBe(false); // one probe at a time
    c.record(false, 5100);
    expect(c.state).toBe('open');
    expect(c.allow(10_099)).toBe(false);
    expect(c.allow(10_100)).toBe(true);
    c.record(true, 10_200);
    expect(c.state).toBe('closed');
    expect(changes).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });

  it('an abandoned probe frees the probe slot', () => {
    const { c } = breaker();
    fail(c, 20, 0);
    expect(c.allow(5000)).toBe(true);
    c.abandon();
    expect(c.allow(5001)).toBe(true);
  });

  it('keeps sliding after it closed again: failures older than the window are forgotten (issue #13)', () => {
    const { c } = breaker();
    fail(c, 20, 0);
    expect(c.allow(5000)).toBe(true);
    c.record(true, 5000);
    expect(c.state).toBe('closed');
    // 15 failures, then 11 s later 5 more: only 5 calls are in the 10 s window, under minCalls.
    fail(c, 15, 6000);
    expect(c.state).toBe('closed');
    fail(c, 5, 17_000);
    expect(c.state).toBe('closed');
    // Within one window, 20 failing calls do open it.
    fail(c, 15, 17_500);
    expect(c.state).toBe('open');
  });

  it('does nothing when disabled', () => {
    const { c } = breaker({ enabled: false });
    fail(c, 100, 0);
    expect(c.state).toBe('closed');
    expect(c.allow(1)).toBe(true);
  });
});

describe('IdleWatchdog', () => {
  interface FakeSocket {
    bytesWritten: number;
    bytesRead: number;
    destroyed: boolean;
    destroy(): void;
  }
  function fakeExchange(opts: { answering: boolean }) {
    const socket: FakeSocket = {
      bytesWritten: 0,
      bytesRead: 0,
      destroyed: false,
      destroy() {
        this.destroyed = true;
      },
    };
    const ex = {
      uploading: !opts.answering,
      req: { complete: false },
      // A stalled body with nothing sent yet gets a best-effort 408 first.
      res: { headersSent: opts.answering, writableFinished: false, socket, writeHead() {}, end() {} },
      requestId: 'r1',
      status: 0,
      abort: { abort() {} },
      errorCode: undefined as string | undefined,
      error: undefined as string | undefined,
    };
    return { ex, socket };
  }

  it('ends an answer after idleMs without 1 KiB of progress, never before 3/4 of it', () => {
    const stalled: string[] = [];
    const w = new IdleWatchdog(8000, (_ex, what) => stalled.push(what));
    const { ex, socket } = fakeExchange({ answering: true });
    w.add(ex as unknown as Exchange, 0);
    w.sweep(0);
    // Progress: 64 KiB per sweep keeps it alive however long it takes.
    for (let t = 1000; t <= 20_000; t += 1000) {
      socket.bytesWritten += 65_536;
      w.sweep(t);
    }
    expect(socket.destroyed).toBe(false);
    // A trickle of 10 bytes per sweep is no progress.
    let ended = -1;
    for (let t = 21_000; t <= 40_000 && ended < 0; t += 1000) {
      socket.bytesWritten += 10;
      w.sweep(t);
      if (socket.destroyed) ended = t;
    }
    expect(ended - 20_000).toBeGreaterThanOrEqual(6000);
    expect(ended - 20_000).toBeLessThanOrEqual(8000);
    expect(stalled).toEqual(['response']);
    expect(ex.errorCode).toBe('CDFGW_RESPONSE_STALLED');
    expect(w.size).toBe(0);
    w.stop();
  });

  it('ends only the stalled answers among several in flight, and forgets those whose record stage ran', () => {
    const w = new IdleWatchdog(8000);
    const five = Array.from({ length: 5 }, () => fakeExchange({ answering: true }));
    const watched = five.map(({ ex }) => w.add(ex as unknown as Exchange, 0));
    w.delete(watched[4]);
    w.delete(watched[4]); // a second record stage changes nothing
    expect(w.size).toBe(4);
    for (let t = 0; t <= 10_000; t += 1000) {
      // 0 and 2 keep moving, 1 and 3 stall.
      five[0].socket.bytesWritten += 4096;
      five[2].socket.bytesWritten += 4096;
      w.sweep(t);
    }
    expect(five.map(({ socket }) => socket.destroyed)).toEqual([false, true, false, true, false]);
    expect(w.ended).toBe(2);
    expect(w.size).toBe(2);
    w.delete(watched[0]);
    w.delete(watched[2]);
    expect(w.size).toBe(0);
    w.stop();
  });

  it('does not count time spent waiting for quota or for CDF, and watches a streamed body by bytes read', () => {
    const w = new IdleWatchdog(8000);
    const { ex, socket } = fakeExchange({ answering: false });
    ex.uploading = false; // queued: nothing is read from the app yet
    w.add(ex as unknown as Exchange, 0);
    for (let t = 0; t <= 60_000; t += 1000) w.sweep(t);
    expect(socket.destroyed).toBe(false);
    ex.uploading = true; // now it streams upstream, and stops
    for (let t = 61_000; t <= 70_000; t += 1000) w.sweep(t);
    expect(ex.errorCode).toBe('CDFGW_BODY_STALLED');
    expect(ex.status).toBe(408);
    expect(w.size).toBe(0);
    w.stop();
  });
});

describe('BufferBudget upload buffers', () => {
  const MiB = 2 ** 20;

  it('rounds capacities up to a quarter of their power of two, from 64 KiB', () => {
    expect(uploadCapacity(1)).toBe(64 * 1024);
    expect(uploadCapacity(4 * MiB)).toBe(4 * MiB);
    expect(uploadCapacity(4 * MiB + 1)).toBe(5 * MiB);
    expect(uploadCapacity(7 * MiB - 5)).toBe(7 * MiB);
    for (const n of [65_536, 100_000, 3_000_000, 8 * MiB - 1]) {
      expect(uploadCapacity(n)).toBeGreaterThanOrEqual(n);
      expect(uploadCapacity(n)).toBeLessThanOrEqual(n * 1.25);
    }
  });

  it('reuses a buffer given back whole, and never one lent to a retry', () => {
    const budget = new BufferBudget(20 * MiB);
    const a = budget.takeUploadBuffer(4 * MiB) as Buffer;
    expect(a.length).toBe(4 * MiB);
    expect(budget.used).toBe(4 * MiB);
    budget.give(a.length, a);
    expect(budget.used).toBe(0);
    expect(budget.spareUploadBytes).toBe(4 * MiB);
    // The same capacity gets the same buffer back; another capacity gets a new one.
    // (Buffers compared by identity as booleans: vitest would print megabytes on a failure.)
    expect(budget.takeUploadBuffer(4 * MiB - 100) === a).toBe(true);
    expect(budget.spareUploadBytes).toBe(0);
    const b = budget.takeUploadBuffer(3 * MiB) as Buffer;
    expect(b === a).toBe(false);
    budget.give(a.length, null); // lent to a retry: dropped
    budget.give(b.length, b);
    expect(budget.used).toBe(0);
    expect(budget.spareUploadBytes).toBe(3 * MiB);
    expect(budget.takeUploadBuffer(4 * MiB) === a).toBe(false);
  });

  it('counts spare buffers against the limit and drops them when a body needs the room', () => {
    const budget = new BufferBudget(10 * MiB);
    const bufs = [0, 1].map(() => budget.takeUploadBuffer(4 * MiB) as Buffer);
    // A third does not fit: it streams instead.
    expect(budget.takeUploadBuffer(4 * MiB)).toBeNull();
    for (const b of bufs) budget.give(b.length, b);
    expect(budget.spareUploadBytes).toBe(8 * MiB);
    // 6 MiB for a body read whole: one spare buffer goes.
    expect(budget.tryTake(6 * MiB)).toBe(true);
    expect(budget.spareUploadBytes).toBe(4 * MiB);
    expect(budget.used + budget.spareUploadBytes).toBeLessThanOrEqual(10 * MiB);
    // Given back while the budget is full of other bodies: not kept.
    const c = budget.takeUploadBuffer(4 * MiB) as Buffer;
    expect(budget.tryTake(2 * MiB)).toBe(false);
    budget.give(6 * MiB);
    budget.give(c.length, c);
    expect(budget.spareUploadBytes).toBe(4 * MiB);
    budget.dropSpare();
    expect(budget.spareUploadBytes).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('drops spare buffers SPARE_KEEP_MS after the last upload took one, unless uploads come back', () => {
    let now = 0;
    const timers: { at: number; run: () => void }[] = [];
    const budget = new BufferBudget(
      20 * MiB,
      { now: () => now },
      (run, ms) => {
        timers.push({ at: now + ms, run });
        return { unref() {} } as ReturnType<typeof setTimeout>;
      },
      () => timers.splice(0),
    );
    const fire = (until: number) => {
      now = until;
      for (const t of timers.splice(0).filter((t) => t.at <= until)) t.run();
    };
    const a = budget.takeUploadBuffer(2 * MiB) as Buffer;
    budget.give(a.length, a);
    now = 5_000;
    budget.quiet();
    budget.quiet(); // one timer at a time
    expect(timers).toHaveLength(1);
    expect(timers[0].at).toBe(SPARE_KEEP_MS);
    // An upload comes back before the timer: the spare stays, and the next quiet moment decides.
    now = 10_000;
    const again = budget.takeUploadBuffer(2 * MiB) as Buffer;
    expect(again === a).toBe(true);
    budget.give(again.length, again);
    fire(SPARE_KEEP_MS);
    expect(budget.spareUploadBytes).toBe(2 * MiB);
    budget.quiet();
    expect(timers[0].at).toBe(10_000 + SPARE_KEEP_MS);
    fire(10_000 + SPARE_KEEP_MS);
    expect(budget.spareUploadBytes).toBe(0);
    // Nothing spare: no timer.
    budget.quiet();
    expect(timers).toHaveLength(0);
    // Closing drops the spares and the pending timer.
    const b = budget.takeUploadBuffer(2 * MiB) as Buffer;
    budget.give(b.length, b);
    budget.quiet();
    expect(timers).toHaveLength(1);
    budget.close();
    expect(timers).toHaveLength(0);
    expect(budget.spareUploadBytes).toBe(0);
  });

  it('an idle watchdog says so once its last sweep finds nothing in flight', () => {
    const w = new IdleWatchdog(8000);
    let quiet = 0;
    w.onQuiet = () => quiet++;
    const ex = {
      uploading: false,
      req: { complete: true },
      res: { headersSent: false, writableFinished: false, socket: null },
    } as unknown as Exchange;
    const watched = w.add(ex, 0);
    w.sweep(1000);
    expect(quiet).toBe(0);
    w.delete(watched);
    w.sweep(2000);
    expect(quiet).toBe(1);
    w.stop();
  });
});
