// Instructions per ~1 KB call: each proxy runs under valgrind's callgrind, which counts the instructions it
// executes, so the figure does not depend on how the two cores were shared during the run (throughput on this
// VM moves by more than 5 % between two copies of one build: bench/RESULTS.md). Targets: this build, a second
// copy of it (A/A: the method's own spread), another build (BENCH_BASELINE_DIST) and the bare fastify proxy.
// Each warms up, then counts ROUNDS x CALLS calls per workload between two callgrind dumps; the instructions
// its timers run while idle (counted over IDLE_SEC) are taken off in proportion to the time a round took.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import {
  fmt,
  header,
  median,
  ROOMY_LIMITS,
  requireDist,
  SMALL_GET_PATH,
  SMALL_POST_BODY,
  SMALL_POST_PATH,
  startBare,
  startGateway,
  startSim,
  TOKEN,
  table,
  tempDir,
  writeResult,
} from './lib/common.mjs';
import { run, sleep, stop, stopAll } from './lib/proc.mjs';

/** Calls per round: a round of 1,000 moved by ±10 % with the collections that fell in it. */
const CALLS = Number(process.env.BENCH_CALLS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Enough for V8 to have optimized the request path (the compiler's thread is counted apart). */
const WARM_CALLS = Number(process.env.BENCH_WARM_CALLS ?? 3000);
const IDLE_SEC = 5;
const CONNECTIONS = 4;
/** Under valgrind a proxy runs ~50x slower: its start-up takes tens of seconds. */
const READY_MS = 180_000;
/** ~1 KB calls must stay within this share of the baseline build's instructions (issue #29). */
const WITHIN = 0.05;

const GET = { name: 'GET 1 KB', method: 'GET', path: SMALL_GET_PATH };
const POST = { name: 'POST 1 KB', method: 'POST', path: SMALL_POST_PATH, body: SMALL_POST_BODY };
const WORKLOADS = [GET, POST];

async function load(pool, workload, calls) {
  let next = 0;
  const headers = { authorization: TOKEN, 'content-type': 'application/json' };
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next++ < calls) {
        const res = await pool.request({ path: workload.path, method: workload.method, headers, body: workload.body });
        await res.body.arrayBuffer();
        if (res.statusCode !== 200) throw new Error(`${workload.name}: ${res.statusCode}`);
      }
    }),
  );
}

/** The totals line of a callgrind dump file, or undefined while it is still being written. */
function totalOf(file) {
  const m = /^totals: (\d+)$/m.exec(readFileSync(file, 'utf8'));
  return m === null ? undefined : Number(m[1]);
}

/**
 * Callgrind's instructions since its previous dump (the `n`th), one file per thread: the main thread's, where the
 * request path runs, and all threads' (V8's compiler and GC helpers too, which is where a run's noise is).
 * valgrind names its control pipe after $HOST, which the proxies are given.
 */
async function dump(proc, dir, n) {
  await run('callgrind_control', 'callgrind_control', ['-d', String(proc.pid)], { env: { HOST: '127.0.0.1' } });
  for (let waited = 0; ; waited += 100) {
    const files = readdirSync(dir).filter((f) => f.startsWith(`cg.out.${n}-`));
    const totals = files.map((f) => totalOf(join(dir, f)));
    if (files.includes(`cg.out.${n}-01`) && totals.every((t) => t !== undefined)) {
      await sleep(200);
      if (readdirSync(dir).filter((f) => f.startsWith(`cg.out.${n}-`)).length === files.length)
        return { main: totalOf(join(dir, `cg.out.${n}-01`)), all: totals.reduce((a, b) => a + b, 0) };
    }
    if (waited > 30_000) throw new Error(`callgrind did not dump ${proc.name} (${n})`);
    await sleep(100);
  }
}

