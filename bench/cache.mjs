// Cache: throughput of the hit path vs the proxied path (two gateways, the same GET, interleaved), and
// single-flight: 50 identical concurrent calls, how many reach the upstream.
import {
  autocannon,
  fmt,
  header,
  median,
  ROOMY_LIMITS,
  requireDist,
  startGateway,
  startSim,
  TOKEN,
  table,
  writeResult,
} from './lib/common.mjs';
import { cpuMicros, PINNING, stopAll } from './lib/proc.mjs';

const ROUNDS = Number(process.env.BENCH_CACHE_ROUNDS ?? 2);
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const PATH = '/api/v1/projects/p/assets?limit=3';
const CACHE_RULES = [{ match: ['/assets'], methods: ['GET'], ttlMs: 60_000 }];
const IDENTICAL = 50;
const SLOW_UPSTREAM_MS = 100;

async function get(url) {
  const res = await fetch(url, { headers: { authorization: TOKEN } });
  await res.arrayBuffer();
  return { status: res.status, xCache: res.headers.get('x-cache') };
}

/** `n` identical GETs at once; the upstream answers after SLOW_UPSTREAM_MS so they all overlap. */
async function identical(gw, sim, path) {
  const before = (await sim.stats()).calls;
  const answers = await Promise.all(Array.from({ length: IDENTICAL }, () => get(gw.url + path)));
  const after = (await sim.stats()).calls;
  const outcomes = {};
  for (const a of answers) outcomes[a.xCache ?? 'none'] = (outcomes[a.xCache ?? 'none'] ?? 0) + 1;
  return { upstreamCalls: after - before, ok: answers.filter((a) => a.status === 200).length, outcomes };
}

async function main() {
  requireDist();
  header(
    'cache',
    `hit path vs proxied path (autocannon, 50 connections, ${ROUNDS} interleaved rounds x ${DURATION} s), and ${IDENTICAL} identical concurrent calls`,
  );
  const sim = await startSim();
  const cached = await startGateway(
    sim.url,
    { limits: ROOMY_LIMITS, cache: { rules: CACHE_RULES } },
    { name: 'gateway (cache rule)' },
  );
  const plain = await startGateway(sim.url, { limits: ROOMY_LIMITS }, { name: 'gateway (no rule)' });
  const notes = [];

  const first = await get(cached.url + PATH);
  const second = await get(cached.url + PATH);
  const active = second.xCache !== null;
  if (!active) notes.push('cache not active: no X-Cache header on answers of a gateway with a cache rule');
  else if (second.xCache !== 'HIT')
    notes.push(`second identical GET answered X-Cache: ${second.xCache} (first: ${first.xCache})`);
  console.log(
    `  X-Cache on two identical GETs through the gateway with the rule: ${first.xCache ?? 'none'}, ${second.xCache ?? 'none'}${active ? '' : ' -> cache not active'}`,
  );

  const targets = [
    { name: active ? 'cache hit path' : 'gateway with rule (cache not active)', ...cached },
    { name: 'proxied (no rule)', ...plain },
  ];
  for (const t of targets) await autocannon(t.url + PATH, { duration: WARMUP });
  const runs = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      const calls0 = (await sim.stats()).calls;
      const cpu0 = cpuMicros(t.proc.pid);
      const r = await autocannon(t.url + PATH, { duration: DURATION });
      const cpu = cpuMicros(t.proc.pid) - cpu0;
      const upstream = (await sim.stats()).calls - calls0;
      runs.push({ target: t.name, round, ...r, cpuUsPerReq: cpu / r.requests, upstreamCalls: upstream });
      console.log(
        `  round ${round} ${t.name}: ${fmt(r.rps)} req/s, p99 ${r.p99} ms, ${fmt(cpu / r.requests, 1)} µs CPU/req, ${upstream} upstream calls`,
      );
    }
  }
  const summary = targets.map((t) => {
    const rs = runs.filter((r) => r.target === t.name);
    return {
      target: t.name,
      rps: median(rs.map((r) => r.rps)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      cpuUsPerReq: median(rs.map((r) => r.cpuUsPerReq)),
      requests: rs.reduce((a, r) => a + r.requests, 0),
      upstreamCalls: rs.reduce((a, r) => a + r.upstreamCalls, 0),
      failed: rs.reduce((a, r) => a + r.non2xx + r.errors, 0),
    };
  });
  const perRound = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const [a, b] = targets.map((t) => runs.find((r) => r.round === round && r.target === t.name));
    perRound.push(a.rps / b.rps);
  }
  const hitOverProxied = median(perRound);

  // Single-flight: a fresh key each time, the upstream slowed so the 50 calls overlap.
  await sim.options({ latencyMs: SLOW_UPSTREAM_MS });
  const coalesceCached = await identical(cached, sim, '/api/v1/projects/p/assets?limit=7');
  const coalescePlain = await identical(plain, sim, '/api/v1/projects/p/assets?limit=7');
  await sim.options({ latencyMs: 0 });

  table(
    summary.map((s) => ({
      path: s.target,
      'req/s': fmt(s.rps),
      'p50 ms': fmt(s.p50),
      'p99 ms': fmt(s.p99),
      'gateway CPU µs/req': fmt(s.cpuUsPerReq, 1),
      requests: fmt(s.requests),
      'upstream calls': fmt(s.upstreamCalls),
      'non-2xx+errors': s.failed,
    })),
    `GET ${PATH} (~1 KB), medians over ${ROUNDS} rounds (${PINNING})`,
  );
  console.log(`  hit path / proxied path throughput: ${fmt(hitOverProxied, 2)}x (median of per-round ratios)`);
  table(
    [
      {
        gateway: 'cache rule',
        'identical calls': IDENTICAL,
        '2xx': coalesceCached.ok,
        'reached upstream': coalesceCached.upstreamCalls,
        'X-Cache': JSON.stringify(coalesceCached.outcomes),
      },
      {
        gateway: 'no rule',
        'identical calls': IDENTICAL,
        '2xx': coalescePlain.ok,
        'reached upstream': coalescePlain.upstreamCalls,
        'X-Cache': JSON.stringify(coalescePlain.outcomes),
      },
    ],
    `${IDENTICAL} identical concurrent GETs on a fresh key (upstream latency ${SLOW_UPSTREAM_MS} ms)`,
  );
  for (const n of notes) console.log(`note: ${n}`);
  await stopAll();
  writeResult('cache', {
    settings: {
      path: PATH,
      rules: CACHE_RULES,
      rounds: ROUNDS,
      durationSec: DURATION,
      connections: 50,
      identical: IDENTICAL,
      slowUpstreamMs: SLOW_UPSTREAM_MS,
    },
    cacheActive: active,
    summary,
    hitOverProxied,
    perRound,
    coalescing: { withRule: coalesceCached, withoutRule: coalescePlain },
    runs,
    notes,
  });
}

await main();
