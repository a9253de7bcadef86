// Which garbage-collection mode a proxy settles in while it streams large answers, over several fresh
// processes: V8 either frees the answers' buffers in cheap scavenges or falls into a full mark-compact every
// few tens of ms (docs/design.md, "Heap policy"). Prints, per process: MiB/s, CPU ms per MiB, scavenges and
// mark-compacts (count and ms) over the measured seconds.
// Usage: node bench/gc-mode.mjs [gateway|bare] [processes=4] [connections=8] [seconds=5] [bytes=1048576]
// BENCH_DIST: another build of the gateway (its dist/ directory) instead of this one.
// BENCH_METHOD=POST: uploads `bytes` to _sim/echo instead (a write: the gateway keeps its body for a retry).
// BENCH_STALL_MS: after the warm-up, the proxy's event loop stalls this long under load (a busy loop), and
// the count starts once it has run a second after: whether the proxy comes back to the mode it was in (with
// ~1 KB answers a Map of requests in flight did not: src/slot-list.ts).
// NODE_ARGS: extra node flags for the proxy, e.g. NODE_ARGS=--heap-growing-percent=0 (V8's own heap policy:
// a flag on node's command line overrides the gateway's).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { autocannon, ROOMY_LIMITS, requireDist, startSim, tempDir } from './lib/common.mjs';
import { cpuMicros, freePort, NODE, PROXY_CORE, ROOT, start, stop, stopAll, waitForHttp } from './lib/proc.mjs';

const [which = 'gateway', processes = '4', connections = '8', seconds = '5', bytes = String(2 ** 20)] =
  process.argv.slice(2);
if (!['gateway', 'bare'].includes(which)) {
  console.error('usage: node bench/gc-mode.mjs [gateway|bare] [processes] [connections] [seconds] [bytes]');
  process.exit(2);
}
requireDist();
const sim = await startSim();
const dir = tempDir('gc-mode');
const config = join(dir, 'gateway.yaml');
// BENCH_GATEWAY_CONFIG: JSON settings merged over the roomy limits, e.g. '{"retry":{"maxBodyBytes":0}}'.
writeFileSync(
  config,
  JSON.stringify({ limits: ROOMY_LIMITS, ...JSON.parse(process.env.BENCH_GATEWAY_CONFIG ?? '{}') }),
);
const nodeArgs = [...(process.env.NODE_ARGS?.split(' ').filter(Boolean) ?? [])];
const post = process.env.BENCH_METHOD === 'POST';
const path = post ? '/api/v1/projects/p/_sim/echo' : `/api/v1/projects/p/_sim/blob?bytes=${bytes}`;
const upload = join(dir, 'upload.json');
if (post) writeFileSync(upload, `[${'1,'.repeat(Math.floor(Number(bytes) / 2) - 1)}1]`);
const load = post ? { method: 'POST', input: upload, headers: { 'content-type': 'application/json' } } : {};

for (let i = 0; i < Number(processes); i++) {
  const out = join(dir, `gc-${i}.json`);
  const port = await freePort();
  const script =
    which === 'gateway'
      ? join(process.env.BENCH_DIST ?? join(ROOT, 'dist'), 'main.js')
      : join(ROOT, 'bench/baseline-proxy.mjs');
  const proc = start(which, NODE, [...nodeArgs, '--import', join(ROOT, 'bench/lib/gc-observer.mjs'), script], {
    core: PROXY_CORE,
    stdout: '/dev/null',
    env: {
      GC_OBSERVER_OUT: out,
      GC_OBSERVER_STALL_MS: process.env.BENCH_STALL_MS ?? '0',
      ...(which === 'gateway'
        ? { CDF_BASE_URL: sim.url, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', GATEWAY_CONFIG: config }
        : { UPSTREAM: sim.url, PORT: String(port) }),
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(proc, `${url}/api/v1/projects/p/assets?limit=1`);
  await autocannon(url + path, { ...load, connections: Number(connections), duration: 1 });
  const stallMs = Number(process.env.BENCH_STALL_MS ?? 0);
  if (stallMs > 0) {
    const stalled = autocannon(url + path, { ...load, connections: Number(connections), duration: 2 });
    setTimeout(() => process.kill(proc.pid, 'SIGWINCH'), 300);
    await stalled;
  }
  process.kill(proc.pid, 'SIGUSR2');
  const cpu0 = cpuMicros(proc.pid);
  const r = await autocannon(url + path, { ...load, connections: Number(connections), duration: Number(seconds) });
  const cpu = cpuMicros(proc.pid) - cpu0;
  await stop(proc, 10_000);
  const gc = JSON.parse(readFileSync(out, 'utf8'));
  const mib = (post ? r.ok * Number(bytes) : r.bytesReceived) / 2 ** 20;
  const count = (kind) => `${gc[kind]?.n ?? 0} (${Math.round(gc[kind]?.ms ?? 0)} ms)`;
  console.log(
    `${which} #${i + 1}: ${(mib / Number(seconds)).toFixed(0)} MiB/s, ${(cpu / 1000 / mib).toFixed(2)} ms CPU/MiB; ` +
      `scavenges ${count('scavenge')}, mark-compacts ${count('markCompact')}`,
  );
}
await stopAll();
