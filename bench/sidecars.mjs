// Sidecars: one gateway per app, all sharing one project quota through Redis, against the same apps
// through one shared gateway (in-memory store) in the same run. The quota is the simulator's (100/s,
// burst 20, 10 concurrent, 20 ms latency, throttled calls charged); every gateway is told it.
// Apps are loops (each sends its next call when the last one is answered) or light apps (one call every
// N ms, whether or not the last one is answered), told apart by the x-cdf-gateway-client header.
// Per app: answered calls, failed calls (anything but 2xx, or no answer), p50/p95 call latency.
// Run after `npm run build`:  node bench/sidecars.mjs   (BENCH_SIDECARS_MS sets the window, default 10 s;
// BENCH_SIDECARS_MIXES=0,1 picks mixes)
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent } from 'undici';
import {
  fmt,
  header,
  percentile,
  requireDist,
  startGateway,
  startSim,
  table,
  tempDir,
  writeResult,
} from './lib/common.mjs';
import { sleep, stop, stopAll } from './lib/proc.mjs';

const DURATION_MS = Number(process.env.BENCH_SIDECARS_MS ?? 10_000);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const QUOTA = { rate: 100, burst: 20, concurrency: 10 };
const LATENCY_MS = 20;
const PATH = '/api/v1/projects/p/assets?limit=1';
const agent = new Agent({ connections: 256, keepAliveTimeout: 30_000 });

/** Mixes: apps with their client config and their load (`loops`, or a call every `everyMs`). */
const MIXES = [
  {
    name: 'issue #14: ui priority 1, batch-a weight 3, batch-b weight 1',
    quota: QUOTA,
    apps: [
      { name: 'ui', priority: 1, everyMs: 50 },
      { name: 'batch-a', weight: 3, loops: 30 },
      { name: 'batch-b', weight: 1, loops: 30 },
    ],
  },
  {
    name: 'issue #14: greedy 40 loops, two apps of 10, a light app',
    quota: QUOTA,
    apps: [
      { name: 'greedy', loops: 40 },
      { name: 'busy-1', loops: 10 },
      { name: 'busy-2', loops: 10 },
      { name: 'light', everyMs: 100 },
    ],
  },
  {
    name: 'another mix: 50/s burst 10, 5 concurrent; weights 1, 2, 4; priority 2 light app every 100 ms',
    quota: { rate: 50, burst: 10, concurrency: 5 },
    apps: [
      { name: 'w1', weight: 1, loops: 20 },
      { name: 'w2', weight: 2, loops: 20 },
      { name: 'w4', weight: 4, loops: 8 },
      { name: 'alerts', priority: 2, everyMs: 100 },
    ],
  },
];

function configFor(mix, cluster) {
  const clients = mix.apps
    .filter((a) => a.weight !== undefined || a.priority !== undefined)
    .map((a) => ({ name: a.name, weight: a.weight ?? 1, priority: a.priority ?? 0 }));
  const config = {
    limits: [{ name: 'assets', match: ['/assets', '/assets/**'], per: 'project', ...mix.quota }],
    clients,
    queue: { maxWaitMs: 30_000 },
  };
  if (cluster) config.cluster = { redisUrl: REDIS_URL, ...cluster };
  return config;
}

/** One call; counted only when answered within the window (`end`). */
async function call(url, app, stats, end) {
  const t0 = performance.now();
  let ok = false;
  try {
    const res = await fetch(url, {
      headers: { authorization: `Bearer token-${app}`, 'x-cdf-gateway-client': app },
      dispatcher: agent,
    });
    await res.arrayBuffer();
    ok = res.status >= 200 && res.status < 300;
  } catch {}
  const t1 = performance.now();
  if (t1 > end) return;
  if (ok) {
    stats.ok++;
    stats.latenciesMs.push(t1 - t0);
  } else stats.failed++;
}

