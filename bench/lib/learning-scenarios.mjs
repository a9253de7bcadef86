// The learning benchmark's matrix (bench/learning.mjs): CDF stand-ins (simulator options), the apps (SDK
// loops, each app its own identity), the gateway's configuration when the scenario sets one, what the
// stand-in allows per app, operation or in all, and the checks of issue #27's "Done when".
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './proc.mjs';

/** The default table's guess for datapoints, read from config/default.yaml so the scenario follows it. */
export function datapointsGuess() {
  const table = parse(readFileSync(join(ROOT, 'config', 'default.yaml'), 'utf8')).limits;
  const d = table?.datapoints;
  if (!d || typeof d.rate !== 'number') throw new Error('config/default.yaml has no limits.datapoints with a rate');
  return { rate: d.rate, concurrency: d.concurrency };
}

const INSERT = 'POST /timeseries/data';
/** 40 loops of datapoints inserts: four ingestion apps of 10 loops, each its own identity. */
const INGEST = [1, 2, 3, 4].map((i) => ({ name: `ingest-${i}`, works: ['datapoints.insert'], loops: 10 }));
/** Published nowhere: a tight budget on the inserts; rate 429s name no figure, concurrency 429s name it. */
const datapointsAt = (rate, concurrency, extra = {}) => ({
  tight: [{ match: '/timeseries/data', method: 'POST', rate, concurrency }],
  ...extra,
});

/** Scenario 1 and its variants: the same apps and checks against other stand-ins or gateways. */
function datapoints(name, title, sim, more = {}) {
  return {
    name,
    title,
    seconds: 20,
    learningSeconds: 10,
    sim: datapointsAt(400, 80, sim),
    apps: INGEST,
    buckets: 'datapoints|timeseries[./_-]data|^other$',
    allowed: { [INSERT]: 400 },
    why: 'the inserts: 400/s, 80 concurrent (a budget CDF publishes nowhere)',
    checks: [
      {
        name: 'useful/s from the 10th second >= 85 % of 400/s',
        short: 'from 10 s: 85 %',
        key: INSERT,
        after: true,
        atLeast: 0.85 * 400,
      },
    ],
    ...more,
  };
}

const ASSETS_APPS = [
  { name: 'lookup', works: ['assets.retrieve'], loops: 60 },
  { name: 'sync', works: ['assets.list'], loops: 10 },
];

/** `/labels/list` tight inside labels, the labels API's figure configured in the gateway (issue #27's third row). */
function labels(name, title, figures, showLearning) {
  return {
    name,
    title,
    seconds: 20,
    learningSeconds: 8,
    sim: {
      ...figures,
      tight: [
        { match: '/labels/list', rate: 10, concurrency: 4 },
        { match: '/labels/**', rate: 50, concurrency: 10 },
      ],
    },
    gateway: { config: { limits: { labels: { rate: 50, concurrency: 10 } } } },
    apps: [
      { name: 'list', works: ['labels.list'], loops: 10 },
      { name: 'create', works: ['labels.create'], loops: 20 },
    ],
    buckets: 'labels',
    allowed: { list: 10, create: 40 },
    why: 'list: its endpoint 10/s; create: the rest of the labels API 50/s, 40/s',
    showLearning,
    checks: [
      { name: 'list >= 8.5/s after 8 s', short: 'list 8.5/s', key: 'list', after: true, atLeast: 8.5 },
      { name: 'creates >= 34/s after 8 s', short: 'creates 34/s', key: 'create', after: true, atLeast: 34 },
      { name: '429s <= 5 % over the 20 s', short: '429s <= 5 %', share429AtMost: 0.05 },
    ],
  };
}

