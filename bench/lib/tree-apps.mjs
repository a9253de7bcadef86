// Child process of the tree benchmark: runs one of the demo's limit-tree scenarios (dist/demo/tree.js)
// against a base URL and prints one JSON line: what each app saw, the simulator's counters when the window
// closed, and a per-second timeline (the simulator's counters, and the gateway's metric lines about learned
// limits when a gateway URL is given).
// Usage: node bench/lib/tree-apps.mjs '{"scenario":"tight","baseUrl":...,"simUrl":...,"gatewayUrl":null,"items":10000,"pageLimit":100}'
import { join } from 'node:path';
import { ROOT } from './proc.mjs';

const o = JSON.parse(process.argv[2]);
const { TREE_SCENARIOS, runTreeScenario } = await import(join(ROOT, 'dist', 'demo', 'tree.js'));
const scenario = TREE_SCENARIOS[o.scenario];
const stats = async () => (await fetch(`${o.simUrl}/_sim/stats`)).json();
// Learned buckets' figures and the effective (adapted) figures of configured buckets, from /metrics.
const LEARNED =
  /^cdf_gateway_(limit_(rate_per_second|concurrency)\{[^}]*source="learned"|bucket_(rate_per_second|concurrency)\{[^}]*kind="effective")/;
const timeline = [];
const run = await runTreeScenario(scenario, {
  baseUrl: o.baseUrl,
  project: 'bench',
  items: o.items,
  pageLimit: o.pageLimit,
  stats,
  onSecond: async (second, s) => {
    const point = { second, ok: s.ok, throttled: s.throttled, byIdentity: s.byIdentity, throttledBy: s.throttledBy };
    if (o.gatewayUrl) {
      try {
        const text = await (await fetch(`${o.gatewayUrl}/metrics`)).text();
        point.learned = text.split('\n').filter((l) => LEARNED.test(l) && /assets/.test(l));
      } catch {
        point.learned = null;
      }
    }
    timeline.push(point);
  },
});
process.stdout.write(`${JSON.stringify({ run, timeline })}\n`);
process.exit(0);
