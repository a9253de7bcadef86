#!/usr/bin/env node
// Issue #13's figures, against the gateway as a process of its own (so its memory is its own):
//   bomb     a 512 MiB gzip bomb (several, some at once): /healthz latency while they are handled, RSS growth
//   uploads  1,000 queued 8 MiB uploads behind a 1/s quota: the gateway's RSS against retry.maxBufferedBytes
//   readers  40 clients that stop reading 1 GB answers (concurrency 10): how soon each slot comes back
//   callers  30,000 made-up project names, each with its own token, through the default table: RSS added
// Usage: node bench/hardening.mjs [bomb] [uploads] [readers] [callers]   (all by default; needs `npm run build`)
// 1,000 client connections need open files: it re-runs itself under `ulimit -n 8192` once.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createGzip } from 'node:zlib';
import {
  fmt,
  header,
  ROOMY_LIMITS,
  requireDist,
  startGateway,
  startSim,
  TOKEN,
  tempDir,
  writeResult,
} from './lib/common.mjs';
import { memory, sleep, stopAll } from './lib/proc.mjs';

if (!process.env.CDFGW_BENCH_NOFILE) {
  const again = spawnSync(
    'bash',
    [
      '-c',
      'ulimit -n 8192 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$0" "$@"',
      process.execPath,
      ...process.argv.slice(1),
    ],
    { stdio: 'inherit', env: { ...process.env, CDFGW_BENCH_NOFILE: '1' } },
  );
  process.exit(again.status ?? 1);
}
requireDist();
const MiB = 1024 * 1024;
const P = '/api/v1/projects/bench';
const which = new Set(process.argv.slice(2));
const all = which.size === 0;
const results = {};

