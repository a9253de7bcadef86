import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { History } from '../src/metrics/history.js';
import { Recorder } from '../src/metrics/recorder.js';
import type { MetricsSource } from '../src/metrics/source.js';
import type { Exchange } from '../src/proxy/exchange.js';

/** What the sampler reads: no buckets, a closed circuit. */
const parts = {
  quota: { buckets: () => [], queuedAt: () => 0, limits: [], learned: () => [] },
  circuit: { state: 'closed' },
  upstream: 'http://127.0.0.1:1',
  store: { status: () => ({ mode: 'memory', healthy: true }) },
  cache: null,
  log: { warn() {} },
} as unknown as MetricsSource;

const answered = {
  method: 'GET',
  family: 'assets',
  status: 200,
  app: { label: 'app-1' },
  queuedMs: 0,
} as unknown as Exchange;

describe("the dashboard's sampler", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sleeps after two quiet seconds, wakes on the next request, and shows the quiet stretch as zeros', () => {
    vi.useFakeTimers();
    const recorder = new Recorder(new Registry(), [], 10, []);
    const history = new History(recorder);
    history.start(parts);
    expect(history.asleep).toBe(false);
    recorder.requestDone(answered, 5);
    vi.advanceTimersByTime(1000); // one busy second
    expect(history.asleep).toBe(false);
    vi.advanceTimersByTime(2000); // two quiet ones
    expect(history.asleep).toBe(true);
    expect(vi.getTimerCount()).toBe(0);

    vi.advanceTimersByTime(60_000); // asleep: nothing runs, nothing is sampled
    const idle = history.toJSON();
    expect(idle.t).toHaveLength(4); // 3 samples and the quiet stretch up to now
    expect(idle.requests.total.slice(-3)).toEqual([0, 0, 0]);

    recorder.requestDone(answered, 5);
    expect(history.asleep).toBe(false);
    vi.advanceTimersByTime(1000);
    const woken = history.toJSON();
    // The quiet marker, then the second with the request in it (a rate: the fake clock does not move
    // performance.now(), so only its sign is checked).
    expect(woken.requests.total.at(-2)).toBe(0);
    expect(woken.requests.total.at(-1)).toBeGreaterThan(0);
    history.stop();
    expect(vi.getTimerCount()).toBe(0);
    recorder.requestDone(answered, 5);
    expect(history.asleep).toBe(true); // stopped for good: requests no longer wake it
  });
});
