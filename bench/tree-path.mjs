// The quota tree's cost on the scheduler's fast path: decisions/s (resolve the buckets, acquire, release)
// for a call through the default table's assets tree (6 buckets for /assets/aggregate, 4 for /assets/byids)
// against one flat bucket, in one process, interleaved reps, medians. Run after `npm run build`.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, requireDist } from './lib/common.mjs';
import { ROOT } from './lib/proc.mjs';

requireDist();
const { MemoryStore, QuotaTree, Scheduler } = await import(join(ROOT, 'dist', 'quota', 'index.js'));
const { loadConfig } = await import(join(ROOT, 'dist', 'config', 'index.js'));
const { lookupRoute } = await import(join(ROOT, 'dist', 'cdf', 'index.js'));

const N = Number(process.env.BENCH_TREE_PATH_JOBS ?? 200_000);
const REPS = 5;
const APP = { id: 'bench', weight: 1, priority: 0 };
const roomy = (limits) => limits.map((l) => ({ ...l, rate: 1e9, burst: 1e9, concurrency: 1e6 }));
const config = loadConfig({ env: {} });
const flat = [{ ...config.limits.find((l) => l.name === 'assets'), name: 'flat', classes: null }];

function tree(limits) {
  const scheduler = new Scheduler(new MemoryStore(), config.queue);
  return { scheduler, tree: new QuotaTree(roomy(limits), scheduler, config.adaptive) };
}

async function run(t, method, rest) {
  const route = lookupRoute(method, rest);
  const identity = () => 'alice';
  const start = performance.now();
  for (let i = 0; i < N; i++) {
    const buckets = t.tree.bucketsFor(method, rest, route, 'proj', identity);
    const lease = await t.scheduler.acquire(buckets, APP, Number.POSITIVE_INFINITY);
    lease.release();
  }
  return N / ((performance.now() - start) / 1000);
}

const cases = [
  ['one flat bucket, POST /assets/byids', tree(flat), 'POST', '/assets/byids'],
  ['default tree, POST /assets/byids (4 buckets)', tree(config.limits), 'POST', '/assets/byids'],
  ['default tree, POST /assets/aggregate (6 buckets)', tree(config.limits), 'POST', '/assets/aggregate'],
];
const results = new Map(cases.map(([name]) => [name, []]));
for (let r = 0; r < REPS; r++) for (const [name, t, m, p] of cases) results.get(name).push(await run(t, m, p));
const base = median(results.get(cases[0][0]));
console.log(`quota tree fast path: ${N} decisions x ${REPS} interleaved reps, medians (Node ${process.version})`);
for (const [name] of cases) {
  const m = median(results.get(name));
  console.log(
    `  ${name.padEnd(50)} ${Math.round(m).toLocaleString('en')} decisions/s  (${(m / base).toFixed(2)}x flat)`,
  );
}
for (const [, t] of cases) t.scheduler.close();
