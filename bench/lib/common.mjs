// What every benchmark needs: the simulator, the gateway, autocannon, tables, result files.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  backgroundMeter,
  freePort,
  LOAD_CORE,
  NODE,
  PINNING,
  PROXY_CORE,
  ROOT,
  run,
  start,
  startNode,
  waitForHttp,
} from './proc.mjs';

export const DIST = process.env.BENCH_DIST ?? join(ROOT, 'dist');
export const RESULTS = join(ROOT, 'bench', 'results');
export const TOKEN = 'Bearer bench-token';
// CPU used by others (builds, tests) while this benchmark ran: measured from when the benchmark is loaded.
const background = backgroundMeter();
/** Above this share of the machine used by others, a benchmark's figures are flagged as disturbed. */
export const BACKGROUND_WARN = 0.05;

export const AUTOCANNON = join(ROOT, 'node_modules', 'autocannon', 'autocannon.js');
/** Preloaded into autocannon: answers' bodies are counted, not kept as strings (see the file). */
export const AUTOCANNON_PRELOAD = join(ROOT, 'bench', 'lib', 'autocannon-drop-bodies.cjs');

export function requireDist() {
  if (!existsSync(join(DIST, 'index.js')) || !existsSync(join(DIST, 'sim', 'main.js'))) {
    console.error('dist/ is missing or incomplete: run `npm run build` first.');
    process.exit(1);
  }
}

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), `cdfgw-bench-${prefix}-`));
}

/** Starts the simulator CLI on `core`; `options` are SimOptions applied over HTTP (POST /_sim/options), tree off by default. */
export async function startSim(options = {}, { core = LOAD_CORE, nofile = 0 } = {}) {
  const port = await freePort();
  const proc = startNode('simulator', join(DIST, 'sim', 'main.js'), ['--port', String(port)], { core, nofile });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(proc, `${url}/_sim/stats`);
  const sim = {
    proc,
    url,
    async options(partial) {
      const res = await fetch(`${url}/_sim/options`, { method: 'POST', body: JSON.stringify(partial) });
      if (!res.ok) throw new Error(`simulator options: ${res.status} ${await res.text()}`);
      return res.json();
    },
    async stats() {
      return (await fetch(`${url}/_sim/stats`)).json();
    },
    async reset() {
      await (await fetch(`${url}/_sim/reset`, { method: 'POST', body: '{}' })).arrayBuffer();
    },
  };
  // The benchmarks measure the gateway against a CDF that pushes back only where they say so: the
  // simulator's documented limit tree is off unless a benchmark asks for it (tree: true).
  await sim.options({ tree: false, ...options });
  return sim;
}

/**
 * Starts the gateway CLI (dist/main.js, launched as shipped: SHIPPED_LAUNCH) on `core` with `config`
 * (written as a YAML file: JSON is YAML). Its log goes to `logTo` (a file or /dev/null), never to a pipe.
 */
export async function startGateway(
  upstreamUrl,
  config,
  {
    core = PROXY_CORE,
    logLevel = 'info',
    logTo = '/dev/null',
    nofile = 0,
    name = 'gateway',
    dist = DIST,
    nodeArgs = SHIPPED_LAUNCH.nodeArgs,
    env = {},
    launcher = [],
    readyMs = 15_000,
  } = {},
) {
  const port = await freePort();
  const dir = tempDir('gw');
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, JSON.stringify(config, null, 2));
  const [cmd, ...args] = [...launcher, NODE, ...nodeArgs, join(dist, 'main.js')];
  const proc = start(name, cmd, args, {
    core,
    nofile,
    stdout: logTo,
    env: {
      ...env,
      CDF_BASE_URL: upstreamUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: logLevel,
      GATEWAY_CONFIG: file,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(proc, `${url}/healthz`, readyMs);
  return { proc, url, configFile: file };
}

/**
 * How the gateway is shipped to run: the node flags of `npm start`, which the Docker image's CMD and the
 * package's bin (dist/main.js's `#!/usr/bin/env -S node ...` line) repeat; start-up throws when they
 * disagree. startGateway launches so unless told `nodeArgs: []` (a plain `node dist/main.js`).
 */
export const SHIPPED_LAUNCH = (() => {
  const start = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start.split(' ');
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1] ?? '[]');
  const shebang = readFileSync(join(ROOT, 'src', 'main.ts'), 'utf8').split('\n', 1)[0];
  const nodeArgs = start.slice(1, -1);
  if (start[0] !== 'node' || start.at(-1) !== 'dist/main.js' || cmd.join(' ') !== start.join(' '))
    throw new Error(`npm start (${start.join(' ')}) and the Dockerfile's CMD (${cmd.join(' ')}) disagree`);
  if (shebang !== `#!/usr/bin/env -S node ${nodeArgs.join(' ')}`.trimEnd())
    throw new Error(`src/main.ts's first line (${shebang}) does not launch node as npm start does`);
  return { nodeArgs };
})();

