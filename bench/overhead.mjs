// Overhead: what the gateway costs per request next to the upstream called directly, a bare fastify +
// @fastify/http-proxy, and nginx. Interleaved runs (A B C D, A B C D, ...) so drift hits every target alike.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  autocannon,
  BACKGROUND_WARN,
  fmt,
  header,
  median,
  ROOMY_LIMITS,
  requireDist,
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
  PINNING,
  PROXY_CORE,
  ROOT,
  start,
  startNode,
  stopAll,
  waitForHttp,
} from './lib/proc.mjs';
import { extraGatewayTargets, extraRatios } from './lib/tracing.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const CONNECTIONS = 50;
const NGINX = '/usr/sbin/nginx';

// ~1 KB of JSON each way: GET answers 3 assets (958 bytes); POST sends a 1 KB JSON body to the echo endpoint.
const GET_PATH = '/api/v1/projects/p/assets?limit=3';
const POST_PATH = '/api/v1/projects/p/_sim/echo';
const POST_BODY = JSON.stringify({
  items: Array.from({ length: 8 }, (_, i) => ({
    externalId: `bench-${i}`,
    name: `Bench asset ${i}`,
    description: 'x'.repeat(70),
  })),
});

async function startBare(upstream) {
  const port = await freePort();
  const proc = startNode('bare proxy', join(ROOT, 'bench', 'baseline-proxy.mjs'), [], {
    core: PROXY_CORE,
    env: { UPSTREAM: upstream, PORT: String(port) },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(proc, `${url}/`);
  return { proc, url };
}

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

const WORKLOADS = {
  'GET 1KB': { path: GET_PATH, method: 'GET' },
  'POST 1KB': { path: POST_PATH, method: 'POST', body: POST_BODY, headers: { 'content-type': 'application/json' } },
};

async function measure(target, sim, w, duration) {
  const pid = target.proc.pid;
  const meter = backgroundMeter();
  const cpu0 = cpuMicros(pid);
  const sim0 = cpuMicros(sim.proc.pid);
  const r = await autocannon(target.url + w.path, {
    connections: CONNECTIONS,
    duration,
    method: w.method,
    body: w.body,
    headers: w.headers,
  });
  const cpu = cpuMicros(pid) - cpu0;
  const simCpu = cpuMicros(sim.proc.pid) - sim0;
  return {
    ...r,
    cpuUsPerReq: r.requests > 0 ? cpu / r.requests : Number.NaN,
    upstreamCpuUsPerReq: r.requests > 0 ? simCpu / r.requests : Number.NaN,
    backgroundCpuShare: meter.share(),
  };
}

async function main() {
  requireDist();
  header(
    'overhead',
    `${CONNECTIONS} connections, ${ROUNDS} interleaved rounds x ${DURATION} s after a ${WARMUP} s warm-up per target`,
  );
  const sim = await startSim();
  const targets = [{ name: 'direct (simulator)', proc: sim.proc, url: sim.url }];
  const bare = await startBare(sim.url);
  targets.push({ name: 'bare fastify+http-proxy', ...bare });
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
        const r = await measure(t, sim, w, DURATION);
        runs.push({ workload: wname, target: t.name, round, ...r });
        process.stdout.write(
          `  ${wname} round ${round} ${t.name}: ${fmt(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ${fmt(r.cpuUsPerReq, 1)} µs CPU/req${r.non2xx + r.errors > 0 ? `, ${r.non2xx} non-2xx, ${r.errors} errors` : ''}${r.backgroundCpuShare > BACKGROUND_WARN ? ` [others used ${fmt(r.backgroundCpuShare * 100)}% of the machine]` : ''}\n`,
        );
      }
    }
  }

  const summary = [];
  for (const wname of Object.keys(WORKLOADS)) {
    for (const t of targets) {
      const rs = runs.filter((r) => r.workload === wname && r.target === t.name);
      summary.push({
        workload: wname,
        target: t.name,
        rps: median(rs.map((r) => r.rps)),
        p50: median(rs.map((r) => r.p50)),
        p99: median(rs.map((r) => r.p99)),
        cpuUsPerReq: median(rs.map((r) => r.cpuUsPerReq)),
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
      'p50 ms': fmt(s.p50),
      'p99 ms': fmt(s.p99),
      'proxy CPU µs/req': s.target.startsWith('direct') ? `(upstream ${fmt(s.cpuUsPerReq, 1)})` : fmt(s.cpuUsPerReq, 1),
      'non-2xx+errors': s.failed,
    })),
    `Medians over ${ROUNDS} rounds (${PINNING})`,
  );

  const ratios = [];
  for (const wname of Object.keys(WORKLOADS)) {
    const get = (name) => summary.find((s) => s.workload === wname && s.target === name);
    const b = get('bare fastify+http-proxy');
    const g = get('gateway');
    const n = get('nginx');
    // Per round ratios too: only figures of the same round are compared.
    const perRound = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const rb = runs.find((r) => r.workload === wname && r.round === round && r.target === b.target);
      const rg = runs.find((r) => r.workload === wname && r.round === round && r.target === g.target);
      const quiet = rb.backgroundCpuShare <= BACKGROUND_WARN && rg.backgroundCpuShare <= BACKGROUND_WARN;
      perRound.push({ round, throughput: rg.rps / rb.rps, p99: rg.p99 / rb.p99, quiet });
    }
    // Rounds where other processes took CPU while bare or gateway ran are left out when any round was quiet.
    const quietRounds = perRound.filter((r) => r.quiet);
    const used = quietRounds.length > 0 ? quietRounds : perRound;
    const throughput = median(used.map((r) => r.throughput));
    const p99 = median(used.map((r) => r.p99));
    ratios.push({
      workload: wname,
      throughputRatio: throughput,
      p99Ratio: p99,
      cpuRatio: g.cpuUsPerReq / b.cpuUsPerReq,
      nginxThroughputVsBare: n ? n.rps / b.rps : null,
      gatewayThroughputVsDirect: g.rps / get('direct (simulator)').rps,
      perRound,
      roundsUsed: used.map((r) => r.round),
      throughputTargetMet: throughput >= 0.9,
      p99TargetMet: p99 <= 1.2,
    });
  }
  table(
    ratios.map((r) => ({
      workload: r.workload,
      'gateway/bare req/s': `${fmt(r.throughputRatio * 100, 1)}% ${r.throughputTargetMet ? 'OK' : 'MISS (target >= 90%)'}`,
      'gateway/bare p99': `${fmt(r.p99Ratio, 2)}x ${r.p99TargetMet ? 'OK' : 'MISS (target <= 1.2x)'}`,
      'gateway/bare CPU/req': `${fmt(r.cpuRatio, 2)}x`,
      'nginx/bare req/s': r.nginxThroughputVsBare === null ? '-' : `${fmt(r.nginxThroughputVsBare * 100, 1)}%`,
      'gateway/direct req/s': `${fmt(r.gatewayThroughputVsDirect * 100, 1)}%`,
      'rounds used': r.roundsUsed.join(','),
    })),
    'Ratios: gateway/bare = median of per-round ratios over the rounds where the machine was quiet (all rounds if none was); others from the medians',
  );
  const extraRows = extraRatios(runs, Object.keys(WORKLOADS), extras);
  for (const n of notes) console.log(`note: ${n}`);

  await stopAll();
  writeResult('overhead', {
    settings: {
      connections: CONNECTIONS,
      rounds: ROUNDS,
      durationSec: DURATION,
      warmupSec: WARMUP,
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
