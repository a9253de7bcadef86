import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as sdk from '@cognite/sdk';
import type { SimOptions, SimStats } from '../sim/index.js';

/**
 * The limit-tree scenarios (`npm run demo -- --scenario tree`, `npm run bench -- tree`): apps with their own
 * identities share CDF's documented assets tree (API, CRUD, Analytical, Aggregation; per project and per
 * identity), straight to CDF and through the gateway. Each app is the official JS SDK; what counts is what
 * CDF (the simulator) answered 2xx, per app and per operation class.
 */

/** What an app's loops do, each an SDK call: list pages (Analytical), by-ids (CRUD), aggregate, GET by id (CRUD). */
export type Work = 'list' | 'byids' | 'aggregate' | 'retrieve';

export interface TreeApp {
  /** Also its `x-cdp-app` (the SDK's appId), which is how the gateway tells apps apart. */
  name: string;
  work: Work;
  loops: number;
  /**
   * Bearer tokens the app's loops use in turn, each its own identity at CDF. 1 for a service (one client id);
   * a UI calling on behalf of its signed-in users has one per user.
   */
  identities: number;
}

export interface TreeScenario {
  name: string;
  title: string;
  apps: TreeApp[];
  seconds: number;
  /** Simulator options on top of the documented tree (an API's flat limit, an undocumented tight endpoint). */
  sim: Partial<SimOptions>;
  /**
   * Useful calls/s the limits allow each app (and in all), from the documented figures; see `why`. Shares are
   * of rate x seconds + one second's burst (CDF's budgets start full).
   */
  allowed: Record<string, number>;
  why: string;
}

export const TREE_SCENARIOS: Record<string, TreeScenario> = {
  'three-apps': {
    name: 'three-apps',
    title: 'a sync job listing (10 partitions), a UI retrieving by ids (40 loops), a report aggregating (5 loops)',
    apps: [
      { name: 'sync', work: 'list', loops: 10, identities: 1 },
      { name: 'ui', work: 'byids', loops: 40, identities: 4 },
      { name: 'report', work: 'aggregate', loops: 5, identities: 1 },
    ],
    seconds: 14,
    sim: {},
    allowed: { crud: 170, analytical: 30, total: 200 },
    why:
      'CRUD: the project 170/s (the UI calls for 4 signed-in users, 130/s each); Analytical: the project 30/s ' +
      '(sync at most 23/s per identity, report at most 12/s aggregating); the API level 200/s',
  },
  'aggregate-vs-list': {
    name: 'aggregate-vs-list',
    title: '20 loops of /assets/aggregate next to 20 loops of asset listing',
    apps: [
      { name: 'report', work: 'aggregate', loops: 20, identities: 1 },
      { name: 'sync', work: 'list', loops: 20, identities: 1 },
    ],
    seconds: 14,
    sim: {},
    allowed: { report: 12, sync: 18, total: 30 },
    why:
      'report: Aggregation 12/s per identity (15/s per project); sync: the rest of the project Analytical 30/s, ' +
      '18/s (under its 23/s per identity)',
  },
  tight: {
    name: 'tight',
    title: 'an undocumented endpoint at 10/s and 4 concurrent (/assets/byids) inside an API of 50/s',
    apps: [
      { name: 'lookup', work: 'byids', loops: 20, identities: 1 },
      { name: 'ui', work: 'retrieve', loops: 20, identities: 1 },
    ],
    seconds: 20,
    sim: {
      project: { rate: 50, burst: 50, concurrency: 40 },
      tight: [{ match: '/assets/byids', rate: 10, concurrency: 4 }],
    },
    allowed: { lookup: 10, ui: 40, total: 50 },
    why: 'lookup: the endpoint 10/s; ui: the rest of the API 50/s, 40/s',
  },
};

/** The part of @cognite/sdk the scenarios use (its typings do not resolve under NodeNext; see scenario.ts). */
interface SdkClient {
  authenticate(): Promise<unknown>;
  get(path: string): Promise<unknown>;
  assets: {
    list(scope: {
      partition?: string;
      limit: number;
      cursor?: string;
    }): Promise<{ items: unknown[]; nextCursor?: string }>;
    retrieve(ids: Array<{ id: number }>): Promise<unknown[]>;
    aggregate(query: { filter?: Record<string, unknown> }): Promise<unknown[]>;
  };
}
const CogniteClient = (sdk as unknown as { CogniteClient: new (options: Record<string, unknown>) => SdkClient })
  .CogniteClient;

export interface AppOutcome {
  app: string;
  /** Calls the SDK returned (its own retries included). */
  ok: number;
  /** Calls the SDK gave up on. */
  failed: number;
  tokens: string[];
}

export interface TreeRunOptions {
  baseUrl: string;
  project: string;
  /** Items the simulator holds (by-ids and GET pick ids in 1..items). */
  items: number;
  pageLimit: number;
  /** Reads the simulator's counters (in process, or over HTTP). */
  stats: () => SimStats | Promise<SimStats>;
  /** Called once a second with the simulator's counters, e.g. to follow learning over time. */
  onSecond?: (second: number, stats: SimStats) => void | Promise<void>;
}