/** The bare baseline: fastify + @fastify/http-proxy to `upstream` (bench/baseline-proxy.mjs), on the proxy core. */
export async function startBare(
  upstream,
  { core = PROXY_CORE, nodeArgs = [], env = {}, launcher = [], readyMs = 15_000 } = {},
) {
  const port = await freePort();
  const [cmd, ...args] = [...launcher, NODE, ...nodeArgs, join(ROOT, 'bench', 'baseline-proxy.mjs')];
  const proc = start('bare proxy', cmd, args, {
    core,
    env: { ...env, UPSTREAM: upstream, PORT: String(port) },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(proc, `${url}/`, readyMs);
  return { proc, url };
}

/** ~1 KB of JSON each way: GET answers 3 assets (958 bytes); POST sends a 1 KB JSON body to the echo endpoint. */
export const SMALL_GET_PATH = '/api/v1/projects/p/assets?limit=3';
export const SMALL_POST_PATH = '/api/v1/projects/p/_sim/echo';
export const SMALL_POST_BODY = JSON.stringify({
  items: Array.from({ length: 8 }, (_, i) => ({
    externalId: `bench-${i}`,
    name: `Bench asset ${i}`,
    description: 'x'.repeat(70),
  })),
});

/** A limiter rule with room to spare: the scheduler runs on every request but never holds one back. */
export const ROOMY_LIMITS = [
  { name: 'bench', match: '/**', per: 'project', rate: 1_000_000, burst: 1_000_000, concurrency: 10_000 },
];

/**
 * autocannon as a child process pinned to the load core. Returns requests/s, latency percentiles (ms),
 * the request count and the non-2xx/error counts.
 */
export async function autocannon(
  url,
  { connections = 50, duration = 5, method = 'GET', body, input, headers = {}, core = LOAD_CORE, rate } = {},
) {
  const args = [
    '-r',
    AUTOCANNON_PRELOAD,
    AUTOCANNON,
    '--json',
    '-n',
    '-c',
    String(connections),
    '-d',
    String(duration),
    '-m',
    method,
  ];
  // A steady load: `rate` requests per second in all, whatever the latency.
  if (rate !== undefined) args.push('-R', String(rate));
  for (const [k, v] of Object.entries({ authorization: TOKEN, ...headers })) args.push('-H', `${k}=${v}`);
  if (body !== undefined) args.push('-b', body);
  // A large body goes in a file (one argument is limited to 128 KiB).
  if (input !== undefined) args.push('-i', input);
  args.push(url);
  const out = await run('autocannon', process.execPath, args, { core });
  const r = JSON.parse(out.slice(out.indexOf('{')));
  const ok = r['2xx'] ?? 0;
  return {
    rps: r.requests.average,
    requests: r.requests.total,
    ok,
    non2xx: r.non2xx ?? 0,
    errors: (r.errors ?? 0) + (r.timeouts ?? 0),
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    mean: r.latency.average,
    durationSec: r.duration,
    throughputBps: r.throughput.average,
    /** Response bytes received, partial answers included. */
    bytesReceived: r.throughput.total,
  };
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function median(values) {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** Jain's fairness index: 1 when every app got the same, 1/n when one got everything. */
export function jain(values) {
  const sum = values.reduce((a, b) => a + b, 0);
  const squares = values.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 1 : (sum * sum) / (values.length * squares);
}

export function fmt(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '-';
  if (typeof n !== 'number') return String(n);
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Prints a table (array of row objects, the keys of the first row are the columns). */
export function table(rows, title) {
  if (title) console.log(`\n${title}`);
  if (rows.length === 0) {
    console.log('(no rows)');
    return;
  }
  const cols = Object.keys(rows[0]);
  const cells = rows.map((r) => cols.map((c) => String(r[c] ?? '-')));
  const width = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  // Columns of figures are right-aligned, columns of words left-aligned.
  const numeric = cols.map((_, i) => cells.every((row) => /^([-+(]?[\d.,]+|-)/.test(row[i])));
  const line = (vals) =>
    `| ${vals.map((v, i) => (numeric[i] ? v.padStart(width[i]) : v.padEnd(width[i]))).join(' | ')} |`;
  console.log(line(cols));
  console.log(`|${width.map((w, i) => (numeric[i] ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`)).join('|')}|`);
  for (const row of cells) console.log(line(row));
}

export function machine() {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    model = /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }))?.[1]?.trim() ?? model;
  } catch {}
  return { nproc: cpus().length, cpu: model, node: process.version, pinning: PINNING };
}

export function writeResult(name, data) {
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, `${name}.json`);
  const backgroundCpuShare = background.share();
  console.log(
    `\nCPU used by other processes during this benchmark: ${fmt(backgroundCpuShare * 100, 1)}% of the machine${backgroundCpuShare > BACKGROUND_WARN ? ' -- WARNING: the machine was not quiet, figures are disturbed' : ''}`,
  );
  const body = { benchmark: name, date: new Date().toISOString(), machine: machine(), backgroundCpuShare, ...data };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

export function header(name, what) {
  console.log(`\n=== ${name}: ${what}`);
  console.log(`    ${PINNING}; ${cpus().length} cores, Node ${process.version}`);
}
