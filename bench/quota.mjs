// The headline: several apps, each the official @cognite/sdk doing parallel partitioned retrievals, share
// one simulated project quota. Direct to the simulator vs through the gateway (told the real quota, or 3x
// it so adaptive limits must learn), with throttled calls charged or not. Per app: useful calls (2xx counted
// at the simulator for the app's token), failed SDK calls, 429s, latency; Jain's fairness over apps.
import { join } from 'node:path';
import {
  fmt,
  header,
  jain,
  percentile,
  requireDist,
  startGateway,
  startSim,
  table,
  tempDir,
  writeResult,
} from './lib/common.mjs';
import { cpuMicros, LOAD_CORE, PINNING, ROOT, run, stop, stopAll } from './lib/proc.mjs';

const DURATION_MS = Number(process.env.BENCH_QUOTA_MS ?? 15_000);
// Six apps: two per replica in the three-replica run.
const APPS = Number(process.env.BENCH_QUOTA_APPS ?? 6);
const PARTITIONS = 10;
const PAGE_LIMIT = Number(process.env.BENCH_QUOTA_PAGE ?? 100);
const ITEMS = Number(process.env.BENCH_QUOTA_ITEMS ?? 10_000);
const QUOTA = { rate: 100, burst: 20, concurrency: 10 };
const LATENCY_MS = 20;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const assetsLimit = (k) => ({
  name: 'assets',
  match: ['/assets', '/assets/**'],
  per: 'project',
  rate: QUOTA.rate * k,
  burst: QUOTA.burst * k,
  concurrency: QUOTA.concurrency * k,
});

async function runApps(sim, baseUrl, baseUrls) {
  const opts = {
    baseUrl,
    statsUrl: `${sim.url}/_sim/stats`,
    project: 'p',
    apps: APPS,
    partitions: PARTITIONS,
    durationMs: DURATION_MS,
    pageLimit: PAGE_LIMIT,
  };
  if (baseUrls) opts.baseUrls = baseUrls;
  const out = await run('apps', process.execPath, [join(ROOT, 'bench', 'lib', 'apps.mjs'), JSON.stringify(opts)], {
    core: LOAD_CORE,
  });
  return JSON.parse(out.trim().split('\n').pop());
}

/** One scenario run on a fresh simulator (and fresh gateways). `gateway`: null (direct), or { factor, replicas }. */
async function scenario(label, chargeThrottled, gateway) {
  const sim = await startSim({ project: QUOTA, chargeThrottled, latencyMs: LATENCY_MS, items: ITEMS });
  const gateways = [];
  try {
    if (gateway) {
      const logDir = tempDir('quota');
      // One key prefix for all replicas of a run (they share the buckets), a fresh one per run.
      const keyPrefix = `cdfgw-bench-${process.pid}-${Date.now()}`;
      for (let r = 0; r < gateway.replicas; r++) {
        const config = { limits: [assetsLimit(gateway.factor)] };
        if (gateway.replicas > 1)
          config.cluster = {
            redisUrl: REDIS_URL,
            keyPrefix,
            expectedReplicas: gateway.replicas,
          };
        gateways.push(
          await startGateway(sim.url, config, { logTo: join(logDir, `gateway-${r}.log`), name: `gateway ${r + 1}` }),
        );
      }
    }
    const cpu0 = gateways.map((g) => cpuMicros(g.proc.pid));
    const result = await runApps(
      sim,
      gateways[0]?.url ?? sim.url,
      gateways.length > 1 ? gateways.map((g) => g.url) : undefined,
    );
    const gatewayCpuUs = gateways.reduce((a, g, i) => a + cpuMicros(g.proc.pid) - cpu0[i], 0);
    const after = await sim.stats();
    // The simulator's counters as the window closed; calls that finished after it are not counted.
    const stats = result.stats ?? after;
    const secs = DURATION_MS / 1000;
    const budget = QUOTA.rate * secs + QUOTA.burst;
    const apps = result.apps.map((a) => {
      const id = stats.byIdentity[`token-${a.app}`] ?? stats.byIdentity[a.app] ?? null;
      const att = a.attempts;
      const attLat = att ? [...att.latenciesMs].sort((x, y) => x - y) : [];
      return {
        app: a.app,
        useful: id ? id.ok : a.ok,
        usefulSource: id ? 'simulator' : 'app',
        sdkOk: a.ok,
        failed: a.failed,
        upstream429: id ? id.throttled : null,
        upstreamCalls: id ? id.calls : null,
        appSaw429: att ? (att.byStatus['429'] ?? 0) : null,
        httpAttempts: att ? att.latenciesMs.length : null,
        attemptP50Ms: percentile(attLat, 50),
        attemptP99Ms: percentile(attLat, 99),
        latenciesMs: a.latenciesMs,
      };
    });
    const all = apps.flatMap((a) => a.latenciesMs).sort((x, y) => x - y);
    const allAttempts = result.apps.flatMap((a) => a.attempts?.latenciesMs ?? []).sort((x, y) => x - y);
    const useful = apps.reduce((s, a) => s + a.useful, 0);
    const row = {
      label,
      chargeThrottled,
      scenarioSource: result.source,
      seconds: secs,
      useful,
      usefulShareOfQuota: useful / budget,
      quotaBudget: budget,
      failed: apps.reduce((s, a) => s + a.failed, 0),
      upstream429: stats.throttled,
      upstreamCalls: stats.calls,
      upstreamMaxInFlight: after.maxInFlight,
      upstreamCallsAfterWindow: after.calls - stats.calls,
      note: result.note,
      appSaw429: apps.reduce((s, a) => s + (a.appSaw429 ?? 0), 0),
      callP50Ms: percentile(all, 50),
      callP99Ms: percentile(all, 99),
      attemptP50Ms: percentile(allAttempts, 50),
      attemptP99Ms: percentile(allAttempts, 99),
      jain: jain(apps.map((a) => a.useful)),
      gatewayCpuUsPerCall: gateways.length > 0 && after.calls > 0 ? gatewayCpuUs / after.calls : null,
      apps: apps.map(({ latenciesMs, ...rest }) => ({
        ...rest,
        callP50Ms: percentile(
          [...latenciesMs].sort((x, y) => x - y),
          50,
        ),
        callP99Ms: percentile(
          [...latenciesMs].sort((x, y) => x - y),
          99,
        ),
      })),
    };
    return row;
  } finally {
    for (const g of gateways) await stop(g.proc);
    await stop(sim.proc);
  }
}

