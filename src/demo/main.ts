#!/usr/bin/env node
/**
 * `npm run demo`: several SDK apps share one simulated CDF project quota, first straight against the
 * simulator, then through the gateway; prints the two side by side, then keeps both up until Ctrl-C.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { buildGateway, type Gateway } from '../app.js';
import { loadConfig } from '../config/index.js';
import { type Simulator, startSimulator } from '../sim/index.js';
import { startReplicas } from './replicas.js';
import { jainIndex, percentile, runScenario, type ScenarioOptions, type ScenarioResult } from './scenario.js';
import { runTreeDemo } from './tree.js';

const { values: flags } = parseArgs({
  options: {
    apps: { type: 'string', default: '8' },
    partitions: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '15' },
    rate: { type: 'string', default: '100' },
    burst: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '10' },
    'latency-ms': { type: 'string', default: '30' },
    'page-limit': { type: 'string', default: '100' },
    /** Tell the gateway this many times the real quota, so adaptive limits must learn the rest. */
    oversubscribe: { type: 'string', default: '1' },
    'no-charge': { type: 'boolean', default: false },
    'skip-direct': { type: 'boolean', default: false },
    /** Keep the gateway and simulator up this many seconds after the run (default: until Ctrl-C). */
    duration: { type: 'string' },
    json: { type: 'string' },
    /** Run this many gateway replicas as processes sharing their buckets in Redis. */
    replicas: { type: 'string', default: '1' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    /** With replicas: SIGKILL the first one this many seconds into the run. */
    'kill-after': { type: 'string' },
    /** `tree`: apps with their own identities on CDF's documented limit tree (src/demo/tree.ts). */
    scenario: { type: 'string', default: 'shared' },
  },
});

const num = (name: keyof typeof flags) => {
  const n = Number(flags[name]);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`demo: --${name} expects a number, got ${JSON.stringify(flags[name])}\n`);
    process.exit(2);
  }
  return n;
};

const quota = { rate: num('rate'), burst: num('burst'), concurrency: num('concurrency') };
const apps = num('apps');
const partitions = num('partitions');
const seconds = num('seconds');
const over = num('oversubscribe');
const chargeThrottled = !flags['no-charge'];
const replicas = num('replicas');

interface Row {
  label: string;
  useful: number;
  usefulShare: number;
  failed: number;
  /** Failed calls of apps whose gateway was not killed. */
  failedSurviving: number;
  upstreamCalls: number;
  upstream429: number;
  p50: number;
  p99: number;
  fairness: number;
}

type Counters = { calls: number; ok: number; throttled: number };

/** Counted over the run's window: the quota it offered is rate x seconds + burst. */
function summarise(label: string, result: ScenarioResult<Counters>, killedUrl: string | null = null): Row {
  const stats = result.atStop;
  const budget = quota.rate * seconds + quota.burst;
  // Apps whose gateway was killed stopped working with it; latency and fairness are the others'.
  const served = result.apps.filter((a) => a.baseUrl !== killedUrl);
  const latencies = served.flatMap((a) => a.latenciesMs);
  return {
    label,
    useful: stats.ok,
    usefulShare: stats.ok / budget,
    failed: result.apps.reduce((n, a) => n + a.failed, 0),
    failedSurviving: result.apps.filter((a) => a.baseUrl !== killedUrl).reduce((n, a) => n + a.failed, 0),
    upstreamCalls: stats.calls,
    upstream429: stats.throttled,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    fairness: jainIndex(served.map((a) => a.ok)),
  };
}

