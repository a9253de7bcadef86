#!/usr/bin/env node
/**
 * `npm run demo`: several SDK apps share one simulated CDF project quota, first straight against the
 * simulator, then through the gateway; prints the two side by side and stops (exit 0), or with --stay
 * keeps the gateway, its dashboard and the simulator up until Ctrl-C.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { buildGateway, type Gateway } from '../app.js';
import { lookupRoute } from '../cdf/index.js';
import { loadConfig } from '../config/index.js';
import { type Simulator, startSimulator } from '../sim/index.js';
import { startReplicas } from './replicas.js';
import { jainIndex, percentile, runScenario, type ScenarioOptions, type ScenarioResult } from './scenario.js';
import { runTreeDemo } from './tree.js';

const HELP = `Usage: npm run demo -- [options]   (or: node dist/demo/main.js [options])

Starts the built-in CDF simulator with a small project quota and runs several apps against it, each
the official @cognite/sdk listing assets over parallel partitions: first straight to the simulator
("straight to CDF"), then through the gateway. Prints both side by side, then stops with exit 0.

Scenario:
  --scenario <name>         shared (default): the apps share one flat project quota;
                            tree: apps with their own identities on CDF's documented limit tree
  --apps <n>                apps running at once (default 8)
  --partitions <n>          parallel partitions each app lists (default 10)
  --page-limit <n>          items per page each list call asks for (default 100; CDF allows 1000)
  --seconds <n>             length of each run, in seconds (default 10)

The simulated CDF:
  --rate <n>                requests per second of the project's quota (default 100)
  --burst <n>               requests the quota allows at once after a quiet spell (default 20)
  --concurrency <n>         calls the project may have in flight (default 10)
  --latency-ms <ms>         added to every simulated CDF answer (default 30)
  --no-charge               throttled calls use no quota (CDF's docs say they may)

The gateway:
  --oversubscribe <x>       tell the gateway x times the real quota as a configured figure (a ceiling), so
                            it must learn the real one from CDF's 429s (default 1: told the real quota)
  --headroom <x>            CDF allows x times the figure the gateway is given, as a guessed figure (a
                            starting point): the gateway must find the rest (default 1)
  --skip-direct             skip the run straight to CDF
  --replicas <n>            run n gateway replicas as processes sharing their buckets in Redis (default 1)
  --redis <url>             the Redis for --replicas (default redis://127.0.0.1:6379)
  --kill-after <s>          with --replicas: SIGKILL replica 1 this many seconds into the run

Afterwards:
  --stay                    keep the gateway (and its dashboard) and the simulator up until Ctrl-C
  --duration <s>            keep them up this many seconds, then stop
  --json <file>             also write the figures to a JSON file
  -h, --help                show this help and exit
`;

function parseFlags() {
  try {
    return parseArgs({
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h', default: false },
        scenario: { type: 'string', default: 'shared' },
        apps: { type: 'string', default: '8' },
        partitions: { type: 'string', default: '10' },
        seconds: { type: 'string', default: '10' },
        rate: { type: 'string', default: '100' },
        burst: { type: 'string', default: '20' },
        concurrency: { type: 'string', default: '10' },
        'latency-ms': { type: 'string', default: '30' },
        'page-limit': { type: 'string', default: '100' },
        oversubscribe: { type: 'string', default: '1' },
        headroom: { type: 'string', default: '1' },
        'no-charge': { type: 'boolean', default: false },
        'skip-direct': { type: 'boolean', default: false },
        stay: { type: 'boolean', default: false },
        duration: { type: 'string' },
        json: { type: 'string' },
        replicas: { type: 'string', default: '1' },
        redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
        'kill-after': { type: 'string' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\nSee npm run demo -- --help\n`);
    process.exit(2);
  }
}

const flags = parseFlags();
if (flags.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const SCENARIOS = ['shared', 'tree'];
if (!SCENARIOS.includes(flags.scenario)) {
  process.stderr.write(
    `demo: --scenario expects one of ${SCENARIOS.join(', ')}, got ${JSON.stringify(flags.scenario)}\n`,
  );
  process.exit(2);
}

const num = (name: keyof typeof flags) => {
  const n = Number(flags[name]);
  if (typeof flags[name] !== 'string' || flags[name] === '' || !Number.isFinite(n) || n < 0) {
    process.stderr.write(`demo: --${name} expects a number >= 0, got ${JSON.stringify(flags[name])}\n`);
    process.exit(2);
  }
  return n;
};

const quota = { rate: num('rate'), burst: num('burst'), concurrency: num('concurrency') };
const apps = num('apps');
const partitions = num('partitions');
const seconds = num('seconds');
const over = num('oversubscribe');
const headroom = num('headroom');
if (over === 0 || headroom === 0 || (over !== 1 && headroom !== 1)) {
  process.stderr.write('demo: --oversubscribe and --headroom expect a number > 0, and only one of them at a time\n');
  process.exit(2);
}
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
  if (flags.scenario === 'tree') {
    await runTreeDemo({
      scenarios: ['three-apps'],
      latencyMs: num('latency-ms'),
      chargeThrottled,
      skipDirect: flags['skip-direct'] ?? false,
      // Ends by itself like the shared scenario; --stay keeps both up until Ctrl-C.
      durationSeconds: flags.stay ? undefined : flags.duration === undefined ? 0 : num('duration'),
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
  const runs = (flags['skip-direct'] ? 0 : 1) + 1;
  const step = (n: number, text: string) =>
    console.log(runs > 1 ? `Run ${n} of ${runs}: ${text}` : `${text[0].toUpperCase()}${text.slice(1)}`);
  if (!flags['skip-direct']) {
    step(1, 'the apps straight to CDF (the simulator), each on its own ...');
    sim.reset();
    const direct = await runScenario({ ...scenario, baseUrl: () => sim.url }, () => sim.stats());
    rows.push(summarise('straight to CDF', direct));
  }

  // The flat quota this scenario models, told to the gateway: times --oversubscribe as the operator's figure
  // (a ceiling), or over --headroom as a guess (where learning starts).
  const scale = over / headroom;
  const limits = [
    {
      name: 'assets',
      match: ['/assets', '/assets/**'],
      per: 'project',
      rate: quota.rate * scale,
      burst: Math.max(1, quota.burst * scale),
      concurrency: Math.max(1, Math.round(quota.concurrency * scale)),
      source: headroom !== 1 ? 'guessed' : 'configured',
    },
  ];
  if (replicas > 1) {
    await runReplicas(sim, scenario, limits, rows, (text) => step(runs, text));
    return;
  }
  const logFile = join(tmpdir(), 'cdf-gateway-demo.log');
  const config = loadConfig({
    env: {},
    overrides: {
      server: { port: 0 },
      upstream: { baseUrl: sim.url },
      log: { pretty: false },
      limits,
    },
  });
  const gateway = await buildGateway(config, { logger: pino({ level: 'info' }, pino.destination(logFile)) });
  const url = await gateway.listen();
  const told =
    over !== 1
      ? ` (told ${over}x the real quota)`
      : headroom !== 1
        ? ` (given a guess of 1/${headroom} of the quota)`
        : '';
  step(runs, `the apps through the gateway at ${url}${told} ...`);
  sim.reset();
  const timeline = sampleEffectiveRate(gateway);
  const through = await runScenario({ ...scenario, baseUrl: () => url }, () => sim.stats());
  timeline.stop();
  rows.push(summarise('through the gateway', through));

  console.log(`\n${table(rows)}\n\n${LEGEND}\n`);
  console.log(
    "Effective rate: each second, the bucket that decides the apps' calls (the tightest on their path, learned\n" +
      'ones included), its rate and concurrency, and where each figure stands: configured (told), guessed (a\n' +
      'starting point), learned (found here from the answers) or stated (named by a 429).\n' +
      `It starts at what the gateway was told${told}; where CDF answers 429 the gateway cuts it, where calls wait\n` +
      'and CDF says yes it raises a guessed or learned figure, carefully near where CDF pushed back.' +
      (over === 1 && headroom === 1
        ? '\nRun with --oversubscribe 3 (told 3x the quota) or --headroom 4 (CDF allows 4x the guess) to watch it learn.'
        : '') +
      `\n${timeline.render()}\n`,
  );
  if (flags.json)
    writeFileSync(
      flags.json,
      JSON.stringify(
        { quota, apps, partitions, seconds, over, headroom, chargeThrottled, rows, timeline: timeline.samples },
        null,
        2,
      ),
    );

  const stop = async () => {
    await gateway.close();
    await sim.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const stayFor = flags.duration === undefined ? null : num('duration');
  if (flags.stay || stayFor !== null) {
    console.log(`Gateway: ${url}   dashboard ${url}/dashboard   metrics ${url}/metrics   log ${logFile}`);
    console.log(`Simulator: ${sim.url}   counters ${sim.url}/_sim/stats`);
    if (stayFor !== null) {
      console.log(`Both stay up ${stayFor} s.`);
      setTimeout(stop, stayFor * 1000);
    } else console.log('Both stay up until Ctrl-C.');
    return;
  }
  console.log(
    `The gateway's dashboard was at ${url}/dashboard (metrics ${url}/metrics, log ${logFile}).\n` +
      'Run `npm run demo -- --stay` to keep the gateway, its dashboard and the simulator up until Ctrl-C.',
  );
  await stop();
}

const LEGEND = [
  'useful calls / quota: the 2xx answers CDF gave, as a share of what its quota allowed in the run',
  '  (rate x seconds + burst); 429s at CDF: calls CDF refused, which the SDKs retried after a backoff;',
  '  failed app calls: calls an app saw fail after the SDK gave up; fairness: 1.000 = every app got the same.',
].join('\n');

/** The cluster run: replicas as processes on one Redis, the apps spread over them, one replica killed. */
async function runReplicas(
  sim: Simulator,
  scenario: Omit<ScenarioOptions, 'baseUrl'>,
  limits: unknown[],
  rows: Row[],
  step: (text: string) => void,
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
  step(
    `the apps through ${replicas} gateway replicas sharing their buckets in ${flags.redis}: ${fleet.map((r) => r.url).join(', ')}` +
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
  const row = summarise(`${replicas} replicas on Redis`, through, killAfter === null ? null : fleet[0].url);
  rows.push(row);
  if (killAfter !== null) {
    const onKilled = row.failed - row.failedSurviving;
    const pointed = through.apps.filter((a) => a.baseUrl === fleet[0].url).length;
    console.log(
      `\nReplica 1 was killed ${killAfter} s into the run. ${pointed} of the ${apps} apps were pointed at it, and an app` +
        ` pointed at a dead gateway fails until it is pointed elsewhere (in production: a load balancer or` +
        ` the sidecar's restart). ${onKilled} of the ${row.failed} failed app calls were those apps' calls to the` +
        ` killed replica; ${row.failedSurviving} failed via the surviving replicas, whose apps kept working` +
        ` with the shared quota.`,
    );
  }
  console.log(`\n${table(rows)}\n\n${LEGEND}\n`);
  console.log(`Replica logs: ${fleet.map((r) => r.logFile).join(', ')}`);
  if (flags.json)
    writeFileSync(
      flags.json,
      JSON.stringify({ quota, apps, partitions, seconds, replicas, killAfter, chargeThrottled, rows }, null, 2),
    );
  const stop = async () => {
    for (const r of fleet) r.process.kill('SIGTERM');
    await sim.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const alive = killAfter === null ? fleet : fleet.slice(1);
  if (flags.stay) {
    console.log(`Dashboards: ${alive.map((r) => `${r.url}/dashboard`).join(', ')}. They stay up until Ctrl-C.`);
    return;
  }
  console.log(`The replicas' dashboards were at ${alive.map((r) => `${r.url}/dashboard`).join(', ')}.`);
  await stop();
}

/** Each second: the bucket that decides the apps' calls (`POST /assets/list`), with its figures and where they stand. */
function sampleEffectiveRate(gateway: Gateway) {
  const samples: Array<{
    second: number;
    bucket: string;
    rate: number;
    rateSource: string;
    concurrency: number;
    concurrencySource: string;
  }> = [];
  const started = Date.now();
  const route = lookupRoute('POST', '/assets/list');
  const timer = setInterval(() => {
    const buckets = gateway.quota.bucketsFor('POST', '/assets/list', route, 'demo', () => 'demo');
    if (buckets.length === 0) return;
    const byRate = buckets.reduce((a, b) => (b.rate < a.rate ? b : a));
    const byConcurrency = buckets.reduce((a, b) => (b.concurrency < a.concurrency ? b : a));
    samples.push({
      second: Math.round((Date.now() - started) / 1000),
      bucket: byRate === byConcurrency ? byRate.limit.name : `${byRate.limit.name} / ${byConcurrency.limit.name}`,
      rate: byRate.rate,
      rateSource: byRate.rateSource,
      concurrency: byConcurrency.concurrency,
      concurrencySource: byConcurrency.concurrencySource,
    });
  }, 1000);
  return {
    samples,
    stop: () => clearInterval(timer),
    render: () =>
      samples
        .map(
          (s) =>
            `  t=${String(s.second).padStart(3)} s  ${s.bucket.padEnd(22)} rate ${s.rate.toFixed(1).padStart(6)}/s (${s.rateSource})  concurrency ${s.concurrency} (${s.concurrencySource})`,
        )
        .join('\n'),
  };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