/** Whether cluster.redisUrl gives a shared store: a gateway started with it reports its store mode on /readyz. */
async function clusterMode() {
  const sim = await startSim();
  let g;
  try {
    g = await startGateway(
      sim.url,
      { cluster: { redisUrl: REDIS_URL, keyPrefix: `cdfgw-bench-probe-${process.pid}` } },
      { logLevel: 'error' },
    );
    const ready = await (await fetch(`${g.url}/readyz`)).json();
    return ready;
  } catch (err) {
    return { error: err.message.split('\n')[0] };
  } finally {
    if (g) await stop(g.proc);
    await stop(sim.proc);
  }
}

const r0 = (runs) => runs[0].apps.map((a) => a.app).join(' / ');

async function main() {
  requireDist();
  header(
    'quota',
    `${APPS} apps x ${PARTITIONS} partitions (@cognite/sdk, assets.list, limit ${PAGE_LIMIT}, ${ITEMS} items: ${ITEMS / PAGE_LIMIT} calls per retrieval), ${DURATION_MS / 1000} s per run; simulated quota rate ${QUOTA.rate}/s, burst ${QUOTA.burst}, concurrency ${QUOTA.concurrency}, latency ${LATENCY_MS} ms`,
  );
  const runs = [];
  const notes = [];
  const plan = [
    ['direct', null],
    ['gateway (told the quota)', { factor: 1, replicas: 1 }],
    ['gateway (told 3x the quota)', { factor: 3, replicas: 1 }],
  ];
  const mode = await clusterMode();
  if (mode.store && mode.store !== 'memory')
    plan.push(['3 gateway replicas on Redis (each told the quota)', { factor: 1, replicas: 3 }]);
  else
    notes.push(
      `3 replicas on Redis skipped: cluster.redisUrl gives store ${JSON.stringify(mode.store ?? mode.error)} (src/cluster is still a stub, or Redis is unreachable)`,
    );

  for (const chargeThrottled of [false, true]) {
    for (const [label, gw] of plan) {
      const r = await scenario(label, chargeThrottled, gw);
      runs.push(r);
      console.log(
        `  ${label}, chargeThrottled=${chargeThrottled}: useful ${r.useful} (${fmt(r.usefulShareOfQuota * 100, 1)}% of quota), failed ${r.failed}, upstream 429s ${r.upstream429}, Jain ${fmt(r.jain, 3)} [${r.scenarioSource}]`,
      );
    }
  }

  table(
    runs.map((r) => ({
      path: r.label,
      'charge 429': r.chargeThrottled ? 'yes' : 'no',
      'useful calls': r.useful,
      'share of quota': `${fmt(r.usefulShareOfQuota * 100, 1)}%`,
      'failed SDK calls': r.failed,
      '429s upstream': r.upstream429,
      '429s apps saw': r.appSaw429,
      'max in flight': r.upstreamMaxInFlight,
      'call p50 ms': fmt(r.callP50Ms),
      'call p99 ms': fmt(r.callP99Ms),
      'HTTP p50 ms': fmt(r.attemptP50Ms),
      'HTTP p99 ms': fmt(r.attemptP99Ms),
      Jain: fmt(r.jain, 3),
    })),
    `Quota scenario (${PINNING}; gateway on core 1, simulator and apps on core 0). Quota budget = rate x seconds + burst ≈ ${fmt(runs[0].quotaBudget)}`,
  );
  table(
    runs.map((r) => ({
      path: r.label,
      'charge 429': r.chargeThrottled ? 'yes' : 'no',
      'useful calls per app': r.apps.map((a) => a.useful).join(' / '),
      'failed per app': r.apps.map((a) => a.failed).join(' / '),
      '429s upstream per app': r.apps.map((a) => a.upstream429 ?? '-').join(' / '),
      'call p99 ms per app': r.apps.map((a) => fmt(a.callP99Ms)).join(' / '),
    })),
    `Per app (${r0(runs)})`,
  );
  console.log(
    "\n  useful = 2xx answers counted at the simulator for the app's token; failed = SDK promise rejections after the SDK's own 5 retries;\n" +
      '  call = one SDK call as the app sees it (SDK retries and backoff included); HTTP = one HTTP attempt by the SDK (timed around BasicHttpClient.rawRequest).',
  );
  for (const r of runs) if (r.note && !notes.includes(r.note)) notes.push(r.note);
  for (const n of notes) console.log(`note: ${n}`);
  await stopAll();
  writeResult('quota', {
    settings: {
      durationMs: DURATION_MS,
      apps: APPS,
      partitions: PARTITIONS,
      pageLimit: PAGE_LIMIT,
      items: ITEMS,
      quota: QUOTA,
      latencyMs: LATENCY_MS,
    },
    runs,
    notes,
  });
}

await main();