function post(url, path, body, headers, agent) {
  return new Promise((resolve) => {
    const req = request(
      `${url}${path}`,
      { method: 'POST', agent, headers: { authorization: TOKEN, 'content-length': body.length, ...headers } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', () => resolve(0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function gzipZeros(bytes) {
  const gz = createGzip({ level: 9 });
  const out = [];
  gz.on('data', (c) => out.push(c));
  const done = new Promise((r) => gz.on('end', r));
  const zeros = Buffer.alloc(MiB);
  for (let left = bytes; left > 0; left -= MiB) if (!gz.write(zeros)) await new Promise((r) => gz.once('drain', r));
  gz.end();
  await done;
  const plain = Buffer.concat(out);
  // The file name field says "partition", as in the review's bomb.
  const head = Buffer.from(plain.subarray(0, 10));
  head[3] |= 0x08;
  return Buffer.concat([head, Buffer.from('partition=99/1\0', 'latin1'), plain.subarray(10)]);
}

async function bomb() {
  header('bomb', '512 MiB gzip bombs on a cached POST with a partition check');
  const sim = await startSim();
  // BENCH_DIST=/other/checkout/dist runs another build (e.g. before the fix) for comparison.
  const gw = await startGateway(
    sim.url,
    { cache: { rules: [{ match: ['/assets/list'], methods: ['POST'], ttlMs: 60_000 }] } },
    process.env.BENCH_DIST ? { dist: process.env.BENCH_DIST } : {},
  );
  const payload = await gzipZeros(512 * MiB);
  console.log(`bomb: ${fmt(payload.length / 1024)} KiB inflating to 512 MiB`);
  // Warm up, then the baseline.
  for (let i = 0; i < 20; i++) await fetch(`${gw.url}/healthz`).then((r) => r.arrayBuffer());
  await sleep(500);
  const before = memory(gw.proc.pid);
  const probe = (until) =>
    (async () => {
      const ms = [];
      while (!until()) {
        const t0 = performance.now();
        await fetch(`${gw.url}/healthz`).then((r) => r.arrayBuffer());
        ms.push(performance.now() - t0);
        await sleep(10);
      }
      return ms.sort((x, y) => x - y);
    })();
  // The same probes with nothing else going on: the machine's own noise, for comparison.
  const quietEnd = performance.now() + 3000;
  const quietMs = await probe(() => performance.now() > quietEnd);
  let running = true;
  const prober = probe(() => !running);
  const statuses = [];
  // One bomb at a time first (the figure), then four at once.
  for (let i = 0; i < 4; i++) {
    statuses.push(
      await post(gw.url, `${P}/assets/list`, payload, {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      }),
    );
  }
  const single = memory(gw.proc.pid);
  for (let round = 0; round < 2; round++) {
    statuses.push(
      ...(await Promise.all(
        Array.from({ length: 4 }, () =>
          post(gw.url, `${P}/assets/list`, payload, { 'content-type': 'application/json', 'content-encoding': 'gzip' }),
        ),
      )),
    );
  }
  running = false;
  const healthMs = await prober;
  const after = memory(gw.proc.pid);
  const r = {
    bombs: statuses.length,
    statuses: [...new Set(statuses)].join(','),
    healthzProbes: healthMs.length,
    healthzMaxMs: Math.round(healthMs.at(-1)),
    healthzP99Ms: Math.round(healthMs[Math.floor(healthMs.length * 0.99)]),
    healthzP50Ms: Math.round(healthMs[Math.floor(healthMs.length * 0.5)]),
    quietHealthzMaxMs: Math.round(quietMs.at(-1)),
    quietHealthzP50Ms: Math.round(quietMs[Math.floor(quietMs.length * 0.5)]),
    rssBeforeMiB: before.rssMiB,
    rssPeakMiB: after.peakMiB,
    rssGrowthOneAtATimeMiB: single.peakMiB - before.rssMiB,
    rssGrowthFourAtOnceMiB: after.peakMiB - before.rssMiB,
  };
  console.table(r);
  results.bomb = r;
  await stopAll();
}

async function uploads() {
  header('uploads', '1,000 queued 8 MiB uploads behind a 1/s quota');
  const sim = await startSim();
  const maxBufferedBytes = 256 * MiB;
  const gw = await startGateway(
    sim.url,
    {
      limits: [{ name: 'slow', match: ['/**'], per: 'project', rate: 1, burst: 1, concurrency: 1 }],
      queue: { maxWaitMs: 600_000, maxQueued: 5000 },
      retry: { maxBodyBytes: 8 * MiB, maxBufferedBytes, maxWaitMs: 600_000 },
    },
    { nofile: 8192 },
  );
  await sleep(300);
  const before = memory(gw.proc.pid);
  const body = Buffer.alloc(8 * MiB, 1);
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const n = 1000;
  const sockets = [];
  const requests = [];
  for (let i = 0; i < n; i++) {
    const req = request(`${gw.url}${P}/_sim/echo/u${i}`, {
      method: 'POST',
      agent,
      headers: { authorization: TOKEN, 'content-length': body.length, 'content-type': 'application/octet-stream' },
    });
    req.on('error', () => {});
    req.on('socket', (s) => sockets.push(s));
    req.end(body);
    requests.push(req);
    if (i % 100 === 99) await sleep(50);
  }
  // Let them all arrive and queue; sample the gateway's memory meanwhile.
  let peakRss = 0;
  for (let t = 0; t < 20; t++) {
    await sleep(500);
    peakRss = Math.max(peakRss, memory(gw.proc.pid).rssMiB);
  }
  const metrics = await fetch(`${gw.url}/metrics`).then((r) => r.text());
  const queued = [...metrics.matchAll(/^cdf_gateway_queue_length(?:\{[^}]*\})? (\d+)/gm)].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
  const after = memory(gw.proc.pid);
  for (const r of requests) r.destroy();
  const r = {
    uploads: n,
    queuedSeen: queued,
    maxBufferedMiB: maxBufferedBytes / MiB,
    rssBeforeMiB: before.rssMiB,
    rssPeakMiB: Math.max(peakRss, after.peakMiB),
    boundMiB: maxBufferedBytes / MiB + 200,
  };
  console.table(r);
  results.uploads = r;
  await stopAll();
}

async function readers() {
  header('readers', '40 clients that stop reading 1 GB answers, concurrency 10');
  const sim = await startSim();
  const idleMs = 2000;
  const dir = tempDir('readers');
  const log = `${dir}/gateway.log`;
  const gw = await startGateway(
    sim.url,
    {
      server: { responseIdleTimeoutMs: idleMs },
      limits: [{ name: 'all', match: ['/**'], per: 'project', rate: 1000, burst: 1000, concurrency: 10 }],
      queue: { maxWaitMs: 60_000 },
    },
    { logTo: log },
  );
  const { hostname, port } = new URL(gw.url);
  const t0 = performance.now();
  const sockets = Array.from({ length: 40 }, () => {
    const s = connect(Number(port), hostname);
    s.on('error', () => {});
    s.write(`GET ${P}/_sim/blob?bytes=${1024 * MiB} HTTP/1.1\r\nHost: x\r\nAuthorization: ${TOKEN}\r\n\r\n`);
    s.pause();
    return s;
  });
  // An honest app (another identity) keeps calling meanwhile.
  const honest = [];
  const honestUntil = performance.now() + 14_000;
  while (performance.now() < honestUntil) {
    const t = performance.now();
    const res = await fetch(`${gw.url}${P}/assets?limit=1`, { headers: { authorization: 'Bearer honest-app' } });
    await res.arrayBuffer();
    honest.push({ status: res.status, ms: performance.now() - t });
    await sleep(100);
  }
  await sleep(1000);
  const lines = readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.includes('CDFGW_RESPONSE_STALLED'))
    .map((l) => JSON.parse(l));
  for (const s of sockets) s.destroy();
  const honestMs = honest.map((h) => h.ms).sort((a, b) => a - b);
  const r = {
    readers: 40,
    ended: lines.length,
    responseIdleTimeoutMs: idleMs,
    // Each stalled answer's time from arrival to its end (includes waiting for a slot behind earlier ones).
    lastEndedAfterMs: Math.round(performance.now() - t0),
    honestCalls: honest.length,
    honest429: honest.filter((h) => h.status === 429).length,
    honestNon200: honest.filter((h) => h.status !== 200).length,
    honestMaxMs: Math.round(honestMs.at(-1)),
  };
  // From a slot taken to a slot freed: the log's duration minus the time it waited in the queue.
  const held = lines.map((l) => l.durationMs - (l.queuedMs ?? 0)).sort((a, b) => a - b);
  r.slotHeldMinMs = Math.round(held[0]);
  r.slotHeldMaxMs = Math.round(held.at(-1));
  console.table(r);
  results.readers = r;
  await stopAll();
}

/**
 * Issue #29: every per-caller structure bounded by what it costs. 30,000 made-up projects, each called with
 * its own token (so per-identity buckets and hashed credentials too), through the default table; RSS right
 * after and 30 s into the quiet, against the same gateway warmed up with a few callers.
 */
async function callers() {
  const n = Number(process.env.BENCH_CALLERS ?? 30_000);
  // BENCH_CALLERS_SAME=1: the same calls from one project and token (what the churn alone costs).
  const same = process.env.BENCH_CALLERS_SAME === '1';
  const quietSec = Number(process.env.BENCH_CALLERS_QUIET_SEC ?? 30);
  header('callers', `${n} made-up project names, each with its own token, through the default table`);
  const sim = await startSim();
  // The same calls from one project would wait for its Analytical budget: room to spare instead.
  const extra = process.env.BENCH_CALLERS_CONFIG ? JSON.parse(process.env.BENCH_CALLERS_CONFIG) : {};
  const gw = await startGateway(sim.url, same ? { limits: ROOMY_LIMITS, ...extra } : extra);
  const agent = new Agent({ keepAlive: true, maxSockets: 50 });
  const get = (i) =>
    new Promise((resolve) => {
      const req = request(
        `${gw.url}/api/v1/projects/made-up-${same ? 0 : i}/assets?limit=1`,
        { agent, headers: { authorization: `Bearer caller-${same ? 0 : i}` } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        },
      );
      req.on('error', () => resolve(0));
      req.end();
    });
  const run = async (from, to) => {
    const statuses = new Map();
    let next = from;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < to) {
          const status = await get(next++);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      }),
    );
    return Object.fromEntries(statuses);
  };
  // Warm: the same calls for a few callers, then the quiet the measurement ends with.
  await run(0, 200);
  await sleep(quietSec * 1000);
  const before = memory(gw.proc.pid).rssMiB;
  const t0 = performance.now();
  const statuses = await run(200, 200 + n);
  const seconds = (performance.now() - t0) / 1000;
  const right = memory(gw.proc.pid).rssMiB;
  await sleep(quietSec * 1000);
  const after = memory(gw.proc.pid).rssMiB;
  agent.destroy();
  // Where the memory is: V8's heap spaces (used and committed) from the gateway's own /metrics.
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  const space = (name) =>
    [...metrics.matchAll(new RegExp(`^nodejs_heap_space_size_${name}_bytes\\{space="([a-z_]+)"\\} (\\d+)`, 'gm'))]
      .map((m) => `${m[1]} ${fmt(Number(m[2]) / 2 ** 20, 1)}`)
      .join(', ');
  console.log(`heap spaces used (MiB): ${space('used')}\nheap spaces committed (MiB): ${space('total')}`);
  const r = {
    callers: n,
    callsPerSecond: Math.round(n / seconds),
    statuses: JSON.stringify(statuses),
    rssBeforeMiB: fmt(before, 1),
    rssRightAfterMiB: fmt(right, 1),
    [`rss${quietSec}sAfterMiB`]: fmt(after, 1),
    addedRightAfterMiB: fmt(right - before, 1),
    [`added${quietSec}sAfterMiB`]: fmt(after - before, 1),
  };
  console.table(r);
  results.callers = r;
  await stopAll();
}

try {
  if (all || which.has('callers')) await callers();
  if (all || which.has('bomb')) await bomb();
  if (all || which.has('uploads')) await uploads();
  if (all || which.has('readers')) await readers();
  writeResult('hardening', results);
} finally {
  await stopAll();
}
