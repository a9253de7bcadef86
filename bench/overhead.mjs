// Overhead: what the gateway costs per request and per MiB next to the upstream called directly, a bare
// fastify + @fastify/http-proxy, and nginx: ~1 KB calls, and large bodies (GET 1 MiB and 16 MiB answers,
// POST 4 MiB) at 8 and 64 connections. Interleaved runs (A B C D, A B C D, ...) so drift hits every target
// alike; CPU is each proxy process's own (utime+stime), peak RSS its VmHWM (reset before each run).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  autocannon,
  BACKGROUND_WARN,
  fmt,
  SMALL_GET_PATH as GET_PATH,
  header,
  median,
  SMALL_POST_BODY as POST_BODY,
  SMALL_POST_PATH as POST_PATH,
  ROOMY_LIMITS,
  requireDist,
  startBare,
  startGateway,
  startSim,
  table,
  tempDir,
  writeResult,
} from './lib/common.mjs';
import {
  backgroundMeter,
  cpuMicros,
  freePort,
  memory,
  PINNING,
  PROXY_CORE,
  start,
  stopAll,
  waitForHttp,
} from './lib/proc.mjs';
import { extraGatewayTargets, extraRatios } from './lib/tracing.mjs';

/** 5: within one run on this VM a target's GET 1 MiB rounds ranged 193-899 MiB/s; a median of 5 outlasts two bad ones. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const DURATION = Number(process.env.BENCH_DURATION ?? 3);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
/** Only the workloads whose name matches (e.g. BENCH_WORKLOADS='MiB' or 'GET 1 MiB'), for quick trials. */
const ONLY = process.env.BENCH_WORKLOADS ? new RegExp(process.env.BENCH_WORKLOADS) : null;
const SMALL_CONNECTIONS = 50;
const MiB = 2 ** 20;
/** Large bodies: the gateway must stay at this share of the bare proxy's throughput or better. */
const LARGE_TARGET = 0.95;
/** ~1 KB calls: the target of the first round (and the gateway must not get worse than it was: 1.06-1.09). */
const SMALL_TARGET = 0.9;
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? '/usr/sbin/nginx';

