import { describe, expect, it } from 'vitest';
import { AimdConcurrency, CubicRate, type EstimatorSettings } from '../src/quota/index.js';

/**
 * The estimators on their own, with the time passed in: counts and figures, never how long anything took.
 */
const settings: EstimatorSettings = { intervalMs: 250, decrease: 0.35, increase: 0.02, holdMs: 3000 };

/** Feeds `perSecond` passed answers a second for `seconds` from `from`, returning the rate and the time after. */
function pass(
  e: CubicRate,
  rate: number,
  from: number,
  seconds: number,
  perSecond: number,
  demand = true,
): { rate: number; t: number } {
  const step = 1000 / perSecond;
  let t = from;
  for (let i = 0; i < seconds * perSecond; i++) {
    t += step;
    rate = e.passed(rate, t, demand);
  }
  return { rate, t };
}

describe('CubicRate (a rate found from the answers)', () => {
  it('doubles about every second while calls wait and CDF says yes (slow start), and never rises without demand', () => {
    const e = new CubicRate(settings, 100, 2000, 5);
    expect(e.phase).toBe('start');
    let { rate, t } = pass(e, 100, 0, 2, 200);
    expect(rate).toBeGreaterThan(380);
    expect(rate).toBeLessThan(420);
    const before = rate;
    ({ rate, t } = pass(e, rate, t, 5, 200, false));
    expect(rate).toBe(before);
    // Never past its ceiling.
    ({ rate } = pass(e, rate, t, 5, 200));
    expect(rate).toBe(2000);
  });

  it('ends slow start on the first 429 with a cut to what passed before it, then climbs back to just under where CDF pushed back, then probes past it', () => {
    const e = new CubicRate(settings, 100, 2000, 5);
    // Two and a half seconds of slow start: everything passed, CDF's burst hid how far past 400/s it went.
    let { rate, t } = pass(e, 100, 0, 2.5, 400);
    const top = rate;
    expect(top).toBeGreaterThan(500);
    rate = e.throttled(rate, t + 20, t, null);
    expect(e.phase).toBe('probing');
    // At least `decrease` of it, at most a tenth off, and about the lower bound of what passed (~400 * 0.97).
    expect(rate).toBeGreaterThanOrEqual(top * settings.decrease);
    expect(rate).toBeLessThanOrEqual(top * 0.9);
    const cut = rate;
    // A 429 to a call sent before the cut (or within an interval after it) cuts nothing more.
    expect(e.throttled(rate, t + 30, t + 25, null)).toBe(cut);
    expect(e.throttled(rate, t + 200, t + 100, null)).toBe(cut);
    // It climbs back: fast at first, slowly near where CDF pushed back, then past it in small steps.
    const a = pass(e, rate, t + 20, 1, 300);
    expect(a.rate).toBeGreaterThan(cut);
    const b = pass(e, a.rate, a.t, 10, 300);
    expect(b.rate).toBeGreaterThan(a.rate);
    const steps: number[] = [];
    let r = b.rate;
    let tt = b.t;
    for (let i = 0; i < 20; i++) {
      tt += 250;
      const next = e.passed(r, tt, true);
      steps.push(next - r);
      r = next;
    }
    for (const s of steps) expect(s).toBeLessThanOrEqual(settings.increase * top + 1e-9);
  });

  it('cuts in proportion to many 429s (at most to `decrease`), gently for a few at the edge', () => {
    const e = new CubicRate(settings, 100, 100, 5);
    expect(e.phase).toBe('probing');
    let { rate, t } = pass(e, 100, 0, 2, 100);
    // One 429 among a hundred answers: a tenth off.
    rate = e.throttled(rate, t + 10, t + 5, null);
    expect(rate).toBeCloseTo(90);
    // Then half of the answers refused: cut by the share, not below `decrease` of the rate.
    t += 600;
    for (let i = 0; i < 20; i++) {
      t += 10;
      rate = e.passed(rate, t, false);
      e.noted(t);
    }
    rate = e.throttled(rate, t + 10, t + 5, null);
    expect(rate).toBeGreaterThanOrEqual(90 * settings.decrease - 1e-9);
    expect(rate).toBeLessThanOrEqual(90 * 0.55);
  });

  it('holds a stated figure as a ceiling: just under it, never probed past', () => {
    const e = new CubicRate(settings, 200, 200, 5);
    let rate = e.throttled(200, 10, 5, 60);
    expect(rate).toBeCloseTo(58.8);
    expect(e.ceiling).toBeCloseTo(58.8);
    ({ rate } = pass(e, rate, 20, 30, 100));
    expect(rate).toBeLessThanOrEqual(58.8 + 1e-9);
  });

  it('aims lower when CDF refuses again at or under where it refused before (fast convergence)', () => {
    const e = new CubicRate(settings, 100, 100, 5);
    let { rate, t } = pass(e, 100, 0, 2, 100);
    t += 10;
    rate = e.throttled(rate, t, t - 5, null);
    ({ rate, t } = pass(e, rate, t, 10, 100));
    const peak = rate;
    expect(peak).toBeGreaterThan(96);
    t += 10;
    rate = e.throttled(rate, t, t - 5, null);
    ({ rate, t } = pass(e, rate, t, 4, 100));
    // Three seconds later it has not gone back above where it was refused the second time.
    expect(rate).toBeLessThan(peak);
  });
});

describe('AimdConcurrency (calls at once found from the answers)', () => {
  it('grows by half a step while calls wait for slots, by one after the first 429, never without demand', () => {
    const e = new AimdConcurrency(settings, 10, 200, 1);
    let limit = 10;
    let t = 0;
    const at = (ms: number) => {
      t += ms;
      return t;
    };
    limit = e.passed(limit, at(250), true);
    expect(limit).toBe(15);
    limit = e.passed(limit, at(100), true);
    expect(limit).toBe(15);
    limit = e.passed(limit, at(250), false);
    expect(limit).toBe(15);
    // A concurrency 429 with 14 of ours out: CDF's figure is below that, one fewer.
    limit = e.throttled(limit, at(10), t - 5, null, 14);
    expect(limit).toBe(13);
    // Refused again soon after: a quarter fewer than were out.
    limit = e.throttled(limit, at(300), t - 5, null, 13);
    expect(limit).toBe(9);
    // Held under where it was refused for holdMs, then one more slot per interval.
    for (let i = 0; i < 8; i++) limit = e.passed(limit, at(250), true);
    expect(limit).toBeLessThan(13);
    for (let i = 0; i < 16; i++) limit = e.passed(limit, at(250), true);
    expect(limit).toBeGreaterThanOrEqual(13);
    expect(limit).toBeLessThanOrEqual(13 + 16);
  });

  it('takes a stated figure as its ceiling', () => {
    const e = new AimdConcurrency(settings, 30, 30, 1);
    let limit = e.throttled(30, 10, 5, 4, 30);
    expect(limit).toBe(4);
    for (let i = 0; i < 100; i++) limit = e.passed(limit, 20 + i * 250, true);
    expect(limit).toBe(4);
    expect(e.ceiling).toBe(4);
  });
});
