// Issue #27: never slower than going straight to CDF. A matrix of CDF stand-ins (bench/lib/learning-scenarios.mjs),
// each run straight to CDF (the apps on the simulator) and through the gateway (its default configuration
// unless the scenario sets one), fresh processes per run, the runs interleaved. The apps are the official
// @cognite/sdk, each its own identity, in a child process on the load core (lib/learning-apps.mjs). Per run:
// useful calls (2xx at the simulator) per second per app, operation and in all, over the run and after the
// scenario's learning period; failed app calls; 429s at CDF; app-call latency; and through the gateway its
// bucket and limit figures once a second. Printed as ranges over the runs, with the checks.
import { join } from 'node:path';
import {
  fmt,
  header,
  median,
  requireDist,
  startBare,
  startGateway,
  startSim,
  table,
  tempDir,
  writeResult,
} from './lib/common.mjs';
import { scenarios } from './lib/learning-scenarios.mjs';
import { LOAD_CORE, ROOT, run, stop, stopAll } from './lib/proc.mjs';

const LATENCY_MS = Number(process.env.BENCH_LEARNING_LATENCY_MS ?? 20);
const ITEMS = 10_000;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const RUNS = (() => {
  const i = process.argv.indexOf('--runs');
  const flag = i === -1 ? process.argv.find((a) => a.startsWith('--runs='))?.slice(7) : process.argv[i + 1];
  const n = Number(flag ?? process.env.BENCH_LEARNING_RUNS ?? 3);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--runs (or BENCH_LEARNING_RUNS) must be a positive integer; got ${flag}`);
    process.exit(2);
  }
  return n;
})();
const ONLY = process.env.BENCH_LEARNING_SCENARIOS?.split(',').filter(Boolean);
const GATEWAY_ONLY = process.env.BENCH_LEARNING_GATEWAY_ONLY === '1';
// Every scenario's second-by-second figures, not only those marked showLearning.
const TIMELINES = process.env.BENCH_LEARNING_TIMELINES === '1';
// Noise between runs of one path: "never below straight to CDF" allows this much under its median.
const NOISE = 0.02;
const DIRECT = 'straight to CDF';
const GATEWAY = 'through the gateway';

/**
 * What one hop through a proxy costs a call on this machine: one call straight to the simulator and one through
 * a bare fastify proxy (bench/baseline-proxy.mjs), in turn, HOP_PAIRS times; the median of the pairs'
 * differences (the simulator's jitter and the machine's drift hit both calls of a pair alike). A loop CDF does not
 * limit is as fast as its calls: through any proxy it does 1 / (latency + hop) calls a second.
 */
const HOP_PAIRS = 500;
async function measureHop() {
  const sim = await startSim({ latencyMs: LATENCY_MS });
  const bare = await startBare(sim.url);
  const call = async (base, i) => {
    const t = performance.now();
    const res = await fetch(`${base}/api/v1/projects/bench/datasets/byids`, {
      method: 'POST',
      headers: { authorization: 'Bearer hop', 'content-type': 'application/json' },
      body: JSON.stringify({ items: [{ id: (i % 100) + 1 }], ignoreUnknownIds: true }),
    });
    await res.arrayBuffer();
    return performance.now() - t;
  };
  const direct = [];
  const proxied = [];
  const hops = [];
  for (let i = 0; i < HOP_PAIRS; i++) {
    direct.push(await call(sim.url, i));
    proxied.push(await call(bare.url, i));
    hops.push(proxied[i] - direct[i]);
  }
  await stop(bare.proc);
  await stop(sim.proc);
  return {
    directP50Ms: median(direct),
    proxiedP50Ms: median(proxied),
    hopMs: Math.max(0, median(hops)),
  };
}

/** The simulator every scenario starts from: CDF's documented tree, throttled calls charged. */
const simOptionsOf = (scenario) => ({
  tree: true,
  chargeThrottled: true,
  latencyMs: LATENCY_MS,
  items: ITEMS,
  ...scenario.sim,
});

async function startGateways(scenario, simUrl, runTag, notes) {
  const g = scenario.gateway ?? {};
  const replicas = g.replicas ?? 1;
  const dir = tempDir('learning');
  const keyPrefix = g.cluster ? `cdfgw-learning-${process.pid}-${runTag}` : undefined;
  const gateways = [];
  for (let r = 0; r < replicas; r++) {
    const config = structuredClone(g.config ?? {});
    if (g.cluster) config.cluster = { redisUrl: REDIS_URL, keyPrefix, expectedReplicas: replicas };
    const opts = { logTo: join(dir, `gateway-${r + 1}.log`), name: `gateway ${r + 1}` };
    try {
      gateways.push({ name: `gateway-${r + 1}`, ...(await startGateway(simUrl, config, opts)) });
    } catch (err) {
      if (g.fallbackConfig === undefined) throw err;
      // A key the gateway does not know yet: the scenario runs without it, and says so.
      const why = err.message.split('\n').find((l) => /config|unknown|adaptive/i.test(l)) ?? err.message.split('\n')[0];
      notes.add(
        `the gateway refused ${JSON.stringify(g.config)} (${why.trim().slice(0, 400)}); ran with ${JSON.stringify(g.fallbackConfig)}`,
      );
      const fallback = structuredClone(g.fallbackConfig);
      if (g.cluster) fallback.cluster = config.cluster;
      gateways.push({ name: `gateway-${r + 1}`, ...(await startGateway(simUrl, fallback, opts)) });
    }
  }
  if (g.cluster) {
    const ready = await (await fetch(`${gateways[0].url}/readyz`)).json().catch(() => ({}));
    if (ready.store !== 'redis' || ready.status !== 'ready') notes.add(`replicas' /readyz: ${JSON.stringify(ready)}`);
  }
  return { gateways, keyPrefix };
}

