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

  it("a replica that saw a third of a shared bucket's calls cuts and aims as if it saw them all", () => {
    // The same slow start and 429: as the only gateway, as a replica told its share, as one not told.
    const alone = new CubicRate(settings, 100, 2000, 5);
    const replica = new CubicRate(settings, 100, 2000, 5);
    const blind = new CubicRate(settings, 100, 2000, 5);
    const a = pass(alone, 100, 0, 2.5, 400);
    const r = pass(replica, 100, 0, 2.5, 400 / 3);
    const b = pass(blind, 100, 0, 2.5, 400 / 3);
    const cutAlone = alone.throttled(a.rate, a.t + 20, a.t, null);
    const cutReplica = replica.throttled(r.rate, r.t + 20, r.t, null, 0, 1 / 3);
    // Not told, its third looks like CDF's whole rate: the deepest cut.
    const cutBlind = blind.throttled(b.rate, b.t + 20, b.t, null);
    expect(cutBlind).toBeCloseTo(b.rate * settings.decrease, 6);
    expect(Math.abs(cutReplica - cutAlone)).toBeLessThan(cutAlone * 0.05);
    expect(cutReplica).toBeGreaterThan(cutBlind * 1.2);
    // And it climbs back towards what all of them got through, as the lone gateway does.
    const climbAlone = pass(alone, cutAlone, a.t + 20, 4, 300).rate;
    const climbReplica = pass(replica, cutReplica, r.t + 20, 4, 100).rate;
    const climbBlind = pass(blind, cutBlind, b.t + 20, 4, 100).rate;
    expect(climbAlone).toBeGreaterThan(360);
    expect(Math.abs(climbReplica - climbAlone)).toBeLessThan(climbAlone * 0.05);
    expect(climbBlind).toBeLessThan(climbAlone * 0.75);
  });

  it('cuts in proportion to many 429s (at most to `decrease`), gently for a few at the edge', () => {
    const e = new CubicRate(settings, 100, 100, 5);
    expect(e.phase).toBe('probing');
    let { rate, t } = pass(e, 100, 0, 2, 100);
    // One 429 among a hundred answers: a tenth off.
    rate = e.throttled(rate, t + 10, t + 5, null);
    expect(rate).toBeCloseTo(90);
    // Then, once those passes are history, half of the answers refused: cut by the share, not below
    // `decrease` of the rate.
    t += 9000;
    for (let i = 0; i < 20; i++) {
      t += 10;
      rate = e.passed(rate, t, false);
      e.noted(t);
    }
    rate = e.throttled(rate, t + 10, t + 5, null);
    expect(rate).toBeGreaterThanOrEqual(90 * settings.decrease - 1e-9);
    expect(rate).toBeLessThanOrEqual(90 * 0.55);
  });

  it('never cuts under what passed (a storm overstates the share of 429s)', () => {
    const e = new CubicRate(settings, 30, 30, 1);
    let t = 0;
    // Four seconds at 30/s: CDF lets 20 a second through and, paying back the refused calls it charged,
    // refuses four for each (a share of 0.8, where 30/s over 20/s alone would refuse a third).
    for (let i = 0; i < 400; i++) {
      t += 10;
      if (i % 5 === 0) e.passed(30, t, true);
      else e.noted(t);
    }
    const cut = e.throttled(30, t + 10, t + 5, null);
    // The share alone cuts to `decrease` of 30 (10.5); four seconds of 20/s passing bound CDF's rate over 14.
    expect(cut).toBeGreaterThan(30 * settings.decrease + 3);
    expect(cut).toBeLessThan(20);
  });

  it('starts again as a guess does when CDF let nothing through since it was cut (its bucket paying back a storm)', () => {
    const e = new CubicRate(settings, 130, 130, 6.5);
    let t = 0;
    // Refused nearly everything at 130/s: cut.
    for (let i = 0; i < 100; i++) {
      t += 10;
      if (i % 20 === 0) e.passed(130, t, true);
      else e.noted(t);
    }
    const first = e.throttled(130, t + 10, t + 5, null);
    expect(first).toBeCloseTo(130 * settings.decrease, 6);
    // Two more seconds in which CDF refuses every call: no rate can be read from that.
    for (let i = 0; i < 60; i++) {
      t += 1000 / 30;
      e.noted(t);
    }
    const second = e.throttled(first, t + 10, t + 5, null);
    expect(second).toBeCloseTo(first * settings.decrease, 6);
    expect(e.phase).toBe('start');
    // Then CDF says yes again: the rate doubles each second while calls wait (not a slow probe at 2 % a step).
    const { rate: after } = pass(e, second, t + 10, 2, 40);
    expect(after).toBeGreaterThan(second * 3.5);
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

  it('lets one refusal at a figure that has held for holdMs pass as a race; a second within holdMs cuts', () => {
    const e = new AimdConcurrency(settings, 5, 5, 1);
    let limit = 5;
    let t = 0;
    for (; t <= 4000; t += 50) limit = e.passed(limit, t, true);
    expect(limit).toBe(5);
    // Refused with all five out, after five held for 4 s: a call sent as one ended (CDF still counted it).
    expect(e.throttled(limit, t, t - 20, null, 5)).toBe(5);
    for (let i = 0; i < 20; i++, t += 50) limit = e.passed(limit, t, true);
    // Refused again 1 s later: CDF has fewer slots now.
    expect(e.throttled(limit, t, t - 20, null, 5)).toBe(4);
    // Just cut, four has not held: a refusal at it cuts again at once.
    expect(e.throttled(4, t + 300, t + 280, null, 4)).toBe(3);
  });

  it('takes a stated figure as its ceiling', () => {
    const e = new AimdConcurrency(settings, 30, 30, 1);
    let limit = e.throttled(30, 10, 5, 4, 30);
    expect(limit).toBe(4);
    for (let i = 0; i < 100; i++) limit = e.passed(limit, 20 + i * 250, true);
    expect(limit).toBe(4);
    expect(e.ceiling).toBe(4);
  });

  it('refused again at its stated figure, goes under it as without one (CDF counts more calls out than ours)', () => {
    const e = new AimdConcurrency(settings, 30, 30, 1);
    expect(e.throttled(30, 10, 5, 4, 30)).toBe(4);
    // A call sent before that cut says nothing new.
    expect(e.throttled(4, 20, 8, 4, 4)).toBe(4);
    // One sent after it, refused with four out: one fewer.
    expect(e.throttled(4, 500, 400, 4, 4)).toBe(3);
    // And back up to the figure, never past it, once CDF has said yes for a while.
    let limit = 3;
    for (let i = 0; i < 100; i++) limit = e.passed(limit, 5000 + i * 250, true);
    expect(limit).toBe(4);
  });
});