/** Every scenario; `learning.mjs` runs them in this order. */
export function scenarios() {
  const guess = datapointsGuess();
  return [
    datapoints(
      'datapoints-400',
      'datapoints inserts, 40 loops, CDF allowing 400/s and 80 concurrent (unpublished)',
      {},
      {
        showLearning: true,
      },
    ),
    {
      ...datapoints('datapoints-at-guess', '', {}),
      title: `the same, CDF allowing exactly the table's guess (${guess.rate}/s, ${guess.concurrency} concurrent)`,
      sim: datapointsAt(guess.rate, guess.concurrency),
      allowed: { [INSERT]: guess.rate },
      why: `the inserts: ${guess.rate}/s, ${guess.concurrency} concurrent (config/default.yaml's datapoints)`,
      checks: [{ name: '429s <= 2 % over the run', short: '429s <= 2 %', share429AtMost: 0.02 }],
    },
    {
      name: 'functions-and-lookups',
      title: '12 loops of function calls taking 2 s, beside one app looking up data sets; CDF limiting neither',
      seconds: 20,
      learningSeconds: 5,
      sim: { latency: [{ match: '/functions/*/call', method: 'POST', ms: 2000 }] },
      apps: [
        { name: 'functions', works: ['functions.call'], loops: 12 },
        { name: 'lookups', works: ['datasets.retrieve'], loops: 1 },
      ],
      buckets: 'functions|datasets|^other$',
      allowed: { functions: 6, lookups: 'direct' },
      why: 'functions: 12 loops / 2 s = 6/s; lookups: what one loop does straight to CDF',
      checks: [
        {
          name: "look-ups' p95 within 10 ms of straight to CDF's",
          short: 'p95 +10 ms',
          app: 'lookups',
          p95WithinMsOfDirect: 10,
        },
      ],
    },
    {
      name: 'oversubscribed-3x',
      title: "the demo's shared scenario (8 apps x 10 partitions listing assets), one limits bucket at 3x the quota",
      seconds: 20,
      learningSeconds: 5,
      sim: {
        tree: false,
        project: { rate: 100, burst: 20, concurrency: 10 },
        figures: { rate: 'never', concurrency: 'always' },
      },
      gateway: {
        config: {
          limits: [{ name: 'assets', match: ['/assets', '/assets/**'], rate: 300, burst: 60, concurrency: 30 }],
        },
      },
      apps: Array.from({ length: 8 }, (_, i) => ({ name: `app-${i + 1}`, works: ['assets.list'], loops: 10 })),
      buckets: '^assets$|learned',
      allowed: { total: 100 },
      why: 'a flat quota of 100/s, burst 20, 10 concurrent (rate 429s name no figure)',
      checks: [
        {
          name: 'useful calls >= 0.93 of the quota (rate x s + burst)',
          short: 'quota 0.93',
          totalCallsAtLeast: 0.93 * (100 * 20 + 20),
        },
      ],
    },
    labels(
      'labels-list-tight',
      '/labels/list at 10/s and 4 concurrent inside labels at 50/s and 10 (the API figure configured)',
      {},
      false,
    ),
    labels(
      'labels-list-figureless',
      'the same, concurrency 429s naming no figure either',
      { figures: { rate: 'never', concurrency: 'never' } },
      true,
    ),
    {
      name: 'raised-documented',
      title: 'a project whose limits Cognite raised: CDF allowing 2x the documented assets tree, adaptive.probeAbove',
      seconds: 20,
      learningSeconds: 10,
      sim: { treeScale: 2 },
      gateway: { config: { adaptive: { probeAbove: true } }, fallbackConfig: {} },
      apps: ASSETS_APPS,
      buckets: '^assets|learned.*assets',
      allowed: { lookup: 260, sync: 46 },
      why: 'lookup: CRUD per identity 2 x 130/s; sync: Analytical per identity 2 x 23/s',
    },
    {
      name: 'tighter-than-documented',
      title: 'CDF allowing half the documented assets tree (other consumers share the project)',
      seconds: 20,
      learningSeconds: 10,
      sim: { treeScale: 0.5 },
      apps: ASSETS_APPS,
      buckets: '^assets|learned.*assets',
      allowed: { lookup: 65, sync: 11.5 },
      why: 'lookup: CRUD per identity 130/s / 2; sync: Analytical per identity 23/s / 2',
    },
    {
      name: 'sequences-stated',
      title: 'an undocumented API whose 429s state both figures: sequences at 120/s and 15 concurrent, 100 ms a call',
      seconds: 20,
      learningSeconds: 8,
      sim: {
        tight: [
          {
            match: '/sequences/**',
            rate: 120,
            concurrency: 15,
            figures: { rate: 'always', concurrency: 'always' },
          },
        ],
        latency: [{ match: '/sequences/**', ms: 100 }],
      },
      apps: [
        { name: 'list', works: ['sequences.list'], loops: 10 },
        { name: 'retrieve', works: ['sequences.retrieve'], loops: 20 },
      ],
      buckets: 'sequences',
      allowed: { total: 120 },
      why: 'the sequences API: 120/s (15 concurrent at 100 ms would allow 150/s)',
    },
    {
      name: 'relationships-concurrency',
      title: 'an undocumented API limited by concurrency only, its 429s naming no figure: relationships at 5, 200 ms',
      seconds: 20,
      learningSeconds: 10,
      sim: {
        tight: [{ match: '/relationships/**', concurrency: 5, figures: { concurrency: 'never' } }],
        latency: [{ match: '/relationships/**', ms: 200 }],
      },
      apps: [{ name: 'list', works: ['relationships.list'], loops: 20 }],
      buckets: 'relationships',
      allowed: { list: 25 },
      why: '5 concurrent at 200 ms a call: 25/s',
    },
    {
      name: 'per-identity',
      title: 'time series metadata, CDF limiting 150/s per project and 60/s per identity (figureless), 3 identities',
      seconds: 20,
      learningSeconds: 10,
      sim: {
        tight: [
          { match: '/timeseries/**', rate: 150 },
          { match: '/timeseries/**', rate: 60, per: 'identity' },
        ],
      },
      apps: ['a', 'b', 'c'].map((x) => ({
        name: `catalog-${x}`,
        works: ['timeseries.list', 'timeseries.retrieve'],
        loops: 15,
      })),
      buckets: 'timeseries',
      allowed: { total: 150, 'catalog-a': 50, 'catalog-b': 50, 'catalog-c': 50 },
      why: 'the project 150/s shared by three identities (50/s each, under their 60/s)',
    },
    {
      name: 'two-tight-endpoints',
      title: 'two endpoints tighter than their API in different classes, inside the documented assets tree',
      seconds: 20,
      learningSeconds: 10,
      sim: {
        tight: [
          { match: '/assets/byids', rate: 10, concurrency: 4 },
          { match: '/assets/search', rate: 5, concurrency: 2 },
        ],
      },
      apps: [
        { name: 'lookup', works: ['assets.retrieve'], loops: 20 },
        { name: 'search', works: ['assets.search'], loops: 10 },
        { name: 'ui', works: ['assets.get'], loops: 20 },
      ],
      buckets: 'assets',
      allowed: { lookup: 10, search: 5, ui: 130 },
      why: 'lookup: /assets/byids 10/s (CRUD); search: /assets/search 5/s (Analytical); ui: CRUD per identity 130/s',
    },
    {
      name: 'api-at-real-figure',
      title: 'the events API configured at its real figure (120/s, 30 concurrent), /events/byids hidden at 15/s',
      seconds: 20,
      learningSeconds: 10,
      sim: {
        tight: [
          { match: '/events/byids', rate: 15, concurrency: 5 },
          { match: '/events/**', rate: 120, concurrency: 30 },
        ],
      },
      gateway: { config: { limits: { events: { rate: 120, concurrency: 30 } } } },
      apps: [
        { name: 'create', works: ['events.create'], loops: 20 },
        { name: 'retrieve', works: ['events.retrieve'], loops: 10 },
      ],
      buckets: 'events',
      allowed: { retrieve: 15, create: 105 },
      why: 'retrieve: /events/byids 15/s; create: the rest of the events API 120/s, 105/s',
    },
    {
      name: 'working-day',
      title: "several APIs at once, documented and not, as in one project's working day",
      seconds: 30,
      learningSeconds: 15,
      sim: {
        tight: [
          // Above the table's guesses (datapoints 100/s, 20 concurrent) ...
          { match: '/timeseries/data/**', rate: 300, concurrency: 60 },
          // ... and below them (time series 100/s and labels 50/s guessed).
          { match: '/timeseries/list', rate: 40, concurrency: 10 },
          { match: '/labels/**', rate: 20, concurrency: 5 },
        ],
        latency: [{ match: '/functions/*/call', method: 'POST', ms: 2000 }],
      },
      apps: [
        { name: 'sync', works: ['assets.list'], loops: 4 },
        { name: 'lookup', works: ['assets.retrieve'], loops: 10 },
        { name: 'events', works: ['events.create'], loops: 5 },
        { name: 'ingest', works: ['datapoints.insert'], loops: 10 },
        { name: 'trend', works: ['datapoints.retrieve'], loops: 5 },
        { name: 'catalog', works: ['timeseries.list'], loops: 3 },
        { name: 'rows', works: ['raw.insertRows'], loops: 2 },
        { name: 'labels', works: ['labels.list'], loops: 2 },
        { name: 'datasets', works: ['datasets.retrieve'], loops: 1 },
        { name: 'functions', works: ['functions.call'], loops: 3 },
      ],
      buckets: 'datapoints|timeseries|labels|^other$|learned',
      allowed: {
        sync: 23,
        lookup: 130,
        events: 130,
        'ingest+trend': 300,
        catalog: 40,
        rows: 'direct',
        labels: 20,
        datasets: 'direct',
        functions: 1.5,
      },
      why:
        'sync: assets Analytical per identity 23/s; lookup, events: CRUD per identity 130/s; ingest+trend: ' +
        'datapoints 300/s (hidden, above the guess); catalog: /timeseries/list 40/s and labels 20/s (hidden, ' +
        'below the guesses); rows (Raw: concurrency only) and datasets: what they do straight to CDF; functions: 3 loops / 2 s',
    },
    datapoints(
      'replicas-3',
      'scenario datapoints-400 through three gateway replicas sharing Redis',
      {},
      {
        gateway: { replicas: 3, cluster: true },
      },
    ),
    datapoints(
      'two-gateways',
      'scenario datapoints-400 through two gateways that share nothing (two teams)',
      {},
      {
        gateway: { replicas: 2 },
      },
    ),
    datapoints('fixed-window', 'scenario datapoints-400, CDF counting each budget per fixed second', {
      limiter: 'fixed-window',
    }),
    datapoints('sliding-window', 'scenario datapoints-400, CDF counting each budget over a sliding second', {
      limiter: 'sliding-window',
    }),
    datapoints('text-429s', 'scenario datapoints-400, 429s in plain text and other words', {
      throttleBody: 'text',
      wording: 'alternate',
    }),
    datapoints('large-429s', 'scenario datapoints-400, 429 bodies over 64 KiB (the message past the padding)', {
      throttleBody: 'large-json',
    }),
  ];
}