function table(rows: Row[]): string {
  const lines: Array<[string, ...string[]]> = [
    ['', ...rows.map((r) => r.label)],
    ['useful calls (2xx at CDF)', ...rows.map((r) => String(r.useful))],
    ['useful calls / quota', ...rows.map((r) => `${(r.usefulShare * 100).toFixed(1)} %`)],
    ['failed app calls', ...rows.map((r) => String(r.failed))],
    ...(replicas > 1 && flags['kill-after'] !== undefined
      ? [['  of them via surviving replicas', ...rows.map((r) => String(r.failedSurviving))] as [string, ...string[]]]
      : []),
    ['calls CDF saw', ...rows.map((r) => String(r.upstreamCalls))],
    [
      '429s at CDF',
      ...rows.map((r) => `${r.upstream429} (${((r.upstream429 / Math.max(1, r.upstreamCalls)) * 100).toFixed(1)} %)`),
    ],
    ['app call latency p50', ...rows.map((r) => `${r.p50.toFixed(0)} ms`)],
    ['app call latency p99', ...rows.map((r) => `${r.p99.toFixed(0)} ms`)],
    ["Jain's fairness (apps)", ...rows.map((r) => r.fairness.toFixed(3))],
  ];
  const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  return lines
    .map((l) => l.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   '))
    .join('\n');
}

async function main(): Promise<void> {
  if (flags.scenario !== 'shared' && flags.scenario !== 'tree') {
    process.stderr.write(`demo: --scenario expects shared or tree, got ${JSON.stringify(flags.scenario)}\n`);
    process.exit(2);
  }
  if (flags.scenario === 'tree') {
    await runTreeDemo({
      scenarios: ['three-apps'],
      latencyMs: num('latency-ms'),
      chargeThrottled,
      skipDirect: flags['skip-direct'] ?? false,
      durationSeconds: flags.duration === undefined ? undefined : num('duration'),
      json: flags.json,
    });
    return;
  }
  const sim = await startSimulator({
    project: quota,
    chargeThrottled,
    latencyMs: num('latency-ms'),
    items: 100_000,
    // The headline scenario models one flat quota; `--scenario tree` runs against CDF's documented tree.
    tree: false,
  });
  const scenario = {
    project: 'demo',
    apps,
    partitions,
    durationMs: seconds * 1000,
    pageLimit: num('page-limit'),
  };
  console.log(
    `Simulated CDF at ${sim.url}: ${quota.rate} req/s, burst ${quota.burst}, ${quota.concurrency} concurrent per project` +
      `${chargeThrottled ? ', throttled calls charged' : ''}.\n` +
      `${apps} apps, each the official @cognite/sdk retrieving assets over ${partitions} partitions, ${seconds} s per run.\n`,
  );
  const rows: Row[] = [];
  if (!flags['skip-direct']) {
    console.log('Run 1: apps straight to CDF ...');
    sim.reset();
    const direct = await runScenario({ ...scenario, baseUrl: () => sim.url }, () => sim.stats());
    rows.push(summarise('straight to CDF', direct));
  }

  const limits = [
    {
      name: 'assets',
      match: ['/assets', '/assets/**'],
      per: 'project',
      rate: quota.rate * over,
      burst: quota.burst * over,
      concurrency: Math.round(quota.concurrency * over),
    },
  ];
  if (replicas > 1) {
    await runReplicas(sim, scenario, limits, rows);
    return;
  }
  const logFile = join(tmpdir(), 'cdf-gateway-demo.log');
  const config = loadConfig({
    env: {},
    overrides: { server: { port: 0 }, upstream: { baseUrl: sim.url }, log: { pretty: false }, limits },
  });
  const gateway = await buildGateway(config, { logger: pino({ level: 'info' }, pino.destination(logFile)) });
  const url = await gateway.listen();
  console.log(`Run 2: apps through the gateway at ${url}${over !== 1 ? ` (told ${over}x the real quota)` : ''} ...`);
  sim.reset();
  const timeline = sampleEffectiveRate(gateway);
  const through = await runScenario({ ...scenario, baseUrl: () => url }, () => sim.stats());
  timeline.stop();
  rows.push(summarise('through the gateway', through));

  console.log(`\n${table(rows)}\n`);
  console.log(`Effective rate of the assets bucket, per second:\n${timeline.render()}\n`);
  if (flags.json)
    writeFileSync(
      flags.json,
      JSON.stringify(
        { quota, apps, partitions, seconds, over, chargeThrottled, rows, timeline: timeline.samples },
        null,
        2,
      ),
    );

  console.log(`Gateway: ${url}   (dashboard ${url}/dashboard, metrics ${url}/metrics, log ${logFile})`);
  console.log(`Simulator: ${sim.url}   (counters ${sim.url}/_sim/stats)`);
  const stop = async () => {
    await gateway.close();
    await sim.close();
    process.exit(0);
  };
  if (flags.duration !== undefined) setTimeout(stop, num('duration') * 1000);
  else console.log('Both stay up until Ctrl-C.');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** The cluster run: replicas as processes on one Redis, the apps spread over them, one replica killed. */
async function runReplicas(
  sim: Simulator,
  scenario: Omit<ScenarioOptions, 'baseUrl'>,
  limits: unknown[],
  rows: Row[],
): Promise<void> {
  const fleet = await startReplicas(replicas, {
    upstream: { baseUrl: sim.url },
    log: { pretty: false },
    limits,
    cluster: {
      redisUrl: flags.redis,
      keyPrefix: `cdfgw-demo-${process.pid}`,
      expectedReplicas: replicas,
      leaseMs: 3000,
    },
  });
  const killAfter = flags['kill-after'] === undefined ? null : num('kill-after');
  console.log(
    `Run 2: apps through ${replicas} gateway replicas sharing their buckets in ${flags.redis}: ${fleet.map((r) => r.url).join(', ')}` +
      `${killAfter !== null ? `; replica 1 is killed with SIGKILL after ${killAfter} s` : ''} ...`,
  );
  sim.reset();
  const killer =
    killAfter === null
      ? null
      : setTimeout(() => {
          fleet[0].process.kill('SIGKILL');
          console.log(`  replica 1 (${fleet[0].url}) killed`);
        }, killAfter * 1000);
  const through = await runScenario({ ...scenario, baseUrl: (i) => fleet[i % fleet.length].url }, () => sim.stats());
  if (killer) clearTimeout(killer);
  rows.push(summarise(`${replicas} replicas on Redis`, through, killAfter === null ? null : fleet[0].url));
  console.log(`\n${table(rows)}\n`);
  console.log(`Replica logs: ${fleet.map((r) => r.logFile).join(', ')}`);
  if (flags.json)
    writeFileSync(
      flags.json,
      JSON.stringify({ quota, apps, partitions, seconds, replicas, killAfter, chargeThrottled, rows }, null, 2),
    );
  for (const r of fleet) r.process.kill('SIGTERM');
  await sim.close();
  process.exit(0);
}

function sampleEffectiveRate(gateway: Gateway) {
  const samples: Array<{ second: number; rate: number; concurrency: number }> = [];
  const started = Date.now();
  const timer = setInterval(() => {
    for (const b of gateway.scheduler.allBuckets()) {
      if (b.limit.name === 'assets') {
        samples.push({ second: Math.round((Date.now() - started) / 1000), rate: b.rate, concurrency: b.concurrency });
      }
    }
  }, 1000);
  return {
    samples,
    stop: () => clearInterval(timer),
    render: () =>
      samples
        .map(
          (s) =>
            `  t=${String(s.second).padStart(3)} s  rate ${s.rate.toFixed(1).padStart(6)}/s  concurrency ${s.concurrency}`,
        )
        .join('\n'),
  };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