export interface TreeRun {
  scenario: string;
  seconds: number;
  apps: AppOutcome[];
  /** The simulator's counters when the window closed (calls still in flight then are not in them). */
  atStop: SimStats;
}

/** The token of an app's identity `i`: distinct per app and identity, never shared between apps. */
export const tokenOf = (app: string, i: number) => `token-${app}-${i + 1}`;

/** Runs the scenario's apps for its duration against `baseUrl`; the simulator's counters must be zero at the start. */
export async function runTreeScenario(scenario: TreeScenario, o: TreeRunOptions): Promise<TreeRun> {
  const started = performance.now();
  const stopAt = started + scenario.seconds * 1000;
  let stopped: Promise<SimStats> | undefined;
  const window = setTimeout(() => {
    stopped = Promise.resolve(o.stats());
  }, scenario.seconds * 1000);
  // Seconds are counted from the start, not from ticks: a busy machine delays ticks, not the clock.
  const ticker = setInterval(() => {
    const second = Math.round((performance.now() - started) / 1000);
    if (second > scenario.seconds) return;
    Promise.resolve(o.stats())
      .then((s) => o.onSecond?.(second, s))
      .catch(() => {});
  }, 1000);
  try {
    const apps = await Promise.all(scenario.apps.map((a) => runApp(a, o, stopAt)));
    return { scenario: scenario.name, seconds: scenario.seconds, apps, atStop: await (stopped ?? o.stats()) };
  } finally {
    clearTimeout(window);
    clearInterval(ticker);
  }
}

async function runApp(app: TreeApp, o: TreeRunOptions, stopAt: number): Promise<AppOutcome> {
  const tokens = Array.from({ length: app.identities }, (_, i) => tokenOf(app.name, i));
  const clients = await Promise.all(
    tokens.map(async (token) => {
      const client = new CogniteClient({
        appId: app.name,
        project: o.project,
        baseUrl: o.baseUrl,
        oidcTokenProvider: async () => token,
      });
      await client.authenticate();
      return client;
    }),
  );
  const out: AppOutcome = { app: app.name, ok: 0, failed: 0, tokens };
  const loops = Array.from({ length: app.loops }, async (_, loop) => {
    const client = clients[loop % clients.length];
    // CDF advises at most 10 partitions: more loops than that share them.
    const partition = `${(loop % Math.min(10, app.loops)) + 1}/${Math.min(10, app.loops)}`;
    let cursor: string | undefined;
    let n = loop;
    while (performance.now() < stopAt) {
      try {
        n = (n * 7919 + 1) % o.items;
        if (app.work === 'list') {
          const page = await client.assets.list({ partition, limit: o.pageLimit, cursor });
          cursor = page.nextCursor;
        } else if (app.work === 'byids') {
          await client.assets.retrieve([{ id: n + 1 }]);
        } else if (app.work === 'aggregate') {
          await client.assets.aggregate({ filter: {} });
        } else {
          await client.get(`/api/v1/projects/${o.project}/assets/${n + 1}`);
        }
        out.ok++;
      } catch {
        // The SDK gave up after its own retries: the app's call failed.
        out.failed++;
        cursor = undefined;
        await sleep(100);
      }
    }
  });
  await Promise.all(loops);
  return out;
}

export interface TreeSummary {
  label: string;
  /** Useful calls/s (2xx at CDF) per app, per class and in all. */
  perSecond: Record<string, number>;
  /** Useful calls over what the limits allow in the window (allowed rate x seconds + a one-second burst). */
  share: Record<string, number>;
  failed: number;
  upstreamCalls: number;
  upstream429: number;
  throttledBy: Record<string, number>;
}

/** Useful calls/s at CDF: per app (its identities), per class (crud, analytical with aggregate, aggregate), total. */
export function summarise(label: string, scenario: TreeScenario, run: TreeRun): TreeSummary {
  const s = run.atStop;
  const secs = run.seconds;
  const perSecond: Record<string, number> = {};
  for (const app of run.apps) {
    perSecond[app.app] = app.tokens.reduce((n, t) => n + (s.byIdentity[t]?.ok ?? 0), 0) / secs;
  }
  const cls = (k: string) => s.byClass[`assets/${k}`]?.ok ?? 0;
  perSecond.crud = cls('crud') / secs;
  perSecond.aggregate = cls('aggregate') / secs;
  perSecond.analytical = (cls('analytical') + cls('aggregate')) / secs;
  perSecond.total = s.ok / secs;
  // CDF's budgets are one-second buckets that start full: over the window the limits allow rate x seconds
  // plus one second's burst.
  const share: Record<string, number> = {};
  for (const [k, v] of Object.entries(scenario.allowed)) share[k] = ((perSecond[k] ?? 0) * secs) / (v * (secs + 1));
  return {
    label,
    perSecond,
    share,
    failed: run.apps.reduce((n, a) => n + a.failed, 0),
    upstreamCalls: s.calls,
    upstream429: s.throttled,
    throttledBy: s.throttledBy,
  };
}

