// Scheduler: decisions/s and added latency of the gateway's quota scheduler vs Bottleneck under the same
// load (a job = acquire, resolve at once, release), and admission accuracy under contention.
// Runs in one process pinned to core 1 (it re-executes itself under taskset).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fmt, header, median, percentile, requireDist, table, writeResult } from './lib/common.mjs';
import { PROXY_CORE, ROOT } from './lib/proc.mjs';

if (!process.env.BENCH_PINNED && existsSync('/usr/bin/taskset')) {
  const r = spawnSync('taskset', ['-c', String(PROXY_CORE), process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_PINNED: '1' },
  });
  process.exit(r.status ?? 1);
}

requireDist();
const { MemoryStore, Scheduler } = await import(join(ROOT, 'dist', 'quota', 'index.js'));
const { default: Bottleneck } = await import('bottleneck');

const N = Number(process.env.BENCH_SCHED_JOBS ?? 20_000);
const REPS = Number(process.env.BENCH_SCHED_REPS ?? 3);
const CONTENTION_RATE = 1000;
const CONTENTION_BURST = 100;
const CONTENTION_MS = 2000;
const REDIS = { host: '127.0.0.1', port: 6379 };
const REDIS_JOBS = Number(process.env.BENCH_SCHED_REDIS_JOBS ?? 2000);
// Bottleneck's local datastore yields with setTimeout(0) (>= 1 ms) on every job: a few hundred decisions/s,
// so N jobs would take minutes. Every run stops issuing jobs after MAX_MS; the rate is over the jobs done.
const MAX_MS = Number(process.env.BENCH_SCHED_MAX_MS ?? 3000);

const APP = { id: 'bench', weight: 1, priority: 0 };
const limit = (rate, burst, concurrency) => ({
  name: 'bench',
  match: ['/**'],
  methods: null,
  per: 'project',
  rate,
  burst,
  concurrency,
  fallback: false,
});

/** Our scheduler as a job runner: returns (job) => Promise that holds a lease while the job runs. */
function ours(rate, burst, concurrency) {
  const scheduler = new Scheduler(new MemoryStore(), { maxWaitMs: 60_000, maxQueued: 1_000_000 });
  const bucket = scheduler.bucket(limit(rate, burst, concurrency), 'p');
  const buckets = [bucket];
  return {
    name: 'cdf-gateway Scheduler (memory)',
    // The bucket's own capacity: the Scheduler keeps rate x 50 ms of the burst in reserve for transit jitter.
    capacity: bucket.burst,
    async run(job) {
      const lease = await scheduler.acquire(buckets, APP, performance.now() + 60_000);
      try {
        job();
      } finally {
        lease.release();
      }
    },
    async stop() {
      scheduler.close();
    },
  };
}

function bottleneck(options, name = 'Bottleneck (local)') {
  const limiter = new Bottleneck(options);
  limiter.on('error', () => {});
  return {
    name,
    limiter,
    run(job) {
      return limiter.schedule(() => {
        job();
        return Promise.resolve();
      });
    },
    async stop() {
      await limiter.stop({ dropWaitingJobs: true }).catch(() => {});
      if (options.datastore) await limiter.disconnect(false).catch(() => {});
    },
  };
}

/**
 * `jobs` jobs by `callers` concurrent callers, or as many as fit in `maxMs` (no new job starts after it);
 * latency = from the call to the job starting.
 */
async function throughput(runner, jobs, callers, maxMs = MAX_MS) {
  const lat = new Float64Array(jobs);
  let issued = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const stopAt = t0 + maxMs;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (issued < jobs && performance.now() < stopAt) {
        const i = issued++;
        const start = performance.now();
        await runner.run(() => {
          lat[i] = performance.now() - start;
        });
      }
    }),
  );
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const sorted = Array.from(lat.subarray(0, issued)).sort((a, b) => a - b);
  return {
    jobs: issued,
    decisionsPerSec: issued / (elapsed / 1000),
    p50Us: percentile(sorted, 50) * 1000,
    p99Us: percentile(sorted, 99) * 1000,
    cpuUsPerDecision: (cpu.user + cpu.system) / issued,
  };
}

