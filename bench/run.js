#!/usr/bin/env node
// Runs the benchmarks: `npm run bench` (all) or `npm run bench -- NAME [NAME...] [--runs N]`.
// Each benchmark runs as its own process; it prints a table and writes bench/results/NAME.json. Flags
// (`--runs N`) are handed to each benchmark; those that take none ignore them.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backgroundMeter } from './lib/proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const ALL = ['overhead', 'scheduler', 'quota', 'tree', 'sidecars', 'cache', 'memory', 'store', 'hardening', 'ops-path'];
// Run only when named: a whole learning run takes the better part of an hour, instructions runs under valgrind.
const BY_NAME = ['learning', 'instructions'];
const DESCRIPTIONS = {
  overhead:
    'gateway vs direct, bare fastify proxy and nginx, 1 KB calls and large bodies (GET 1/16 MiB, POST 4 MiB): throughput, p50/p99, CPU per request and per MiB, peak RSS',
  scheduler: 'quota scheduler vs Bottleneck: decisions/s, added latency, accuracy under contention',
  quota: 'apps on @cognite/sdk sharing one quota, direct vs through the gateway (the headline)',
  tree: "apps with their own identities on CDF's documented limit tree, direct vs the gateway's defaults",
  learning:
    'issue #27: a matrix of CDF stand-ins (hidden, raised and tighter figures; 429 wordings; limiter shapes; replicas), direct vs through the gateway, ranges over runs',
  instructions:
    'issue #29: instructions per ~1 KB call under callgrind, this build vs a copy of itself, BENCH_BASELINE_DIST and the bare proxy',
  cache: 'cache hit path vs proxied path, and single-flight of identical calls',
  memory:
    'sidecar footprint (idle CPU and RSS, CPU per call at 150/s) vs the bare proxy; gateway RSS with 2,000 held connections, a 512 MiB download, a full cache',
  sidecars: 'one gateway per app sharing the quota in Redis vs one shared gateway: weights, priority, latency',
  store: 'quota store: in-memory vs Redis decisions/s, and Redis calls per admitted request under contention',
  'ops-path': 'issue #15 alone: RateLimit headers per answer, tracing hooks off, the spans of a request on',
  hardening: 'issue #13: a 512 MiB gzip bomb, 1,000 queued 8 MiB uploads, 40 clients that stop reading 1 GB answers',
};

if (!existsSync(join(root, 'dist', 'index.js')) || !existsSync(join(root, 'dist', 'sim', 'main.js'))) {
  console.error('dist/ is missing: run `npm run build` first (the benchmarks run the built gateway).');
  process.exit(1);
}

const available = [...ALL, ...BY_NAME].filter((name) => existsSync(join(here, `${name}.mjs`)));
// `--runs N` takes a value: it is a flag's, not a benchmark's name.
const args = process.argv.slice(2);
const flags = [];
const asked = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--runs' && i + 1 < args.length) flags.push(args[i], args[++i]);
  else if (args[i].startsWith('-')) flags.push(args[i]);
  else asked.push(args[i]);
}
const unknown = asked.filter((a) => !available.includes(a));
if (unknown.length > 0) {
  console.error(
    `unknown benchmark(s): ${unknown.join(', ')}\navailable:\n${available.map((n) => `  ${n.padEnd(10)} ${DESCRIPTIONS[n]}`).join('\n')}`,
  );
  process.exit(2);
}
const names = asked.length > 0 ? asked : available.filter((n) => !BY_NAME.includes(n));

console.log(`cdf-gateway benchmarks: ${names.join(', ')}`);
console.log(
  `${new Date().toISOString()}; ${cpus().length} cores (${cpus()[0]?.model ?? '?'}); Node ${process.version}`,
);
console.log(
  'Pinning: the proxy under test on core 1, the upstream (simulator) and the load generator on core 0 (taskset -c).',
);
console.log('Compare figures of one run with each other (as ratios), not across runs or machines.');

const started = Date.now();
const outcomes = [];
for (const name of names) {
  const t0 = Date.now();
  // The benchmark and everything it started are this process's (reaped) children: the rest is others' work.
  const meter = backgroundMeter(() => []);
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, `${name}.mjs`), ...flags], { cwd: root, stdio: 'inherit' });
    child.once('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
  });
  outcomes.push({ name, code, seconds: (Date.now() - t0) / 1000, background: meter.share() });
}
const total = (Date.now() - started) / 1000;
console.log('\nSummary');
for (const o of outcomes)
  console.log(
    `  ${o.name.padEnd(10)} ${o.code === 0 ? 'ok    ' : `FAILED (exit ${o.code})`} ${o.seconds.toFixed(1).padStart(6)} s   others used ${(o.background * 100).toFixed(1)}% of the CPU${o.background > 0.05 ? ' (not quiet: figures disturbed)' : ''}`,
  );
console.log(`  total      ${total.toFixed(1)} s`);
process.exit(outcomes.every((o) => o.code === 0) ? 0 : 1);