/** The rows of a side-by-side table. */
export function renderTable(scenario: TreeScenario, rows: TreeSummary[]): string {
  const keys = [...scenario.apps.map((a) => a.name), 'crud', 'analytical', 'aggregate', 'total'];
  const lines: string[][] = [['', ...rows.map((r) => r.label)]];
  for (const k of keys) {
    const allowed = scenario.allowed[k];
    const label = `${k === 'crud' ? 'CRUD' : k === 'analytical' ? 'Analytical (with aggregate)' : k === 'aggregate' ? '  of it Aggregation' : k === 'total' ? 'all useful calls' : `app ${k}`} /s${allowed === undefined ? '' : ` (allowed ${allowed})`}`;
    lines.push([
      label,
      ...rows.map(
        (r) =>
          `${(r.perSecond[k] ?? 0).toFixed(1)}${allowed === undefined ? '' : ` (${((r.share[k] ?? 0) * 100).toFixed(0)} %)`}`,
      ),
    ]);
  }
  lines.push(['failed app calls', ...rows.map((r) => String(r.failed))]);
  lines.push(['calls CDF saw', ...rows.map((r) => String(r.upstreamCalls))]);
  lines.push([
    '429s at CDF',
    ...rows.map((r) => `${r.upstream429} (${((r.upstream429 / Math.max(1, r.upstreamCalls)) * 100).toFixed(1)} %)`),
  ]);
  const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  return lines
    .map((l) => l.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   '))
    .join('\n');
}

export interface TreeDemoOptions {
  /** Scenarios to run, by name (default: the three apps). */
  scenarios: string[];
  latencyMs: number;
  chargeThrottled: boolean;
  skipDirect: boolean;
  /** Keep both up this many seconds after the runs; undefined: until Ctrl-C. */
  durationSeconds: number | undefined;
  json: string | undefined;
}

/**
 * `npm run demo -- --scenario tree`: the scenarios straight to the simulator (CDF's documented tree,
 * throttled calls charged) and through the gateway on its default configuration, side by side.
 */
export async function runTreeDemo(o: TreeDemoOptions): Promise<void> {
  const { writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { pino } = await import('pino');
  const { buildGateway } = await import('../app.js');
  const { loadConfig } = await import('../config/index.js');
  const { startSimulator } = await import('../sim/index.js');

  const items = 10_000;
  const sim = await startSimulator({ chargeThrottled: o.chargeThrottled, latencyMs: o.latencyMs, items });
  const logFile = join(tmpdir(), 'cdf-gateway-demo-tree.log');
  const config = loadConfig({
    env: {},
    overrides: { server: { port: 0 }, upstream: { baseUrl: sim.url }, log: { pretty: false } },
  });
  const gateway = await buildGateway(config, { logger: pino({ level: 'info' }, pino.destination(logFile)) });
  const url = await gateway.listen();
  console.log(
    `Simulated CDF at ${sim.url} enforcing CDF's documented limit tree (docs/cdf-limits.md)` +
      `${o.chargeThrottled ? ', throttled calls charged' : ''}, ${o.latencyMs} ms per call.\n` +
      `Gateway at ${url} on its default configuration. Each app is @cognite/sdk with its own identities.\n`,
  );
  const results: Array<{ scenario: string; rows: TreeSummary[] }> = [];
  for (const name of o.scenarios) {
    const scenario = TREE_SCENARIOS[name];
    if (!scenario) throw new Error(`unknown tree scenario '${name}' (${Object.keys(TREE_SCENARIOS).join(', ')})`);
    console.log(`Scenario ${name}: ${scenario.title}, ${scenario.seconds} s per run.\nAllowed: ${scenario.why}.`);
    sim.update({ project: null, tight: [], ...scenario.sim });
    const rows: TreeSummary[] = [];
    const run = { project: 'demo', items, pageLimit: 100, stats: () => sim.stats() };
    if (!o.skipDirect) {
      console.log('  apps straight to CDF ...');
      sim.reset();
      rows.push(summarise('straight to CDF', scenario, await runTreeScenario(scenario, { ...run, baseUrl: sim.url })));
    }
    console.log('  apps through the gateway ...');
    sim.reset();
    rows.push(summarise('through the gateway', scenario, await runTreeScenario(scenario, { ...run, baseUrl: url })));
    console.log(`\n${renderTable(scenario, rows)}\n`);
    results.push({ scenario: name, rows });
  }
  if (o.json) writeFileSync(o.json, JSON.stringify({ latencyMs: o.latencyMs, results }, null, 2));
  console.log(`Gateway: ${url}   (dashboard ${url}/dashboard, metrics ${url}/metrics, log ${logFile})`);
  console.log(`Simulator: ${sim.url}   (counters ${sim.url}/_sim/stats)`);
  const stop = async () => {
    await gateway.close();
    await sim.close();
    process.exit(0);
  };
  if (o.durationSeconds !== undefined) setTimeout(stop, o.durationSeconds * 1000);
  else console.log('Both stay up until Ctrl-C.');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