/** nginx as a reverse proxy with upstream keep-alive; one process (master_process off), so its CPU is one pid. */
async function startNginx(upstream) {
  const dir = tempDir('nginx');
  const port = await freePort();
  const { port: upPort } = new URL(upstream);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_max_body_size 0;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream cdf { server 127.0.0.1:${upPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://cdf;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const proc = start('nginx', NGINX, ['-e', join(dir, 'error.log'), '-p', dir, '-c', conf], { core: PROXY_CORE });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(proc, `${url}/_sim/stats`);
  return { proc, url };
}

/** A datapoints-insert-like JSON body of `bytes` (what a large CDF write looks like), in a file for autocannon. */
function largeJsonBody(bytes) {
  const point = '{"timestamp":1700000000000,"value":12345.678901},';
  const head = '{"items":[{"externalId":"bench-series","datapoints":[';
  const tail = '{"timestamp":1700000000001,"value":0}]}]}';
  const n = Math.floor((bytes - head.length - tail.length) / point.length);
  const body = head + point.repeat(n) + tail;
  const pad = bytes - Buffer.byteLength(body);
  return `${body}${' '.repeat(Math.max(0, pad))}`;
}

const dir = tempDir('overhead');
function bodyFile(name, text) {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const WORKLOADS = {
  'GET 1KB': { path: GET_PATH, method: 'GET', connections: SMALL_CONNECTIONS, bytes: 0 },
  'POST 1KB': {
    path: POST_PATH,
    method: 'POST',
    body: POST_BODY,
    headers: { 'content-type': 'application/json' },
    connections: SMALL_CONNECTIONS,
    bytes: 0,
  },
};
for (const connections of [8, 64]) {
  for (const mib of [1, 16]) {
    WORKLOADS[`GET ${mib} MiB c${connections}`] = {
      path: `/api/v1/projects/p/_sim/blob?bytes=${mib * MiB}`,
      method: 'GET',
      connections,
      bytes: mib * MiB,
      large: true,
      // 64 x 16 MiB is 1 GiB in flight: a run must be long enough for several of them to complete.
      durationFactor: mib * connections >= 512 ? 3 : 1,
    };
  }
  WORKLOADS[`POST 4 MiB c${connections}`] = {
    path: POST_PATH,
    method: 'POST',
    bodyFile: () => bodyFile('post-4mib.json', largeJsonBody(4 * MiB)),
    headers: { 'content-type': 'application/json' },
    connections,
    bytes: 4 * MiB,
    large: true,
    durationFactor: connections >= 64 ? 2 : 1,
  };
}
if (ONLY) for (const name of Object.keys(WORKLOADS)) if (!ONLY.test(name)) delete WORKLOADS[name];

/** Resets the process's peak RSS (VmHWM) so that the next reading is this run's peak. */
function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

async function measure(target, sim, w, duration) {
  const pid = target.proc.pid;
  const peakReset = resetPeak(pid);
  const meter = backgroundMeter();
  const cpu0 = cpuMicros(pid);
  const sim0 = cpuMicros(sim.proc.pid);
  const r = await autocannon(target.url + w.path, {
    connections: w.connections,
    duration,
    method: w.method,
    body: w.body,
    input: w.input,
    headers: w.headers,
  });
  const cpu = cpuMicros(pid) - cpu0;
  const simCpu = cpuMicros(sim.proc.pid) - sim0;
  // Answers: the bytes received (a long answer cut by the end of the run counts for what arrived);
  // uploads: the bodies of the calls completed.
  const mib = w.method === 'GET' ? r.bytesReceived / MiB : (r.ok * w.bytes) / MiB;
  return {
    ...r,
    mibPerSec: w.bytes > 0 ? mib / r.durationSec : Number.NaN,
    cpuUsPerReq: r.requests > 0 ? cpu / r.requests : Number.NaN,
    cpuUsPerMiB: mib > 0 ? cpu / mib : Number.NaN,
    upstreamCpuUsPerReq: r.requests > 0 ? simCpu / r.requests : Number.NaN,
    peakRssMiB: peakReset ? memory(pid).peakMiB : Number.NaN,
    backgroundCpuShare: meter.share(),
  };
}

const BARE = 'bare fastify+http-proxy';
const DIRECT = 'direct (simulator)';

async function main() {
  requireDist();
  header(
    'overhead',
    `~1 KB calls at ${SMALL_CONNECTIONS} connections; GET 1 MiB and 16 MiB answers and POST 4 MiB at 8 and 64 connections; ${ROUNDS} interleaved rounds x ${DURATION} s after a ${WARMUP} s warm-up per target`,
  );
  for (const w of Object.values(WORKLOADS)) if (w.bodyFile) w.input = w.bodyFile();
  const sim = await startSim();
  const targets = [{ name: DIRECT, proc: sim.proc, url: sim.url }];
  const bare = await startBare(sim.url);
  targets.push({ name: BARE, ...bare });
  const gw = await startGateway(sim.url, { limits: ROOMY_LIMITS }, { logLevel: 'info', logTo: '/dev/null' });
  targets.push({ name: 'gateway', ...gw });
  // BENCH_TRACING / BENCH_BASELINE_DIST: tracing on, and another build, as extra targets (bench/lib/tracing.mjs).
  const extras = await extraGatewayTargets(sim.url);
  targets.push(...extras);
  const notes = [];
  if (existsSync(NGINX)) {
    try {
      targets.push({ name: 'nginx', ...(await startNginx(sim.url)) });
    } catch (err) {
      notes.push(`nginx skipped: ${err.message}`);
    }
  } else notes.push(`nginx skipped: ${NGINX} not found`);

  // Sanity: every target answers 2xx with the same body size.
  for (const t of targets) {
    const res = await fetch(t.url + GET_PATH, { headers: { authorization: 'Bearer bench-token' } });
    const body = await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${t.name}: GET answered ${res.status}`);
    t.getBytes = body.byteLength;
  }

  const runs = [];
  for (const [wname, w] of Object.entries(WORKLOADS)) {
    for (const t of targets) await measure(t, sim, w, WARMUP);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of targets) {
        const r = await measure(t, sim, w, DURATION * (w.durationFactor ?? 1));
        runs.push({ workload: wname, target: t.name, round, ...r });
        const rate = w.large ? `${fmt(r.mibPerSec)} MiB/s (${fmt(r.rps)} req/s)` : `${fmt(r.rps)} req/s`;
        const cpu = w.large ? `${fmt(r.cpuUsPerMiB)} µs CPU/MiB` : `${fmt(r.cpuUsPerReq, 1)} µs CPU/req`;
        process.stdout.write(
          `  ${wname} round ${round} ${t.name}: ${rate}, p50 ${r.p50} ms, p99 ${r.p99} ms, ${cpu}, peak RSS ${fmt(r.peakRssMiB)} MiB${r.non2xx + r.errors > 0 ? `, ${r.non2xx} non-2xx, ${r.errors} errors` : ''}${r.backgroundCpuShare > BACKGROUND_WARN ? ` [others used ${fmt(r.backgroundCpuShare * 100)}% of the machine]` : ''}\n`,
        );
      }
    }
  }

  const summary = [];
  for (const [wname, w] of Object.entries(WORKLOADS)) {
    for (const t of targets) {
      const rs = runs.filter((r) => r.workload === wname && r.target === t.name);
      summary.push({
        workload: wname,
        large: Boolean(w.large),
        connections: w.connections,
        target: t.name,
        rps: median(rs.map((r) => r.rps)),
        mibPerSec: median(rs.map((r) => r.mibPerSec)),
        p50: median(rs.map((r) => r.p50)),
        p99: median(rs.map((r) => r.p99)),
        cpuUsPerReq: median(rs.map((r) => r.cpuUsPerReq)),
        cpuUsPerMiB: median(rs.map((r) => r.cpuUsPerMiB)),
        peakRssMiB: Math.max(...rs.map((r) => r.peakRssMiB)),
        upstreamCpuUsPerReq: median(rs.map((r) => r.upstreamCpuUsPerReq)),
        failed: rs.reduce((a, r) => a + r.non2xx + r.errors, 0),
      });
    }
  }
  table(
    summary.map((s) => ({
      workload: s.workload,
      target: s.target,
      'req/s': fmt(s.rps),
      'MiB/s': s.large ? fmt(s.mibPerSec) : '-',
      'p50 ms': fmt(s.p50),
      'p99 ms': fmt(s.p99),
      'CPU µs/req': s.target === DIRECT ? `(upstream ${fmt(s.cpuUsPerReq, 1)})` : fmt(s.cpuUsPerReq, 1),
      'CPU ms/MiB': !s.large
        ? '-'
        : s.target === DIRECT
          ? `(upstream ${fmt(s.cpuUsPerMiB / 1000, 2)})`
          : fmt(s.cpuUsPerMiB / 1000, 2),
      'peak RSS MiB': fmt(s.peakRssMiB),
      'non-2xx+errors': s.failed,
    })),
    `Medians over ${ROUNDS} rounds; peak RSS is the highest of the rounds (${PINNING})`,
  );

  const ratios = [];
  for (const [wname, w] of Object.entries(WORKLOADS)) {
    const get = (name) => summary.find((s) => s.workload === wname && s.target === name);
    const rate = (s) => (w.large ? s.mibPerSec : s.rps);
    const b = get(BARE);
    const g = get('gateway');
    const n = get('nginx');
    // Per round ratios: only figures of the same round are compared.
    const perRound = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const rb = runs.find((r) => r.workload === wname && r.round === round && r.target === BARE);
      const rg = runs.find((r) => r.workload === wname && r.round === round && r.target === 'gateway');
      const quiet = rb.backgroundCpuShare <= BACKGROUND_WARN && rg.backgroundCpuShare <= BACKGROUND_WARN;
      perRound.push({
        round,
        // Large bodies: bytes moved (a run ends in the middle of long answers); small calls: requests.
        throughput: w.large ? rg.mibPerSec / rb.mibPerSec : rg.rps / rb.rps,
        p99: rg.p99 / rb.p99,
        // Bare CPU per request over the gateway's: above 1, the gateway does the same work with less CPU.
        cpuEfficiency: w.large ? rb.cpuUsPerMiB / rg.cpuUsPerMiB : rb.cpuUsPerReq / rg.cpuUsPerReq,
        quiet,
      });
    }
    // Rounds where other processes took CPU while bare or gateway ran are left out when any round was quiet.
    const quietRounds = perRound.filter((r) => r.quiet);
    const used = quietRounds.length > 0 ? quietRounds : perRound;
    const throughput = median(used.map((r) => r.throughput));
    const target = w.large ? LARGE_TARGET : SMALL_TARGET;
    ratios.push({
      workload: wname,
      large: Boolean(w.large),
      target,
      throughputRatio: throughput,
      p99Ratio: median(used.map((r) => r.p99)),
      cpuEfficiency: median(used.map((r) => r.cpuEfficiency)),
      rssVsBare: g.peakRssMiB / b.peakRssMiB,
      nginxThroughputVsBare: n ? rate(n) / rate(b) : null,
      gatewayThroughputVsDirect: rate(g) / rate(get(DIRECT)),
      perRound,
      roundsUsed: used.map((r) => r.round),
      throughputTargetMet: throughput >= target,
    });
  }
  table(
    ratios.map((r) => ({
      workload: r.workload,
      'gateway/bare throughput': `${fmt(r.throughputRatio, 2)}x ${r.throughputTargetMet ? 'OK' : 'MISS'} (>= ${fmt(r.target, 2)}x)`,
      'bare/gateway CPU per req or MiB': `${fmt(r.cpuEfficiency, 2)}x`,
      'gateway/bare p99': `${fmt(r.p99Ratio, 2)}x`,
      'gateway/bare peak RSS': `${fmt(r.rssVsBare, 2)}x`,
      'nginx/bare throughput': r.nginxThroughputVsBare === null ? '-' : `${fmt(r.nginxThroughputVsBare, 2)}x`,
      'gateway/direct throughput': `${fmt(r.gatewayThroughputVsDirect, 2)}x`,
      'rounds used': r.roundsUsed.join(','),
    })),
    'Ratios: throughput = MiB/s for large bodies, req/s for ~1 KB calls; gateway/bare throughput and CPU = median of per-round ratios over the rounds where the machine was quiet (all rounds if none was); bare/gateway CPU above 1x = the gateway spends less CPU per request (per MiB for large bodies) than the bare proxy; others from the medians',
  );
  const met = ratios.filter((r) => r.throughputTargetMet).length;
  console.log(`\ngateway/bare throughput target met on ${met} of ${ratios.length} workloads`);
  const extraRows = extraRatios(runs, Object.keys(WORKLOADS), extras);
  for (const n of notes) console.log(`note: ${n}`);

  await stopAll();
  writeResult('overhead', {
    settings: {
      rounds: ROUNDS,
      durationSec: DURATION,
      warmupSec: WARMUP,
      workloads: Object.fromEntries(
        Object.entries(WORKLOADS).map(([k, w]) => [
          k,
          { method: w.method, path: w.path, connections: w.connections, bodyBytes: w.bytes || undefined },
        ]),
      ),
      getPath: GET_PATH,
      getBytes: targets[0].getBytes,
      postPath: POST_PATH,
      postBodyBytes: Buffer.byteLength(POST_BODY),
      gatewayLogLevel: 'info (stdout to /dev/null)',
    },
    summary,
    ratios,
    extraRatios: extraRows,
    runs,
    notes,
  });
}

await main();