/** Leaves nothing of a cluster run in the shared Redis. */
async function dropKeys(keyPrefix) {
  if (!keyPrefix) return;
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } catch {
    // Redis away: nothing was shared either.
  } finally {
    redis.disconnect();
  }
}

/** One run on a fresh simulator (and fresh gateways unless straight to CDF). */
async function once(scenario, viaGateway, runIndex, notes) {
  const sim = await startSim(simOptionsOf(scenario));
  let gateways = [];
  let keyPrefix;
  const t0 = Date.now();
  try {
    if (viaGateway)
      ({ gateways, keyPrefix } = await startGateways(scenario, sim.url, `${Date.now()}-${runIndex}`, notes));
    const apps = scenario.apps.map((a, i) => ({
      ...a,
      token: `token-${scenario.name}-${a.name}`,
      // Apps spread over the gateways (replicas, or teams that each run their own).
      baseUrl: gateways.length > 0 ? gateways[i % gateways.length].url : sim.url,
    }));
    const opts = {
      project: 'bench',
      items: ITEMS,
      seconds: scenario.seconds,
      simUrl: sim.url,
      apps,
      gateways: gateways.map((g) => ({ name: g.name, url: g.url })),
      buckets: scenario.buckets,
    };
    const out = await run(
      'learning apps',
      process.execPath,
      [join(ROOT, 'bench', 'lib', 'learning-apps.mjs'), JSON.stringify(opts)],
      {
        core: LOAD_CORE,
      },
    );
    const r = JSON.parse(out.trim().split('\n').pop());
    for (const a of r.apps) if (a.error) notes.add(`app ${a.app} stopped: ${a.error}`);
    return { ...summarise(scenario, r, viaGateway ? GATEWAY : DIRECT), wallSeconds: (Date.now() - t0) / 1000 };
  } finally {
    for (const g of gateways) await stop(g.proc);
    await stop(sim.proc);
    await dropKeys(keyPrefix);
  }
}

