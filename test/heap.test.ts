import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import {
  cliHeapPolicy,
  fullCollection,
  GREW,
  HEAP_GROWING_FACTOR,
  HeapPolicy,
  LOWER_AFTER_MS,
  RAISE_AT_BYTES_PER_SECOND,
  RELEASE_AFTER_MS,
  RELEASE_EVERY_MS,
} from '../src/heap.js';

/** Timers on a hand-moved clock: `advance` runs what falls due, in order; `heap` is the heap's size. */
function manualTimers() {
  let now = 0;
  const due: Array<{ at: number; run: () => void; timer: ReturnType<typeof setTimeout> }> = [];
  const sized = { heap: 20 * 2 ** 20 };
  return {
    sized,
    heapBytes: () => sized.heap,
    now: () => now,
    later(run: () => void, ms: number) {
      const timer = { unref() {} } as unknown as ReturnType<typeof setTimeout>;
      due.push({ at: now + ms, run, timer });
      return timer;
    },
    cancel(timer: ReturnType<typeof setTimeout>) {
      const i = due.findIndex((d) => d.timer === timer);
      if (i >= 0) due.splice(i, 1);
    },
    advance(ms: number) {
      const until = now + ms;
      for (;;) {
        due.sort((a, b) => a.at - b.at);
        const next = due[0];
        if (!next || next.at > until) break;
        due.shift();
        now = next.at;
        next.run();
      }
      now = until;
    },
    get pending() {
      return due.length;
    },
  };
}

/** A policy on manual timers whose collections are counted. */
function releasing() {
  const timers = manualTimers();
  let collections = 0;
  const policy = new HeapPolicy(
    () => {},
    () => collections++,
    timers,
  );
  return { timers, policy, collected: () => collections };
}

