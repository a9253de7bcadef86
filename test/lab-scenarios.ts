/**
 * The learning lab's stand-ins for CDF (test/lab.ts): the scenarios and a matrix around them.
 * Shared by the unit tests of learning and by the lab's matrix printout (LAB_PRINT=1).
 */
import type { LabApp, LabScenario } from './lab.js';

const pick = (ids: number) => (random: () => number) => 1 + Math.floor(random() * ids);
const app = (
  name: string,
  loops: number,
  method: string,
  rest: (random: () => number) => string,
  more: Partial<LabApp> = {},
): LabApp => ({
  name,
  loops,
  next: (random) => ({ method, rest: rest(random) }),
  ...more,
});
const fixed = (rest: string) => () => rest;
const byId =
  (base: string, ids = 1000) =>
  (random: () => number) =>
    `${base}/${pick(ids)(random)}`;

export interface NamedScenario extends LabScenario {
  name: string;
  /** Useful calls per second the stand-in allows, in all and per operation ("POST /labels/list"). */
  allowed: Record<string, number>;
  /** Seconds before the figures count (the learning period). */
  learning: number;
}

const datapoints = (
  rate: number,
  concurrency: number,
  more: Partial<LabScenario['cdf']> = {},
  states = false,
): LabScenario['cdf'] => ({
  budgets: [{ name: 'datapoints', match: /^POST \/timeseries\/data$/, rate, concurrency, statesRate: states }],
  ...more,
});
const inserts = (loops = 40) => app('extractor', loops, 'POST', fixed('/timeseries/data'));

export const SCENARIOS: NamedScenario[] = [
  {
    name: 'datapoints-400',
    cdf: datapoints(400, 80),
    apps: [inserts()],
    seconds: 20,
    learning: 10,
    allowed: { total: 400 },
    follow: ['datapoints', 'learned.*'],
  },
  {
    name: 'datapoints-at-guess',
    cdf: datapoints(100, 20),
    apps: [inserts()],
    seconds: 20,
    learning: 5,
    allowed: { total: 100 },
    follow: ['datapoints', 'learned.*'],
  },
  {
    name: 'datapoints-50',
    cdf: datapoints(50, 10),
    apps: [inserts()],
    seconds: 20,
    learning: 5,
    allowed: { total: 50 },
  },
  {
    name: 'datapoints-400-fixed-window',
    cdf: {
      budgets: [{ name: 'dp', match: /^POST \/timeseries\/data$/, rate: 400, concurrency: 80, limiter: 'fixed' }],
    },
    apps: [inserts()],
    seconds: 20,
    learning: 10,
    allowed: { total: 400 },
  },
  {
    name: 'datapoints-400-sliding-window',
    cdf: {
      budgets: [{ name: 'dp', match: /^POST \/timeseries\/data$/, rate: 400, concurrency: 80, limiter: 'sliding' }],
    },
    apps: [inserts()],
    seconds: 20,
    learning: 10,
    allowed: { total: 400 },
  },
  {
    name: 'datapoints-400-stated',
    cdf: datapoints(400, 80, {}, true),
    apps: [inserts()],
    seconds: 20,
    learning: 5,
    allowed: { total: 400 },
  },
  {
    name: 'datapoints-400-other-wording',
    cdf: datapoints(400, 80, { wording: 'other' }, true),
    apps: [inserts()],
    seconds: 20,
    learning: 5,
    allowed: { total: 400 },
  },
  {
    name: 'datapoints-400-slow-calls',
    cdf: datapoints(400, 80, { latencyMs: 150 }),
    apps: [inserts(60)],
    seconds: 20,
    learning: 10,
    allowed: { total: 400 },
  },
  {
    name: 'oversubscribed-3x',
    cdf: {
      budgets: [{ name: 'assets', match: /^(GET|POST) \/assets/, rate: 100, burst: 20, concurrency: 10 }],
      latencyMs: 30,
    },
    apps: Array.from({ length: 8 }, (_, i) => app(`app-${i + 1}`, 10, 'GET', fixed('/assets'))),
    gateway: { limits: [{ name: 'assets', match: ['/assets', '/assets/**'], rate: 300, burst: 60, concurrency: 30 }] },
    seconds: 20,
    learning: 0,
    allowed: { total: 100 },
    follow: ['assets', 'learned.*'],
  },
  {
    name: 'labels-list-tight',
    cdf: {
      budgets: [
        { name: 'labels/list', match: /^POST \/labels\/list$/, rate: 10, concurrency: 4 },
        { name: 'labels', match: /^(GET|POST) \/labels/, rate: 50, concurrency: 10 },
      ],
    },
    apps: [app('lister', 10, 'POST', fixed('/labels/list')), app('creator', 20, 'POST', fixed('/labels'))],
    gateway: { limits: { labels: { rate: 50, concurrency: 10 } } },
    seconds: 20,
    learning: 8,
    allowed: { total: 50, 'POST /labels/list': 10, 'POST /labels': 40 },
    follow: ['labels', 'learned.*'],
  },
  {
    name: 'functions-and-lookups',
    cdf: { budgets: [], latencyMs: 20 },
    apps: [app('runner', 12, 'POST', fixed('/functions/1/call')), app('lookup', 1, 'POST', fixed('/datasets/byids'))],
    seconds: 10,
    learning: 2,
    allowed: {},
  },
];