/** Useful calls of `key` in a counters snapshot: all, an app (its token), apps summed (a+b), or an operation. */
function okOf(scenario, s, key) {
  if (key === 'total') return s.ok;
  if (/^[A-Z]+ \//.test(key)) return s.byOperation?.[key]?.ok ?? 0;
  return key.split('+').reduce((n, app) => n + (s.byIdentity?.[`token-${scenario.name}-${app}`]?.ok ?? 0), 0);
}

/** The keys a run reports: all, each app, the scenario's allowed keys and every operation CDF saw. */
function keysOf(scenario, s) {
  return [
    ...new Set([
      'total',
      ...scenario.apps.map((a) => a.name),
      ...Object.keys(scenario.allowed),
      ...Object.keys(s.byOperation ?? {}),
    ]),
  ];
}

function summarise(scenario, r, path) {
  const s = r.atStop;
  const secs = scenario.seconds;
  // The reading nearest the end of the learning period: useful calls after it are counted from there.
  const mark = r.timeline.reduce((best, p) =>
    Math.abs(p.t - scenario.learningSeconds) < Math.abs(best.t - scenario.learningSeconds) ? p : best,
  );
  const end = r.timeline.at(-1).t;
  const perSecond = {};
  const perSecondAfter = {};
  for (const key of keysOf(scenario, s)) {
    perSecond[key] = okOf(scenario, s, key) / secs;
    perSecondAfter[key] = (okOf(scenario, s, key) - okOf(scenario, mark, key)) / Math.max(0.001, end - mark.t);
  }
  const failedByApp = Object.fromEntries(
    r.apps.map((a) => [a.app, Object.values(a.works).reduce((n, w) => n + w.failed, 0)]),
  );
  const latency = {};
  for (const a of r.apps)
    for (const [w, x] of Object.entries(a.works)) latency[`${a.app} ${w}`] = { p50Ms: x.p50Ms, p95Ms: x.p95Ms };
  return {
    path,
    perSecond,
    perSecondAfter,
    afterFromSecond: mark.t,
    failed: Object.values(failedByApp).reduce((n, x) => n + x, 0),
    failedByApp,
    calls: s.calls,
    throttled: s.throttled,
    share429: s.throttled / Math.max(1, s.calls),
    throttledBy: s.throttledBy,
    latency,
    timeline: timelineOf(scenario, r.timeline),
  };
}

/** Per second: useful calls per allowed key and 429s since the last reading, and the gateways' figure lines. */
function timelineOf(scenario, points) {
  const keys = [...new Set(['total', ...Object.keys(scenario.allowed)])];
  return points.slice(1).map((p, i) => {
    const prev = points[i];
    const dt = Math.max(0.001, p.t - prev.t);
    const row = { second: p.second, t: Number(p.t.toFixed(2)) };
    for (const k of keys) row[k] = (okOf(scenario, p, k) - okOf(scenario, prev, k)) / dt;
    row['429'] = (p.throttled - prev.throttled) / dt;
    if (p.figures) row.figures = p.figures;
    return row;
  });
}

// ---- ranges and checks ----

const values = (runs, f) => runs.map(f).filter((v) => v !== null && v !== undefined && !Number.isNaN(v));
function range(runs, f, digits = 1, unit = '') {
  const v = values(runs, f);
  if (v.length === 0) return '-';
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return lo === hi || fmt(lo, digits) === fmt(hi, digits)
    ? `${fmt(lo, digits)}${unit}`
    : `${fmt(lo, digits)}–${fmt(hi, digits)}${unit}`;
}

/** What a proxy's hop costs a call on this machine (measureHop), set before the scenarios run. */
let hop = { hopMs: 0 };

/** The share of an app's calls a second that a proxy's hop leaves it, when CDF does not limit it (its calls' latency). */
function hopShare(direct, app) {
  const p50 = median(
    direct.map((d) => Object.entries(d.latency).find(([k]) => k.startsWith(`${app} `))?.[1].p50Ms ?? Number.NaN),
  );
  return Number.isFinite(p50) && p50 > 0 ? p50 / (p50 + hop.hopMs) : 1;
}

/**
 * The allowed figure of `key`: the scenario's number, or (an app CDF does not limit) what it did straight to
 * CDF after the learning period, less what one proxy hop costs its calls.
 */
function allowedOf(scenario, key, direct) {
  const a = scenario.allowed[key];
  if (a !== 'direct') return a;
  return direct.length > 0 ? median(direct.map((d) => d.perSecondAfter[key])) * hopShare(direct, key) : null;
}

/** Straight to CDF's useful calls a second, less what a proxy's hop costs the apps CDF does not limit. */
function directTotalOf(scenario, direct) {
  if (direct.length === 0) return null;
  let total = median(direct.map((d) => d.perSecond.total));
  for (const [key, a] of Object.entries(scenario.allowed))
    if (a === 'direct') total -= median(direct.map((d) => d.perSecond[key])) * (1 - hopShare(direct, key));
  return total;
}

/** Each check holds when it holds in every run through the gateway. */
function checksOf(scenario, direct, gateway) {
  const out = [];
  const check = (name, short, f, threshold, cmp, digits = 1, unit = '') => {
    if (threshold === null || threshold === undefined || Number.isNaN(threshold)) {
      out.push({ name, short, result: 'n/a', gateway: range(gateway, f, digits, unit), threshold: null });
      return;
    }
    const ok = gateway.every((g) => (cmp === '>=' ? f(g) >= threshold : f(g) <= threshold));
    out.push({
      name,
      short,
      result: ok ? 'pass' : 'FAIL',
      gateway: range(gateway, f, digits, unit),
      direct: range(direct, f, digits, unit),
      threshold: `${cmp} ${fmt(threshold, digits)}${unit}`,
    });
  };
  const L = scenario.learningSeconds;
  for (const key of Object.keys(scenario.allowed)) {
    const a = allowedOf(scenario, key, direct);
    check(
      `${key}: useful/s after ${L} s >= 90 % of the ${fmt(a, 1)}/s allowed`,
      `allowed ${key}`,
      (r) => r.perSecondAfter[key],
      a === null ? null : 0.9 * a,
      '>=',
    );
  }
  const directTotal = directTotalOf(scenario, direct);
  const hopNote = Object.values(scenario.allowed).includes('direct')
    ? `; apps CDF does not limit pay one proxy hop, ${fmt(hop.hopMs, 1)} ms a call`
    : '';
  check(
    `useful/s over the run never below straight to CDF (median, -${NOISE * 100} % noise${hopNote})`,
    'never below direct',
    (r) => r.perSecond.total,
    directTotal === null ? null : directTotal * (1 - NOISE),
    '>=',
  );
  check('0 failed app calls', 'failed calls', (r) => r.failed, 0, '<=', 0);
  check('429s <= 3 % of the calls CDF saw', '429s <= 3 %', (r) => r.share429 * 100, 3, '<=', 1, ' %');
  for (const c of scenario.checks ?? []) {
    const short = c.short ?? c.name;
    if (c.atLeast !== undefined)
      check(c.name, short, (r) => (c.after ? r.perSecondAfter : r.perSecond)[c.key], c.atLeast, '>=');
    else if (c.share429AtMost !== undefined)
      check(c.name, short, (r) => r.share429 * 100, c.share429AtMost * 100, '<=', 1, ' %');
    else if (c.totalCallsAtLeast !== undefined)
      check(c.name, short, (r) => r.perSecond.total * scenario.seconds, c.totalCallsAtLeast, '>=', 0);
    else if (c.p95WithinMsOfDirect !== undefined) {
      const p95 = (r) => Object.entries(r.latency).find(([k]) => k.startsWith(`${c.app} `))?.[1].p95Ms;
      const d = direct.length > 0 ? median(direct.map(p95)) : null;
      check(c.name, short, p95, d === null ? null : d + c.p95WithinMsOfDirect, '<=', 0, ' ms');
    }
  }
  return out;
}

// ---- printing ----

function printScenario(scenario, direct, gateway) {
  const col = (runs, label) => `${label} (${runs.length} run${runs.length === 1 ? '' : 's'})`;
  const rows = [];
  const add = (what, f, digits = 1, unit = '', allowed = '') => {
    const row = { '': what };
    if (direct.length > 0) row[col(direct, DIRECT)] = range(direct, f, digits, unit);
    row[col(gateway, GATEWAY)] = range(gateway, f, digits, unit);
    row.allowed = allowed;
    rows.push(row);
  };
  const keys = [...new Set([...direct, ...gateway].flatMap((r) => Object.keys(r.perSecond)))];
  const allowed = (k) => {
    const a = allowedOf(scenario, k, direct);
    return a === null || a === undefined ? '' : `${fmt(a, 1)}/s`;
  };
  add('useful calls/s, all', (r) => r.perSecond.total, 1, '', allowed('total'));
  add(`  after ${scenario.learningSeconds} s`, (r) => r.perSecondAfter.total, 1, '', allowed('total'));
  for (const k of keys.filter((k) => k !== 'total')) {
    const label = /^[A-Z]+ \//.test(k) ? `op ${k}` : `app ${k}`;
    add(`${label} /s`, (r) => r.perSecond[k], 1, '', allowed(k));
    add(`  after ${scenario.learningSeconds} s`, (r) => r.perSecondAfter[k], 1, '', allowed(k));
  }
  add('failed app calls', (r) => r.failed, 0);
  add('429s at CDF', (r) => r.throttled, 0);
  add('  share of the calls CDF saw', (r) => r.share429 * 100, 1, ' %');
  const lat = [...new Set([...direct, ...gateway].flatMap((r) => Object.keys(r.latency)))];
  for (const k of lat) {
    add(`app call p50 ms, ${k}`, (r) => r.latency[k]?.p50Ms, 0);
    add(`app call p95 ms, ${k}`, (r) => r.latency[k]?.p95Ms, 0);
  }
  table(rows, `${scenario.name}: ${scenario.title}, ${scenario.seconds} s (ranges over the runs, min–max)`);
}

/** The figure of `bucket` in a gateway's lines: the effective one, else the one it learned or was told. */
function figureOf(lines, bucket, what) {
  const mine = lines.filter((l) => l.includes(`bucket="${bucket}"`) && l.includes(`_${what}`));
  const pick =
    mine.find((l) => l.startsWith(`cdf_gateway_bucket_${what}`) && l.includes('kind="effective"')) ??
    mine.find((l) => l.startsWith(`cdf_gateway_limit_${what}`) && !l.includes('source="ceiling"')) ??
    mine.find((l) => l.startsWith(`cdf_gateway_bucket_${what}`));
  return pick === undefined ? undefined : Number(pick.split(/\s+/).pop());
}

function printLearning(scenario, r) {
  const gatewayName = Object.keys(r.timeline.at(-1)?.figures ?? {})[0];
  const linesAt = (row) => row.figures?.[gatewayName] ?? [];
  const buckets = [
    ...new Set(r.timeline.flatMap((row) => linesAt(row).map((l) => /bucket="([^"]*)"/.exec(l)?.[1]))),
  ].filter(Boolean);
  const keys = Object.keys(scenario.allowed);
  table(
    r.timeline.map((row) => {
      const out = { s: row.second };
      for (const k of keys) out[`${k} ok/s`] = fmt(row[k], 0);
      out['429/s'] = fmt(row['429'], 0);
      out['gateway figures (rate/s x concurrency)'] =
        buckets
          .map((b) => {
            const rate = figureOf(linesAt(row), b, 'rate_per_second');
            const conc = figureOf(linesAt(row), b, 'concurrency');
            return rate === undefined && conc === undefined ? null : `${b} ${fmt(rate, 1)} x ${fmt(conc, 0)}`;
          })
          .filter(Boolean)
          .join('; ') || '-';
      return out;
    }),
    `${scenario.name}, first run through the gateway, second by second (figures from /metrics: cdf_gateway_bucket_* effective, else cdf_gateway_limit_*)`,
  );
}

async function main() {
  requireDist();
  const all = scenarios();
  const unknown = (ONLY ?? []).filter((n) => !all.some((s) => s.name === n));
  if (unknown.length > 0) {
    console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${all.map((s) => s.name).join(', ')}`);
    process.exit(2);
  }
  const chosen = all.filter((s) => !ONLY || ONLY.includes(s.name));
  header(
    'learning',
    `${chosen.length} CDF stand-ins x ${RUNS} runs, ${GATEWAY_ONLY ? 'through the gateway only' : 'straight to CDF and through the gateway'} (its default configuration unless the scenario sets one); @cognite/sdk apps, one identity each; simulator: documented tree, throttled calls charged, ${LATENCY_MS} ms a call, ${ITEMS} items`,
  );
  const started = Date.now();
  hop = await measureHop();
  console.log(
    `one proxy hop on this machine (calls through a bare fastify proxy and straight to the simulator in turn, ${HOP_PAIRS} pairs: p50s, and the median of the pairs' differences): ${fmt(hop.proxiedP50Ms, 1)} vs ${fmt(hop.directP50Ms, 1)} ms, ${fmt(hop.hopMs, 1)} ms a call`,
  );
  // Scenarios that differ only in the gateway (replicas, two teams) share the runs straight to CDF.
  const directCache = new Map();
  const results = [];
  for (const scenario of chosen) {
    const t0 = Date.now();
    console.log(`\nScenario ${scenario.name}: ${scenario.title}. Allowed: ${scenario.why}.`);
    const notes = new Set();
    const directKey = JSON.stringify([
      simOptionsOf(scenario),
      scenario.apps,
      scenario.seconds,
      scenario.learningSeconds,
    ]);
    const cached = GATEWAY_ONLY ? [] : directCache.get(directKey);
    const direct = cached ? [...cached] : [];
    if (cached) notes.add(`straight to CDF: the runs of an earlier scenario with the same stand-in and apps`);
    const gateway = [];
    for (let i = 0; i < RUNS; i++) {
      for (const viaGateway of [false, true]) {
        if (!viaGateway && (GATEWAY_ONLY || cached)) continue;
        const r = await once(scenario, viaGateway, i, notes);
        (viaGateway ? gateway : direct).push(r);
        console.log(
          `  run ${i + 1}/${RUNS} ${r.path}: useful ${fmt(r.perSecond.total, 1)}/s (after ${scenario.learningSeconds} s ${fmt(r.perSecondAfter.total, 1)}/s), failed ${r.failed}, 429s ${r.throttled} (${fmt(r.share429 * 100, 1)} %) [${fmt(r.wallSeconds, 1)} s]`,
        );
      }
    }
    if (!GATEWAY_ONLY && !cached) directCache.set(directKey, direct);
    printScenario(scenario, direct, gateway);
    const checks = checksOf(scenario, direct, gateway);
    table(
      checks.map((c) => ({
        check: c.name,
        result: c.result,
        'through the gateway': c.gateway,
        'straight to CDF': c.direct ?? '-',
        needed: c.threshold ?? '-',
      })),
      `${scenario.name}: checks (issue #27, Done when; each must hold in every run through the gateway)`,
    );
    if ((scenario.showLearning || TIMELINES) && gateway[0]) printLearning(scenario, gateway[0]);
    for (const n of notes) console.log(`  note: ${n}`);
    const seconds = (Date.now() - t0) / 1000;
    console.log(`  (${scenario.name}: ${fmt(seconds, 0)} s)`);
    results.push({
      scenario: scenario.name,
      title: scenario.title,
      why: scenario.why,
      seconds: scenario.seconds,
      learningSeconds: scenario.learningSeconds,
      allowed: scenario.allowed,
      sim: simOptionsOf(scenario),
      gateway: scenario.gateway ?? null,
      apps: scenario.apps,
      notes: [...notes],
      checks,
      passed: checks.filter((c) => c.result === 'pass').length,
      failed: checks.filter((c) => c.result === 'FAIL').length,
      wallSeconds: seconds,
      runs: { direct, gateway },
    });
  }
  table(
    results.map((r) => ({
      scenario: r.scenario,
      'checks passed': `${r.passed} of ${r.checks.length}`,
      failing:
        r.checks
          .filter((c) => c.result === 'FAIL')
          .map((c) => c.short)
          .join('; ') || '-',
      'useful/s straight': range(r.runs.direct, (x) => x.perSecond.total),
      'useful/s gateway': range(r.runs.gateway, (x) => x.perSecond.total),
      'gateway 429s': range(r.runs.gateway, (x) => x.share429 * 100, 1, ' %'),
      'gateway failed': range(r.runs.gateway, (x) => x.failed, 0),
    })),
    'Summary',
  );
  const totalSeconds = (Date.now() - started) / 1000;
  console.log(`\nlearning: ${chosen.length} scenarios x ${RUNS} runs in ${fmt(totalSeconds / 60, 1)} min`);
  await stopAll();
  writeResult('learning', {
    settings: { runs: RUNS, latencyMs: LATENCY_MS, items: ITEMS, gatewayOnly: GATEWAY_ONLY, noise: NOISE, hop },
    totalSeconds,
    results,
  });
}

await main();
