// Where a proxy's CPU goes under one of the overhead workloads: runs the gateway (or the bare proxy) under
// `node --cpu-prof`, drives it with autocannon, and prints the functions with the most self time.
// Usage: node bench/profile.mjs [gateway|bare] [get1k|post1k|get1|get16|post4] [connections] [seconds]
// Not part of `npm run bench`: a tool for looking at the request path (docs/design.md quotes its output).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { autocannon, ROOMY_LIMITS, requireDist, SHIPPED_LAUNCH, startSim, tempDir } from './lib/common.mjs';
import { freePort, PROXY_CORE, ROOT, start, stop, stopAll, waitForHttp } from './lib/proc.mjs';

const [which = 'gateway', workload = 'get16', connRaw = '8', secRaw = '8'] = process.argv.slice(2);
const MiB = 2 ** 20;
const WORKLOADS = {
  get1k: { path: '/api/v1/projects/p/assets?limit=3', method: 'GET', bytes: 958 },
  post1k: { path: '/api/v1/projects/p/_sim/echo', method: 'POST', bytes: 1024 },
  get1: { path: `/api/v1/projects/p/_sim/blob?bytes=${MiB}`, method: 'GET', bytes: MiB },
  get16: { path: `/api/v1/projects/p/_sim/blob?bytes=${16 * MiB}`, method: 'GET', bytes: 16 * MiB },
  post4: { path: '/api/v1/projects/p/_sim/echo', method: 'POST', bytes: 4 * MiB },
};
const w = WORKLOADS[workload];
if (!w || !['gateway', 'bare'].includes(which)) {
  console.error('usage: node bench/profile.mjs [gateway|bare] [get1k|post1k|get1|get16|post4] [connections] [seconds]');
  process.exit(2);
}

requireDist();
const dir = tempDir('profile');
const sim = await startSim();
const port = await freePort();
const profDir = join(dir, 'prof');
const nodeArgs = ['--cpu-prof', '--cpu-prof-interval', process.env.PROF_INTERVAL ?? '250', '--cpu-prof-dir', profDir];
const config = join(dir, 'gateway.yaml');
writeFileSync(config, JSON.stringify({ limits: ROOMY_LIMITS }));
const proc = start(
  which,
  process.execPath,
  which === 'gateway'
    ? [...SHIPPED_LAUNCH.nodeArgs, ...nodeArgs, join(ROOT, 'dist/main.js')]
    : [...nodeArgs, join(ROOT, 'bench/baseline-proxy.mjs')],
  {
    core: PROXY_CORE,
    stdout: '/dev/null',
    env:
      which === 'gateway'
        ? { CDF_BASE_URL: sim.url, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', GATEWAY_CONFIG: config }
        : { UPSTREAM: sim.url, PORT: String(port) },
  },
);
const url = `http://127.0.0.1:${port}`;
await waitForHttp(proc, `${url}/api/v1/projects/p/assets?limit=1`);
let input;
if (w.method === 'POST') {
  input = join(dir, 'body.json');
  writeFileSync(input, `{"items":[${'1234567890,'.repeat(Math.floor((w.bytes - 20) / 11))}0]}`.padEnd(w.bytes));
}
const r = await autocannon(url + w.path, {
  connections: Number(connRaw),
  duration: Number(secRaw),
  method: w.method,
  input,
  headers: w.method === 'POST' ? { 'content-type': 'application/json' } : {},
});
await stop(proc, 10_000);
await stopAll();

const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8'));
// Self time per node from the samples, summed by function (name + url + line).
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const counts = new Map();
for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
const byFn = new Map();
let total = 0;
for (const [id, n] of counts) {
  const node = byId.get(id);
  const cf = node.callFrame;
  const where = cf.url ? `${cf.url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '')}:${cf.lineNumber + 1}` : '';
  const key = `${cf.functionName || '(anonymous)'} ${where}`;
  byFn.set(key, (byFn.get(key) ?? 0) + n);
  total += n;
}
const idle = byFn.get('(idle) ') ?? 0;
const busy = total - idle;
console.log(
  `${which}, ${workload}, ${connRaw} connections, ${secRaw} s: ${Math.round(r.rps)} req/s, ${Math.round((r.rps * w.bytes) / MiB)} MiB/s; ${busy} busy samples (idle ${idle})`,
);
console.log(`profile: ${join(profDir, file)}`);
const mibDone = (r.ok * w.bytes) / MiB;
if (process.env.PROFILE_JSON)
  writeFileSync(
    process.env.PROFILE_JSON,
    JSON.stringify({
      mib: mibDone,
      requests: r.ok,
      intervalUs: profile.samples.length ? (profile.endTime - profile.startTime) / profile.samples.length : 0,
      busy,
      byFn: Object.fromEntries(byFn),
    }),
  );
const top = [...byFn].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]);
for (const [k, n] of top.slice(0, Number(process.env.TOP ?? 25)))
  console.log(`${((n / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
