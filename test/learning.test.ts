import { describe, expect, it } from 'vitest';
import { type LabRun, okPerSecond, runLab } from './lab.js';
import { type NamedScenario, SCENARIOS } from './lab-scenarios.js';

/**
 * The learning against stand-ins for CDF in virtual time (test/lab.ts): the real scheduler and quota tree,
 * three seeds per scenario, straight to the model and through the gateway on its defaults unless the scenario
 * configures something. Counts only; `LAB_PRINT=1` also prints the matrix with ranges over the seeds. The
 * real processes are measured by `npm run bench -- learning` (bench/RESULTS.md).
 */
const SEEDS = [1, 2, 3];
const range = (xs: number[], f: (x: number) => string) => `${f(Math.min(...xs))}-${f(Math.max(...xs))}`;
const share429 = (r: LabRun) => r.throttled / Math.max(1, r.ok + r.throttled);

/** What each scenario must show beyond the matrix's rule. */
interface Checks {
  /** Most 429s as a share of the calls CDF saw (default 3 %). */
  max429?: number;
  /** Least share of `allowed.total` after the learning period (default 90 %). */
  minAfter?: number;
  /** Useful calls after the learning period at least straight to CDF's (default yes) ... */
  atLeastDirect?: boolean;
  /** ... within this share of them (default 0.98). */
  ofDirect?: number;
  more?: (gw: LabRun[], direct: LabRun[], s: NamedScenario) => void;
}

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)] ?? Number.NaN;

const CHECKS: Record<string, Checks> = {
  'datapoints-400': {
    more: (gw, direct) => {
      const straight = Math.max(...direct.map((r) => r.ok));
      for (const r of gw) {
        expect(okPerSecond(r, 10, 20)).toBeGreaterThanOrEqual(0.85 * 400);
        expect(r.ok).toBeGreaterThanOrEqual(straight);
      }
    },
  },
  'datapoints-at-guess': { max429: 0.02 },
  'oversubscribed-3x': {
    more: (gw) => {
      for (const r of gw) expect(r.ok).toBeGreaterThanOrEqual(0.93 * (100 * 20 + 20));
    },
  },
  'labels-list-tight': {
    max429: 0.05,
    more: (gw) => {
      for (const r of gw) {
        expect(okPerSecond(r, 8, 20, 'POST /labels/list')).toBeGreaterThanOrEqual(8.5);
        expect(okPerSecond(r, 8, 20, 'POST /labels')).toBeGreaterThanOrEqual(34);
      }
    },
  },
  'functions-and-lookups': {
    more: (gw, direct) => {
      const lookups = (r: LabRun) => r.apps.get('lookup')!.latencies;
      const straight = Math.max(...direct.map((r) => p95(lookups(r))));
      for (const r of gw) expect(p95(lookups(r))).toBeLessThanOrEqual(straight + 10);
      // The calls that take two seconds get the slots they need: none of them waits behind the guess.
      for (const r of gw)
        expect(r.apps.get('runner')!.ok).toBeGreaterThanOrEqual(direct[0].apps.get('runner')!.ok * 0.9);
    },
  },
  // CDF below the guess: the first second's calls at the guessed figures meet 429s before anything is known.
  'datapoints-50': { max429: 0.04 },
  'tighter-than-documented': { max429: 0.05 },
  // Concurrency only, 200 ms a call, figures named nowhere: each probe for a slot more costs a few 429s.
  'relationships-concurrency': { max429: 0.07, ofDirect: 0.95 },
  // A limiter that resets every second lets the SDKs' retries through whole: straight to it loses nothing.
  'datapoints-400-fixed-window': { atLeastDirect: false },
  'datapoints-400-sliding-window': { atLeastDirect: false },
};

describe('learning against stand-ins for CDF (virtual time)', () => {
  const lines: string[] = [];
  for (const s of SCENARIOS) {
    it(`${s.name}: what the stand-in allows after learning, no failed call, few 429s, never slower than straight`, async () => {
      const c = CHECKS[s.name] ?? {};
      const gw: LabRun[] = [];
      const direct: LabRun[] = [];
      for (const seed of SEEDS) {
        gw.push(await runLab(s, { seed }));
        direct.push(await runLab(s, { seed, direct: true }));
      }
      if (process.env.LAB_PRINT === '1') {
        const row = (runs: LabRun[]) =>
          `${range(
            runs.map((r) => r.ok / s.seconds),
            (x) => x.toFixed(0),
          )}/s, after ${s.learning} s ${range(
            runs.map((r) => okPerSecond(r, s.learning, s.seconds)),
            (x) => x.toFixed(0),
          )}/s, 429s ${range(runs.map(share429), (x) => `${(x * 100).toFixed(1)} %`)}, failed ${range(
            runs.map((r) => r.failed),
            String,
          )}`;
        lines.push(`${s.name.padEnd(30)} gateway ${row(gw)} | direct ${row(direct)}`);
      }
      for (const r of gw) {
        expect(r.failed).toBe(0);
        expect(share429(r)).toBeLessThanOrEqual(c.max429 ?? 0.03);
        if (s.allowed.total !== undefined)
          expect(okPerSecond(r, s.learning, s.seconds)).toBeGreaterThanOrEqual((c.minAfter ?? 0.9) * s.allowed.total);
        for (const [op, allowed] of Object.entries(s.allowed))
          if (op !== 'total')
            expect(okPerSecond(r, s.learning, s.seconds, op), op).toBeGreaterThanOrEqual(0.75 * allowed);
      }
      if (c.atLeastDirect ?? true) {
        const straight = Math.max(...direct.map((r) => okPerSecond(r, s.learning, s.seconds)));
        for (const r of gw)
          expect(okPerSecond(r, s.learning, s.seconds)).toBeGreaterThanOrEqual((c.ofDirect ?? 0.98) * straight);
      }
      c.more?.(gw, direct, s);
    });
  }
  it('prints the matrix when asked (LAB_PRINT=1)', () => {
    if (lines.length > 0) console.log(`\n${lines.join('\n')}`);
    expect(lines.length).toBe(process.env.LAB_PRINT === '1' ? SCENARIOS.length : 0);
  });
});