async function measure(target, sim) {
  const dir = tempDir('callgrind');
  mkdirSync(dir, { recursive: true });
  const out = `--callgrind-out-file=${join(dir, 'cg.out')}`;
  const launcher = ['valgrind', '--tool=callgrind', '--separate-threads=yes', out];
  const { proc, url } = await target.start(sim.url, { launcher, readyMs: READY_MS, core: null });
  const pool = new Pool(url, { connections: CONNECTIONS });
  let dumps = 0;
  try {
    for (const w of WORKLOADS) await load(pool, w, WARM_CALLS);
    await dump(proc, dir, ++dumps);
    const idleStart = performance.now();
    await sleep(IDLE_SEC * 1000);
    const idle = await dump(proc, dir, ++dumps);
    const idleMs = performance.now() - idleStart;
    const perCall = { main: {}, all: {} };
    for (const w of WORKLOADS) [perCall.main[w.name], perCall.all[w.name]] = [[], []];
    for (let r = 0; r < ROUNDS; r++)
      for (const w of WORKLOADS) {
        const t0 = performance.now();
        await load(pool, w, CALLS);
        const counted = await dump(proc, dir, ++dumps);
        const ms = performance.now() - t0;
        for (const k of ['main', 'all']) perCall[k][w.name].push((counted[k] - (idle[k] / idleMs) * ms) / CALLS);
      }
    const k = (n) => `${fmt(n / 1000)}k`;
    console.log(
      `  ${target.name}: ${WORKLOADS.map((w) => `${w.name} main ${perCall.main[w.name].map(k).join('/')}, all ${perCall.all[w.name].map(k).join('/')}`).join('; ')}`,
    );
    return {
      name: target.name,
      idlePerSec: { main: (idle.main / idleMs) * 1000, all: (idle.all / idleMs) * 1000 },
      perCall,
    };
  } finally {
    await pool.close();
    await stop(proc, 10_000);
  }
}

requireDist();
header(
  'instructions',
  `instructions per call under callgrind, ${ROUNDS} x ${CALLS} calls per workload after ${WARM_CALLS} to warm up, ${CONNECTIONS} connections`,
);
console.log(
  '    (this benchmark runs its targets at once, unpinned: callgrind counts the same however the cores are shared)',
);
const sim = await startSim();
const gateway = (name, dist) => ({
  name,
  start: (upstream, opts) => startGateway(upstream, { limits: ROOMY_LIMITS }, { ...opts, dist, name }),
});
const targets = [gateway('gateway (this build)'), gateway('gateway (this build, A/A copy)')];
if (process.env.BENCH_BASELINE_DIST) targets.push(gateway('gateway (baseline build)', process.env.BENCH_BASELINE_DIST));
// The bare proxy listens on $HOST as the gateway does, so callgrind_control finds both alike.
targets.push({
  name: 'bare fastify proxy',
  start: (upstream, opts) => startBare(upstream, { ...opts, env: { HOST: '127.0.0.1' } }),
});
const results = [];
try {
  // All at once, unpinned: a count does not depend on what else runs, and each target takes minutes.
  results.push(...(await Promise.all(targets.map((t) => measure(t, sim)))));
} finally {
  await stopAll();
}
const [self] = results;
const ratio = (r, k, w) => median(r.perCall[k][w.name]) / median(self.perCall[k][w.name]);
const rows = results.map((r) => {
  const row = { target: r.name };
  for (const w of WORKLOADS) {
    row[`${w.name}, main thread`] = `${fmt(median(r.perCall.main[w.name]) / 1000)}k`;
    row[`${w.name} vs this build`] = `${fmt(ratio(r, 'main', w) * 100, 1)} %`;
    row[`${w.name}, all threads`] = `${fmt(median(r.perCall.all[w.name]) / 1000)}k`;
    row[`${w.name}, all vs this build`] = `${fmt(ratio(r, 'all', w) * 100, 1)} %`;
  }
  row['idle/s, main'] = `${fmt(r.idlePerSec.main / 1e6, 1)}M`;
  return row;
});
table(rows, 'instructions per call (median of the rounds, idle timers taken off)');
const baseline = results.find((r) => r.name === 'gateway (baseline build)');
// The main thread runs the request path; the other threads' share moves with V8's compiler and GC between rounds.
const verdicts = baseline
  ? WORKLOADS.map((w) => {
      const r = median(self.perCall.main[w.name]) / median(baseline.perCall.main[w.name]);
      return { workload: w.name, ratio: r, pass: r <= 1 + WITHIN };
    })
  : [];
for (const v of verdicts)
  console.log(
    `${v.workload}: this build / baseline, main thread = ${fmt(v.ratio, 3)} (within ${WITHIN * 100} %: ${v.pass ? 'PASS' : 'MISS'})`,
  );
writeResult('instructions', {
  calls: CALLS,
  rounds: ROUNDS,
  warmCalls: WARM_CALLS,
  connections: CONNECTIONS,
  results,
  verdicts,
});
