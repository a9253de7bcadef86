/**
 * The learning lab's stand-ins for CDF (test/lab.ts): the scenarios and a matrix around them.
 * Shared by the unit tests of learning and by the lab's matrix printout (LAB_PRINT=1).
 */
import type { LabApp, LabBudget, LabScenario } from './lab.js';

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

/** CDF's documented assets tree (docs/cdf-limits.md), its figures times `scale`: rate 429s name no figure. */
const assetsTree = (scale = 1): LabBudget[] => {
  const level = (name: string, match: RegExp, project: [number, number], identity: [number, number]): LabBudget[] => [
    { name, match, rate: project[0] * scale, concurrency: Math.round(project[1] * scale) },
    {
      name: `${name}/identity`,
      match,
      rate: identity[0] * scale,
      concurrency: Math.round(identity[1] * scale),
      per: 'identity',
    },
  ];
  return [
    ...level('assets/aggregate', /^POST \/assets\/aggregate$/, [15, 7], [12, 5]),
    ...level('assets/analytical', /^(POST \/assets\/(list|search|aggregate)|GET \/assets)$/, [30, 15], [23, 12]),
    ...level('assets/crud', /^(POST \/assets(\/byids|\/update|\/delete)?|GET \/assets\/\d+)$/, [170, 30], [130, 23]),
    ...level('assets', /^(GET|POST) \/assets/, [200, 40], [150, 30]),
  ];
};

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
    cdf: { budgets: [], latencyMs: 20, slow: [{ match: /^POST \/functions\/\d+\/call$/, ms: 2000 }] },
    apps: [app('runner', 12, 'POST', fixed('/functions/1/call')), app('lookup', 1, 'POST', fixed('/datasets/byids'))],
    seconds: 10,
    learning: 2,
    allowed: {},
    follow: ['other.*'],
  },
  {
    name: 'oversubscribed-3x-stated',
    cdf: {
      budgets: [
        { name: 'assets', match: /^(GET|POST) \/assets/, rate: 100, burst: 20, concurrency: 10, statesRate: true },
      ],
      latencyMs: 30,
    },
    apps: Array.from({ length: 8 }, (_, i) => app(`app-${i + 1}`, 10, 'GET', fixed('/assets'))),
    gateway: { limits: [{ name: 'assets', match: ['/assets', '/assets/**'], rate: 300, burst: 60, concurrency: 30 }] },
    seconds: 20,
    learning: 2,
    allowed: { total: 100 },
  },
  {
    name: 'raised-documented',
    cdf: { budgets: assetsTree(2) },
    apps: [app('ui', 60, 'POST', fixed('/assets/byids')), app('sync', 10, 'POST', fixed('/assets/list'))],
    gateway: { adaptive: { probeAbove: true } },
    follow: ['assets*'],
    seconds: 20,
    learning: 10,
    // One identity each: CDF's per-identity figures bind (CRUD 130, Analytical 23, times two).
    allowed: { total: 306, 'POST /assets/byids': 260, 'POST /assets/list': 46 },
  },
  {
    name: 'tighter-than-documented',
    cdf: { budgets: assetsTree(0.5) },
    apps: [app('ui', 60, 'POST', fixed('/assets/byids')), app('sync', 10, 'POST', fixed('/assets/list'))],
    follow: ['assets*', 'learned.*'],
    seconds: 20,
    learning: 10,
    // One identity each: CDF's per-identity figures bind (CRUD 130, Analytical 23, halved).
    allowed: { total: 76.5, 'POST /assets/byids': 65, 'POST /assets/list': 11.5 },
  },
  {
    name: 'two-tight-endpoints',
    cdf: {
      budgets: [
        { name: 'byids', match: /^POST \/assets\/byids$/, rate: 10, concurrency: 4 },
        { name: 'search', match: /^POST \/assets\/search$/, rate: 5, concurrency: 2 },
        ...assetsTree(),
      ],
    },
    apps: [
      app('lookup', 20, 'POST', fixed('/assets/byids')),
      app('search', 10, 'POST', fixed('/assets/search')),
      app('ui', 20, 'GET', byId('/assets')),
    ],
    seconds: 20,
    learning: 8,
    // The ui is one identity: its CRUD per identity (130) binds.
    allowed: { 'POST /assets/byids': 10, 'POST /assets/search': 5, 'GET /assets/{id}': 130 },
  },
  {
    name: 'api-at-real-figure',
    cdf: {
      budgets: [
        { name: 'events/byids', match: /^POST \/events\/byids$/, rate: 15 },
        { name: 'events', match: /^(GET|POST) \/events/, rate: 120, concurrency: 30 },
      ],
    },
    apps: [app('writer', 20, 'POST', fixed('/events')), app('reader', 10, 'POST', fixed('/events/byids'))],
    gateway: { limits: { events: { rate: 120, concurrency: 30 } } },
    seconds: 20,
    learning: 8,
    allowed: { total: 120, 'POST /events/byids': 15, 'POST /events': 105 },
  },
  {
    name: 'sequences-stated',
    cdf: {
      budgets: [{ name: 'sequences', match: /^(GET|POST) \/sequences/, rate: 120, concurrency: 15, statesRate: true }],
      latencyMs: 100,
    },
    apps: [app('lister', 10, 'POST', fixed('/sequences/list')), app('reader', 20, 'POST', fixed('/sequences/byids'))],
    seconds: 20,
    learning: 5,
    allowed: { total: 120 },
  },
  {
    name: 'relationships-concurrency',
    cdf: {
      budgets: [
        { name: 'relationships', match: /^(GET|POST) \/relationships/, concurrency: 5, statesConcurrency: false },
      ],
      latencyMs: 200,
    },
    apps: [app('reader', 20, 'POST', fixed('/relationships/list'))],
    follow: ['relationships', 'learned.*'],
    seconds: 20,
    learning: 8,
    allowed: { total: 25 },
  },
  {
    name: 'per-identity',
    cdf: {
      budgets: [
        { name: 'ts/identity', match: /^(GET|POST) \/timeseries(\/list|\/byids)?$/, rate: 60, per: 'identity' },
        { name: 'ts', match: /^(GET|POST) \/timeseries(\/list|\/byids)?$/, rate: 150 },
      ],
    },
    apps: ['a', 'b', 'c'].map((n) => app(`app-${n}`, 15, 'POST', fixed('/timeseries/list'))),
    seconds: 20,
    learning: 8,
    allowed: { total: 150 },
  },
  {
    name: 'two-gateways',
    cdf: datapoints(400, 80),
    apps: [inserts(40)],
    gateways: 2,
    seconds: 20,
    learning: 10,
    allowed: { total: 400 },
  },
  {
    name: 'working-day',
    cdf: {
      budgets: [
        { name: 'datapoints', match: /^POST \/timeseries\/data(\/list)?$/, rate: 300, concurrency: 60 },
        { name: 'timeseries', match: /^POST \/timeseries\/list$/, rate: 60 },
        { name: 'labels', match: /^POST \/labels/, rate: 30, concurrency: 10 },
        { name: 'raw', match: /^POST \/raw\//, concurrency: 64 },
        ...assetsTree(),
      ],
    },
    apps: [
      app('extractor', 30, 'POST', fixed('/timeseries/data')),
      app('dashboard', 10, 'POST', fixed('/timeseries/data/list')),
      app('catalog', 5, 'POST', fixed('/timeseries/list')),
      app('sync', 10, 'POST', fixed('/assets/list')),
      app('ui', 20, 'POST', fixed('/assets/byids')),
      app('tagger', 5, 'POST', fixed('/labels/list')),
      app('raw-loader', 10, 'POST', fixed('/raw/dbs/db/tables/t/rows')),
      app('jobs', 4, 'POST', fixed('/functions/1/call')),
      app('lookup', 1, 'POST', fixed('/datasets/byids')),
    ],
    seconds: 30,
    learning: 10,
    // Apps with calls waiting share a bucket evenly (fair queueing): the extractor and the dashboard get half
    // of datapoints' 300/s each.
    allowed: {
      'POST /timeseries/data': 150,
      'POST /timeseries/data/list': 150,
      'POST /timeseries/list': 60,
      'POST /assets/list': 30,
      'POST /assets/byids': 170,
      'POST /labels/list': 30,
    },
  },
];