/** 64 callers against a rate-limited runner for CONTENTION_MS: how many started inside the window. */
async function contention(runner, callers = 64) {
  const t0 = performance.now();
  const end = t0 + CONTENTION_MS;
  let admitted = 0;
  let stopped = false;
  const waits = [];
  const cpu0 = process.cpuUsage();
  const loops = Array.from({ length: callers }, async () => {
    while (!stopped) {
      const start = performance.now();
      try {
        await runner.run(() => {
          const now = performance.now();
          if (now <= end) {
            admitted++;
            waits.push(now - start);
          }
        });
      } catch {
        return;
      }
    }
  });
  await new Promise((r) => setTimeout(r, CONTENTION_MS + 50));
  stopped = true;
  const cpu = process.cpuUsage(cpu0);
  await runner.stop();
  await Promise.race([Promise.allSettled(loops), new Promise((r) => setTimeout(r, 2000))]);
  waits.sort((a, b) => a - b);
  return {
    admitted,
    waitP50Ms: percentile(waits, 50),
    waitP99Ms: percentile(waits, 99),
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

function redisReachable() {
  return new Promise((resolve) => {
    const s = createConnection(REDIS);
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => {
      s.write('PING\r\n');
      s.once('data', (d) => done(d.toString().startsWith('+PONG')));
    });
  });
}

header(
  'scheduler',
  `N=${N} jobs (acquire -> resolve at once -> release), 1 and 64 callers, ${REPS} interleaved reps; contention: ${CONTENTION_RATE}/s, burst ${CONTENTION_BURST}, ${CONTENTION_MS / 1000} s`,
);
console.log(`    this benchmark runs in one process pinned to core ${PROXY_CORE}`);

const ROOMY = [1e9, 1e9, 1e6];
const makers = [() => ours(...ROOMY), () => bottleneck({ maxConcurrent: 1e6 }, 'Bottleneck (local)')];
// Warm-up (JIT) on a few thousand jobs each.
for (const make of makers) {
  const r = make();
  await throughput(r, 2000, 16, 500);
  await r.stop();
}

const roomy = [];
for (const callers of [1, 64]) {
  const reps = new Map();
  for (let rep = 0; rep < REPS; rep++) {
    for (const make of makers) {
      const r = make();
      const res = await throughput(r, N, callers);
      await r.stop();
      if (!reps.has(r.name)) reps.set(r.name, []);
      reps.get(r.name).push(res);
    }
  }
  for (const [name, rs] of reps) {
    roomy.push({
      limiter: name,
      callers,
      decisionsPerSec: median(rs.map((r) => r.decisionsPerSec)),
      p50Us: median(rs.map((r) => r.p50Us)),
      p99Us: median(rs.map((r) => r.p99Us)),
      cpuUsPerDecision: median(rs.map((r) => r.cpuUsPerDecision)),
      jobs: Math.min(...rs.map((r) => r.jobs)),
    });
  }
}

const notes = [];
if (await redisReachable()) {
  for (const callers of [1, 64]) {
    const id = `cdfgw-bench-${process.pid}-${callers}-${Date.now()}`;
    const r = bottleneck(
      { maxConcurrent: 1e6, datastore: 'ioredis', clientOptions: REDIS, id, clearDatastore: true, timeout: 60_000 },
      'Bottleneck (ioredis)',
    );
    try {
      await Promise.race([
        r.limiter.ready(),
        new Promise((_, rej) => setTimeout(() => rej(new Error('not ready in 3 s')), 3000)),
      ]);
      await throughput(r, 200, callers, 500);
      const res = await throughput(r, REDIS_JOBS, callers);
      roomy.push({ limiter: 'Bottleneck (ioredis)', callers, ...res });
    } catch (err) {
      notes.push(`Bottleneck ioredis mode failed: ${err.message}`);
    } finally {
      await r.stop();
    }
  }
} else notes.push('Bottleneck ioredis mode skipped: Redis not reachable on 127.0.0.1:6379');
if (existsSync(join(ROOT, 'bench', 'store.mjs')))
  notes.push('our Redis store is measured by bench/store.mjs (benchmark "store")');
else notes.push('our Redis store is not measured here (bench/store.mjs absent)');

table(
  roomy.map((r) => ({
    limiter: r.limiter,
    callers: r.callers,
    jobs: r.jobs,
    'decisions/s': fmt(r.decisionsPerSec),
    'p50 added µs': fmt(r.p50Us, 1),
    'p99 added µs': fmt(r.p99Us, 1),
    'CPU µs/decision': fmt(r.cpuUsPerDecision, 2),
  })),
  `With room to spare (no limit reached): medians; each run stops issuing after ${N} jobs or ${MAX_MS / 1000} s`,
);
const ratioRows = [1, 64].map((callers) => {
  const o = roomy.find((r) => r.callers === callers && r.limiter.startsWith('cdf-gateway'));
  const b = roomy.find((r) => r.callers === callers && r.limiter === 'Bottleneck (local)');
  return { callers, oursOverBottleneck: o.decisionsPerSec / b.decisionsPerSec };
});
for (const r of ratioRows)
  console.log(`  ${r.callers} caller(s): ours/Bottleneck decisions/s = ${fmt(r.oursOverBottleneck, 1)}x`);

// Under contention: the same token bucket in each. Bottleneck has no token bucket with a fractional
// refill: its reservoir refills in steps (every burst/rate seconds, heartbeat 10 ms), or minTime spaces
// jobs out. Two rates: 1,000/s (above what Bottleneck's local datastore can decide per second here) and
// 100/s (well within it), so accuracy is also compared where both can keep up.
const contended = [];
for (const [rate, burst] of [
  [CONTENTION_RATE, CONTENTION_BURST],
  [CONTENTION_RATE / 10, CONTENTION_BURST / 10],
]) {
  const secs = CONTENTION_MS / 1000;
  const expectedBucket = rate * secs + burst;
  const cases = [
    ['cdf-gateway Scheduler (memory)', () => ours(rate, burst, 1e6), expectedBucket],
    [
      `Bottleneck reservoir (+${burst} per ${(burst * 1000) / rate} ms, max ${burst})`,
      () =>
        bottleneck({
          maxConcurrent: 1e6,
          reservoir: burst,
          reservoirIncreaseAmount: burst,
          reservoirIncreaseInterval: (burst * 1000) / rate,
          reservoirIncreaseMaximum: burst,
          heartbeatInterval: 10,
        }),
      expectedBucket,
    ],
    [
      `Bottleneck minTime ${1000 / rate} ms (no burst)`,
      () => bottleneck({ maxConcurrent: 1e6, minTime: 1000 / rate }),
      rate * secs,
    ],
  ];
  for (const [name, make, expected] of cases) {
    const runner = make();
    // What the limiter itself aims for: rate x t + the burst it really holds (ours: less its jitter reserve).
    const design = runner.capacity === undefined ? expected : rate * secs + runner.capacity;
    const res = await contention(runner);
    contended.push({
      rate,
      burst,
      limiter: name,
      expected,
      design,
      ...res,
      accuracy: res.admitted / expected,
      designAccuracy: res.admitted / design,
    });
  }
}
table(
  contended.map((r) => ({
    'rate/s': r.rate,
    burst: r.burst,
    limiter: r.limiter,
    admitted: r.admitted,
    expected: r.expected,
    'admitted/expected': fmt(r.accuracy, 3),
    'admitted/own capacity': fmt(r.designAccuracy, 3),
    'wait p50 ms': fmt(r.waitP50Ms, 1),
    'wait p99 ms': fmt(r.waitP99Ms, 1),
    'CPU ms': fmt(r.cpuMs, 0),
  })),
  `Under contention: 64 callers for ${CONTENTION_MS / 1000} s; expected = rate*t + burst (minTime: rate*t); own capacity = rate*t + the burst the limiter really holds (ours keeps rate x 50 ms in reserve)`,
);
for (const n of notes) console.log(`note: ${n}`);

writeResult('scheduler', {
  settings: {
    jobs: N,
    maxMs: MAX_MS,
    reps: REPS,
    contention: { rates: [CONTENTION_RATE, CONTENTION_RATE / 10], ms: CONTENTION_MS, callers: 64 },
    redisJobs: REDIS_JOBS,
  },
  roomy,
  ratios: ratioRows,
  contention: contended,
  notes,
});
process.exit(0);
