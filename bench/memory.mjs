// Memory: the gateway's resident memory idle, with 2,000 connections held open against a slow upstream,
// while streaming a 512 MiB download, and with the response cache at its byte limit. And the footprint of a
// sidecar next to the bare proxy: CPU and RSS when idle, CPU per call at a steady 150 calls/s.
import { join } from 'node:path';
import {
  autocannon,
  fmt,
  header,
  median,
  ROOMY_LIMITS,
  requireDist,
  SHIPPED_LAUNCH,
  startBare,
  startGateway,
  startSim,
  TOKEN,
  table,
  writeResult,
} from './lib/common.mjs';
import { cpuMicros, LOAD_CORE, memory, PINNING, ROOT, run, sleep, stop, stopAll } from './lib/proc.mjs';

const HELD = Number(process.env.BENCH_MEM_CONNECTIONS ?? 2000);
const SLOW_MS = 5000;
const BLOB_BYTES = 512 * 2 ** 20;
const CACHE_MAX_BYTES = 64 * 2 ** 20;
const FILL_CALLS = 400; // ~330 KB each: about twice the cache's byte limit
const NOFILE = 20_000;
const CLIENT = join(ROOT, 'bench', 'lib', 'client.mjs');
const IDLE_SEC = Number(process.env.BENCH_IDLE_SEC ?? 30);
/** RSS is read early in the idle stretch too: V8 gives back the heap a warm-up grew only after ~10-20 s of quiet. */
const EARLY_IDLE_SEC = 10;
const STEADY_RATE = 150;
const STEADY_SEC = Number(process.env.BENCH_STEADY_SEC ?? 8);
const STEADY_ROUNDS = 2;

/** 400 small calls (20 at a time), then a second to settle: the state an app leaves a sidecar in. */
async function warm(url) {
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      for (let i = 0; i < 20; i++)
        await (
          await fetch(`${url}/api/v1/projects/p/assets?limit=3`, {
            headers: { authorization: TOKEN },
            cache: 'no-store',
          })
        ).arrayBuffer();
    }),
  );
  await sleep(1000);
}

/**
 * A sidecar's footprint, the gateway with its default configuration next to the bare proxy: CPU (% of a
 * core) and RSS while idle after warm-up calls, then CPU per call at a steady STEADY_RATE calls/s (interleaved).
 */
async function footprint(sim) {
  // Defaults but for the limits: the default assets bucket per identity is 150/s, which 150 calls/s of one
  // token would sit exactly at (queueing, not overhead).
  // Each launched two ways: as the gateway ships (SHIPPED_LAUNCH: `npm start`, the bin and the image's CMD,
  // with its node flags), which is how a sidecar runs, and as a plain `node <script>`; the bare proxy both
  // ways too, for comparison.
  const launches = [
    [
      'gateway as it ships (defaults, roomy limit)',
      () => startGateway(sim.url, { limits: ROOMY_LIMITS }, { name: 'gateway' }),
    ],
    [
      'gateway, plain node dist/main.js',
      () => startGateway(sim.url, { limits: ROOMY_LIMITS }, { name: 'plain gateway', nodeArgs: [] }),
    ],
    ['bare fastify+http-proxy', () => startBare(sim.url)],
    ["bare, with the gateway's node flags", () => startBare(sim.url, SHIPPED_LAUNCH)],
  ];
  const targets = [];
  for (const [name, launch] of launches) {
    const { proc, url } = await launch();
    targets.push({ name, url, pid: proc.pid, proc });
  }
  await sleep(2000);
  for (const t of targets) t.freshRssMiB = memory(t.pid).rssMiB;
  for (const t of targets) await warm(t.url);
  await sleep(2000); // past the dashboard sampler's two quiet seconds
  const cpu0 = targets.map((t) => cpuMicros(t.pid));
  await sleep(EARLY_IDLE_SEC * 1000);
  for (const t of targets) t.earlyIdleRssMiB = memory(t.pid).rssMiB;
  await sleep((IDLE_SEC - EARLY_IDLE_SEC) * 1000);
  for (const [i, t] of targets.entries()) {
    t.idleCpuPct = (cpuMicros(t.pid) - cpu0[i]) / (IDLE_SEC * 1e4);
    t.idleRssMiB = memory(t.pid).rssMiB;
    t.steady = [];
  }
  for (let round = 0; round < STEADY_ROUNDS; round++) {
    for (const t of targets) {
      const c0 = cpuMicros(t.pid);
      const r = await autocannon(`${t.url}/api/v1/projects/p/assets?limit=3`, {
        connections: 10,
        duration: STEADY_SEC,
        rate: STEADY_RATE,
      });
      t.steady.push({ cpuUsPerCall: (cpuMicros(t.pid) - c0) / r.requests, rps: r.rps, p99: r.p99, non2xx: r.non2xx });
    }
  }
  for (const t of targets) {
    t.cpuUsPerCall = median(t.steady.map((s) => s.cpuUsPerCall));
    t.steadyRps = median(t.steady.map((s) => s.rps));
    t.steadyCpuPct = (t.cpuUsPerCall * t.steadyRps) / 1e4;
    t.steadyRssMiB = memory(t.pid).rssMiB;
  }
  await Promise.all(targets.map((t) => stop(t.proc)));
  return targets;
}

