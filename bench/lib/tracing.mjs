// Extra gateway targets for bench/overhead.mjs (issue #15), each measured in the same interleaved rounds:
//   BENCH_TRACING=1       the gateway with OpenTelemetry tracing on, every request sampled (0 < ratio < 1 samples less),
//                         spans exported over OTLP/HTTP to a local sink (bench/lib/otlp-sink.mjs) on the load core;
//   BENCH_BASELINE_DIST=/path/to/dist   another build of the gateway (e.g. main before a change, tracing off);
//   BENCH_RATELIMIT_OFF=1 this build with headers.rateLimit: false (what the RateLimit headers cost);
//   BENCH_PLAIN_LAUNCH=1  this build launched as a plain `node dist/main.js`, without the node flags it ships with.
import { join } from 'node:path';
import { fmt, median, ROOMY_LIMITS, startGateway, table } from './common.mjs';
import { freePort, LOAD_CORE, ROOT, startNode, waitForHttp } from './proc.mjs';

export async function extraGatewayTargets(upstreamUrl) {
  const targets = [];
  const baseline = process.env.BENCH_BASELINE_DIST;
  if (baseline) {
    const gw = await startGateway(upstreamUrl, { limits: ROOMY_LIMITS }, { dist: baseline, name: 'baseline gateway' });
    targets.push({ name: 'gateway (baseline build)', ...gw });
  }
  if (process.env.BENCH_PLAIN_LAUNCH === '1') {
    const gw = await startGateway(upstreamUrl, { limits: ROOMY_LIMITS }, { name: 'plain gateway', nodeArgs: [] });
    targets.push({ name: 'gateway, plain node dist/main.js', ...gw });
  }
  if (process.env.BENCH_RATELIMIT_OFF === '1') {
    const config = { limits: ROOMY_LIMITS, headers: { rateLimit: false } };
    const gw = await startGateway(upstreamUrl, config, { name: 'gateway without RateLimit headers' });
    targets.push({ name: 'gateway, RateLimit headers off', ...gw });
  }
  const ratio = Number(process.env.BENCH_TRACING ?? 0);
  if (ratio > 0) {
    const port = await freePort();
    const sink = startNode('otlp sink', join(ROOT, 'bench', 'lib', 'otlp-sink.mjs'), [], {
      core: LOAD_CORE,
      env: { PORT: String(port) },
    });
    await waitForHttp(sink, `http://127.0.0.1:${port}/stats`);
    const tracing = { enabled: true, endpoint: `http://127.0.0.1:${port}/v1/traces`, sampleRatio: Math.min(1, ratio) };
    const gw = await startGateway(upstreamUrl, { limits: ROOMY_LIMITS, tracing }, { name: 'traced gateway' });
    targets.push({ name: `gateway tracing on (${fmt(Math.min(1, ratio) * 100)}% sampled)`, ...gw });
  }
  return targets;
}

/** Each extra target against the gateway in the same round: median of per-round ratios. */
export function extraRatios(runs, workloads, extras) {
  const rows = [];
  for (const w of workloads) {
    for (const t of extras) {
      const per = [];
      for (const r of runs.filter((x) => x.workload === w && x.target === t.name)) {
        const g = runs.find((x) => x.workload === w && x.round === r.round && x.target === 'gateway');
        if (g) per.push({ rps: r.rps / g.rps, p99: r.p99 / g.p99, cpu: r.cpuUsPerReq / g.cpuUsPerReq });
      }
      if (per.length === 0) continue;
      rows.push({
        workload: w,
        target: t.name,
        rps: median(per.map((p) => p.rps)),
        p99: median(per.map((p) => p.p99)),
        cpu: median(per.map((p) => p.cpu)),
      });
    }
  }
  if (rows.length > 0) {
    table(
      rows.map((r) => ({
        workload: r.workload,
        target: r.target,
        'vs gateway req/s': `${fmt(r.rps * 100, 1)}%`,
        'vs gateway p99': `${fmt(r.p99, 2)}x`,
        'vs gateway CPU/req': `${fmt(r.cpu, 2)}x`,
      })),
      'Extra targets against the gateway (tracing off, this build), median of per-round ratios',
    );
  }
  return rows;
}