/** Runs every app against its gateway URL for the window. */
async function drive(mix, urlOf) {
  const end = performance.now() + DURATION_MS;
  const perApp = new Map(mix.apps.map((a) => [a.name, { ok: 0, failed: 0, latenciesMs: [] }]));
  const work = [];
  for (const app of mix.apps) {
    const url = urlOf(app.name) + PATH;
    const stats = perApp.get(app.name);
    if (app.loops) {
      for (let i = 0; i < app.loops; i++)
        work.push(
          (async () => {
            while (performance.now() < end) await call(url, app.name, stats, end);
          })(),
        );
    } else {
      work.push(
        (async () => {
          const inFlight = [];
          for (let at = performance.now(); at < end; at += app.everyMs) {
            inFlight.push(call(url, app.name, stats, end));
            await sleep(Math.max(0, at + app.everyMs - performance.now()));
          }
          await Promise.all(inFlight);
        })(),
      );
    }
  }
  await Promise.all(work);
  return perApp;
}

async function scenario(mix, topology) {
  const sim = await startSim({ tree: false, project: mix.quota, chargeThrottled: true, latencyMs: LATENCY_MS });
  const gateways = new Map();
  const procs = [];
  try {
    const logDir = tempDir('sidecars');
    if (topology === 'shared') {
      const g = await startGateway(sim.url, configFor(mix, null), { logTo: join(logDir, 'gateway.log') });
      procs.push(g.proc);
      for (const a of mix.apps) gateways.set(a.name, g.url);
    } else {
      const keyPrefix = `cdfgw-bench-sidecars-${process.pid}-${Date.now()}`;
      for (const a of mix.apps) {
        const g = await startGateway(sim.url, configFor(mix, { keyPrefix, expectedReplicas: mix.apps.length }), {
          logTo: join(logDir, `${a.name}.log`),
          name: `sidecar ${a.name}`,
        });
        procs.push(g.proc);
        gateways.set(a.name, g.url);
      }
    }
    const perApp = await drive(mix, (name) => gateways.get(name));
    const simStats = await sim.stats();
    return { perApp, simStats };
  } finally {
    for (const p of procs) await stop(p);
    await stop(sim.proc);
  }
}

requireDist();
header('sidecars', 'one gateway per app sharing the quota in Redis, vs one shared gateway');
const results = [];
try {
  // BENCH_SIDECARS_MIXES=0,2 runs only those mixes (0-based).
  const only = process.env.BENCH_SIDECARS_MIXES?.split(',').map(Number);
  for (const mix of MIXES.filter((_, i) => only === undefined || only.includes(i))) {
    const rows = [];
    for (const topology of ['shared', 'sidecars']) {
      const { perApp, simStats } = await scenario(mix, topology);
      const apps = mix.apps.map((a) => {
        const s = perApp.get(a.name);
        const lat = [...s.latenciesMs].sort((x, y) => x - y);
        return {
          app: a.name,
          weight: a.weight ?? 1,
          priority: a.priority ?? 0,
          load: a.loops ? `${a.loops} loops` : `1 call / ${a.everyMs} ms`,
          ok: s.ok,
          failed: s.failed,
          p50Ms: percentile(lat, 50),
          p95Ms: percentile(lat, 95),
        };
      });
      results.push({ mix: mix.name, topology, apps, upstream429: simStats.throttled, upstreamCalls: simStats.calls });
      for (const a of apps)
        rows.push({
          topology,
          app: a.app,
          weight: a.weight,
          priority: a.priority,
          load: a.load,
          'calls/s': fmt(a.ok / (DURATION_MS / 1000), 1),
          failed: a.failed,
          p50: `${fmt(a.p50Ms, 0)} ms`,
          p95: `${fmt(a.p95Ms, 0)} ms`,
          'upstream 429s': simStats.throttled,
        });
    }
    table(rows, mix.name);
  }
} finally {
  await stopAll();
  await agent.close();
}
writeResult('sidecars', { durationMs: DURATION_MS, quota: QUOTA, latencyMs: LATENCY_MS, results });