/** Runs the client child while sampling the gateway's RSS every 50 ms; returns its output and the peak. */
async function sampled(pid, args) {
  let peak = memory(pid).rssMiB;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, memory(pid).rssMiB);
    } catch {}
  }, 50);
  try {
    const out = await run('client', process.execPath, [CLIENT, ...args], { core: LOAD_CORE, nofile: NOFILE });
    return { out: JSON.parse(out.trim().split('\n').pop()), peakMiB: Math.max(peak, memory(pid).rssMiB) };
  } finally {
    clearInterval(timer);
  }
}

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : null;
}

async function main() {
  requireDist();
  header(
    'memory',
    `gateway RSS: idle, ${HELD} connections held on a ${SLOW_MS / 1000} s upstream, a 512 MiB download, the cache at its byte limit`,
  );
  const sim = await startSim({ items: 100_000 }, { nofile: NOFILE });
  const sidecar = await footprint(sim);
  table(
    sidecar.map((t) => ({
      process: t.name,
      'RSS MiB before any call': fmt(t.freshRssMiB, 1),
      'idle CPU % of a core': fmt(t.idleCpuPct, 2),
      [`idle RSS MiB after ${EARLY_IDLE_SEC} s`]: fmt(t.earlyIdleRssMiB, 1),
      [`idle RSS MiB after ${IDLE_SEC} s`]: fmt(t.idleRssMiB, 1),
      [`CPU µs per call at ${STEADY_RATE}/s`]: fmt(t.cpuUsPerCall, 1),
      [`CPU % at ${STEADY_RATE}/s`]: fmt(t.steadyCpuPct, 2),
      [`RSS MiB after ${STEADY_RATE}/s`]: fmt(t.steadyRssMiB, 1),
    })),
    `Sidecar footprint: idle ${IDLE_SEC} s after 400 warm-up calls (CPU over all of it), then ${STEADY_RATE} GETs/s of ~1 KB for ${STEADY_ROUNDS} x ${STEADY_SEC} s, interleaved (CPU from /proc: 10 ms ticks)`,
  );
  const gw = await startGateway(
    sim.url,
    {
      limits: [
        { name: 'bench', match: '/**', per: 'project', rate: 1_000_000, burst: 1_000_000, concurrency: 100_000 },
      ],
      upstream: { connections: 4096 },
      queue: { maxQueued: 100_000 },
      cache: { maxBytes: CACHE_MAX_BYTES, rules: [{ match: ['/assets'], methods: ['GET'], ttlMs: 600_000 }] },
    },
    { nofile: NOFILE },
  );
  const pid = gw.proc.pid;
  const notes = [];
  const rows = [];

  // Warm up: a few hundred small calls, then let it settle.
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      for (let i = 0; i < 20; i++)
        await (
          await fetch(`${gw.url}/api/v1/projects/p/assets?limit=3`, {
            headers: { authorization: TOKEN },
            cache: 'no-store',
          })
        ).arrayBuffer();
    }),
  );
  await sleep(1000);
  const idle = memory(pid).rssMiB;
  rows.push({ phase: 'idle (after 400 warm-up calls)', rssMiB: idle, peakMiB: idle, detail: '' });
  console.log(`  idle: ${fmt(idle, 1)} MiB`);

  // 1. Connections held open.
  await sim.reset();
  const hold = await sampled(pid, ['hold', `${gw.url}/api/v1/projects/p/_sim/slow?ms=${SLOW_MS}`, String(HELD)]);
  const simStats = await sim.stats();
  await sleep(1000);
  const afterHold = memory(pid).rssMiB;
  const perConnKiB = ((hold.peakMiB - idle) * 1024) / HELD;
  rows.push({
    phase: `${HELD} connections held (${SLOW_MS / 1000} s upstream)`,
    rssMiB: afterHold,
    peakMiB: hold.peakMiB,
    detail: `${fmt(perConnKiB, 1)} KiB/connection over idle; answers ${JSON.stringify(hold.out.byStatus)} in ${fmt(hold.out.ms / 1000, 1)} s; upstream max in flight ${simStats.maxInFlight}`,
  });
  if (hold.out.errors?.length) notes.push(`hold: client errors ${hold.out.errors.join('; ')}`);
  console.log(
    `  held: peak ${fmt(hold.peakMiB, 1)} MiB, ${JSON.stringify(hold.out.byStatus)}, upstream max in flight ${simStats.maxInFlight}`,
  );

  // 2. A 512 MiB download streamed through.
  const dl = await sampled(pid, ['download', `${gw.url}/api/v1/projects/p/_sim/blob?bytes=${BLOB_BYTES}`]);
  await sleep(500);
  rows.push({
    phase: '512 MiB download streaming',
    rssMiB: memory(pid).rssMiB,
    peakMiB: dl.peakMiB,
    detail: `status ${dl.out.status}, ${fmt(dl.out.bytes / 2 ** 20)} MiB at ${fmt(dl.out.mibPerSec)} MiB/s; peak ${fmt(dl.peakMiB - idle, 1)} MiB over idle`,
  });
  if (dl.out.bytes !== BLOB_BYTES)
    notes.push(`download: got ${dl.out.bytes} of ${BLOB_BYTES} bytes (${dl.out.status} ${dl.out.error ?? ''})`);
  console.log(`  download: peak ${fmt(dl.peakMiB, 1)} MiB, ${fmt(dl.out.mibPerSec)} MiB/s`);

  // 3. The cache at its byte limit.
  const probe = await fetch(`${gw.url}/api/v1/projects/p/assets?limit=4`, { headers: { authorization: TOKEN } });
  await probe.arrayBuffer();
  if (probe.headers.get('x-cache') === null) {
    notes.push('cache not active (no X-Cache header): cache phase skipped');
    rows.push({ phase: 'cache at its byte limit', rssMiB: null, peakMiB: null, detail: 'cache not active' });
  } else {
    const fill = await sampled(pid, ['fill', gw.url, String(FILL_CALLS)]);
    await sleep(1000);
    const bytes = await metric(gw.url, 'cdf_gateway_cache_bytes');
    const entries = await metric(gw.url, 'cdf_gateway_cache_entries');
    const rss = memory(pid).rssMiB;
    rows.push({
      phase: `cache at its byte limit (${fmt(CACHE_MAX_BYTES / 2 ** 20)} MiB)`,
      rssMiB: rss,
      peakMiB: fill.peakMiB,
      detail: `${FILL_CALLS} distinct ~330 KB answers (${fmt(fill.out.bytes / 2 ** 20)} MiB) ${JSON.stringify(fill.out.byStatus)}; cache holds ${entries ?? '?'} entries, ${bytes === null ? '?' : fmt(bytes / 2 ** 20, 1)} MiB; RSS ${fmt(rss - idle, 1)} MiB over idle`,
    });
    console.log(
      `  cache: ${entries} entries, ${bytes === null ? '?' : fmt(bytes / 2 ** 20, 1)} MiB, RSS ${fmt(rss, 1)} MiB`,
    );
  }

  table(
    rows.map((r) => ({
      phase: r.phase,
      'RSS MiB': fmt(r.rssMiB, 1),
      'peak RSS MiB': fmt(r.peakMiB, 1),
      detail: r.detail,
    })),
    `Gateway resident memory (sampled every 50 ms; ${PINNING})`,
  );
  for (const n of notes) console.log(`note: ${n}`);
  await stopAll();
  writeResult('memory', {
    settings: {
      held: HELD,
      slowMs: SLOW_MS,
      blobBytes: BLOB_BYTES,
      cacheMaxBytes: CACHE_MAX_BYTES,
      fillCalls: FILL_CALLS,
    },
    rows,
    // Each target's figures, without where it ran.
    sidecar: sidecar.map(({ url: _url, pid: _pid, proc: _proc, ...figures }) => figures),
    notes,
  });
}

await main();