describe('heap policy (src/heap.ts)', () => {
  it('raises the growing factor while large bodies flow and gives it back to V8 after a quiet spell', () => {
    const flags: string[] = [];
    const policy = new HeapPolicy((f) => flags.push(f));
    let t = 0;
    const at = (ms: number) => {
      t += ms;
      return t;
    };
    // Small calls: nothing changes.
    for (let i = 0; i < 30; i++) policy.observe(RAISE_AT_BYTES_PER_SECOND / 10, at(1000));
    expect(flags).toEqual([]);
    // Large answers: raised once, however long they last.
    for (let i = 0; i < 30; i++) policy.observe(RAISE_AT_BYTES_PER_SECOND * 8, at(1000));
    expect(flags).toEqual([`--heap-growing-percent=${(HEAP_GROWING_FACTOR - 1) * 100}`]);
    expect(policy.factorRaised).toBe(true);
    // A short lull keeps it; a quiet spell of LOWER_AFTER_MS gives V8 its own factor back.
    policy.observe(0, at(LOWER_AFTER_MS / 2));
    expect(policy.factorRaised).toBe(true);
    policy.observe(0, at(LOWER_AFTER_MS / 2));
    expect(flags).toEqual([`--heap-growing-percent=${(HEAP_GROWING_FACTOR - 1) * 100}`, '--heap-growing-percent=0']);
    expect(policy.changes).toBe(2);
  });

  it('leaves the heap alone when node was started with its own --heap-growing-percent', () => {
    expect(cliHeapPolicy(['--heap-growing-percent=50'])).toBeNull();
    expect(cliHeapPolicy(['--max-old-space-size=512', '--heap_growing_percent=20'])).toBeNull();
    expect(cliHeapPolicy(['--max-old-space-size=512'])).toBeInstanceOf(HeapPolicy);
  });

  it('collects once when the gateway has been quiet for RELEASE_AFTER_MS, and gives V8 its factor back', () => {
    const timers = manualTimers();
    const flags: string[] = [];
    let collections = 0;
    const policy = new HeapPolicy(
      (f) => flags.push(f),
      () => collections++,
      timers,
    );
    // Large bodies raise the factor; then the last request ends (the sweeps stop: quiet).
    policy.observe(RAISE_AT_BYTES_PER_SECOND * 8, timers.now());
    expect(policy.factorRaised).toBe(true);
    policy.quiet(timers.now());
    expect(timers.pending).toBe(1);
    timers.advance(RELEASE_AFTER_MS - 1);
    expect(collections).toBe(0);
    timers.advance(1);
    expect(collections).toBe(1);
    expect(policy.factorRaised).toBe(false);
    expect(flags.at(-1)).toBe('--heap-growing-percent=0');
    // Nothing more while it stays quiet: one collection per quiet stretch, no timer left behind.
    timers.advance(10 * RELEASE_EVERY_MS);
    expect(collections).toBe(1);
    expect(timers.pending).toBe(0);
  });

  it('does not collect while traffic flows, and at most once per RELEASE_EVERY_MS under sparse traffic', () => {
    const { timers, policy, collected } = releasing();
    // Busy: a burst ends, another starts 1 s later and runs past the release time (sweeps keep observing).
    policy.observe(1000, timers.now());
    policy.quiet(timers.now());
    timers.advance(1000);
    for (let i = 0; i < 10; i++) {
      policy.observe(1000, timers.now());
      timers.advance(1000);
    }
    expect(collected()).toBe(0);
    // It ends: quiet again, and the release comes RELEASE_AFTER_MS later.
    policy.quiet(timers.now());
    timers.advance(RELEASE_AFTER_MS);
    expect(collected()).toBe(1);
    // A call every RELEASE_AFTER_MS + 2 s (each its own quiet stretch, long enough for a release): one more
    // collection only after RELEASE_EVERY_MS.
    const gap = RELEASE_AFTER_MS + 2000;
    const start = timers.now();
    for (let t = 0; t < RELEASE_EVERY_MS * 2; t += gap) {
      policy.observe(1000, timers.now());
      policy.quiet(timers.now());
      timers.advance(gap);
    }
    expect(collected()).toBeGreaterThanOrEqual(2);
    expect(collected()).toBeLessThanOrEqual(1 + Math.ceil((timers.now() - start) / RELEASE_EVERY_MS));
  });

  /** A policy whose first quiet stretch has been released. */
  const releasedOnce = () => {
    const r = releasing();
    r.policy.observe(1000, r.timers.now());
    r.policy.quiet(r.timers.now());
    r.timers.advance(RELEASE_AFTER_MS);
    expect(r.collected()).toBe(1);
    return r;
  };

  it('releases soon after a quiet stretch again when the heap grew by half since the last release', () => {
    const { timers, policy, collected } = releasedOnce();
    // A burst of new callers grows the heap; it ends 20 s later: released RELEASE_AFTER_MS into the quiet, not
    // RELEASE_EVERY_MS after the last release.
    timers.advance(1000);
    policy.observe(1000, timers.now());
    timers.sized.heap *= GREW;
    timers.advance(20_000);
    policy.observe(1000, timers.now());
    policy.quiet(timers.now());
    timers.advance(RELEASE_AFTER_MS - 1);
    expect(collected()).toBe(1);
    timers.advance(1);
    expect(collected()).toBe(2);
    // The same again without the growth: held to RELEASE_EVERY_MS.
    timers.sized.heap = 20 * 2 ** 20;
    policy.observe(1000, timers.now());
    policy.quiet(timers.now());
    timers.advance(RELEASE_AFTER_MS);
    expect(collected()).toBe(2);
    timers.advance(RELEASE_EVERY_MS);
    expect(collected()).toBe(3);
  });

  it('releases early at most once in RELEASE_EVERY_MS, so bursts every few seconds are not each collected', () => {
    const { timers, policy, collected } = releasedOnce();
    // Bursts 12 s apart, each growing the heap by half: the first is released early, the next ones wait for
    // RELEASE_EVERY_MS after the last release.
    const burst = () => {
      timers.advance(1000);
      policy.observe(1000, timers.now());
      timers.sized.heap *= GREW;
      timers.advance(3000);
      policy.observe(1000, timers.now());
      policy.quiet(timers.now());
      timers.advance(RELEASE_AFTER_MS);
    };
    burst();
    expect(collected()).toBe(2);
    const early = timers.now();
    burst();
    burst();
    expect(collected()).toBe(2);
    timers.advance(early + RELEASE_EVERY_MS - 1 - timers.now());
    expect(collected()).toBe(2);
    timers.advance(1);
    expect(collected()).toBe(3);
  });

  it('never collects after close, and a policy without a collector arms nothing', () => {
    const { timers, policy, collected } = releasing();
    policy.quiet(timers.now());
    policy.close();
    expect(timers.pending).toBe(0);
    timers.advance(RELEASE_AFTER_MS * 2);
    expect(collected()).toBe(0);
    const without = new HeapPolicy(() => {}, null, timers);
    without.quiet(timers.now());
    expect(timers.pending).toBe(0);
  });

  it("takes V8's full collection from a fresh context, and it collects the old generation's garbage", () => {
    const collect = fullCollection();
    expect(collect).toBeTypeOf('function');
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    // Garbage old enough to be in the old generation, then a full collection: most of it goes.
    let kept: Array<Array<{ i: number; s: string }>> | null = [];
    for (let r = 0; r < 20; r++) kept.push(Array.from({ length: 20_000 }, (_, i) => ({ i, s: `x${i}-${r}` })));
    collect?.();
    const withIt = getHeapStatistics().used_heap_size;
    kept = null;
    collect?.();
    const freed = withIt - getHeapStatistics().used_heap_size;
    expect(freed).toBeGreaterThan(10 * 2 ** 20);
  });
});
