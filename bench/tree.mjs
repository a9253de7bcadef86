// CDF's limit tree: apps with their own identities on the documented assets tree (API, CRUD, Analytical,
// Aggregation; per project and per identity), straight to the simulator and through the gateway on its
// DEFAULT configuration. Three scenarios (src/demo/tree.ts): the three apps of issue #12 (14 s), 20 loops of
// /assets/aggregate next to 20 loops of listing (14 s), and an undocumented endpoint at 10/s and 4 concurrent
// inside an API of 50/s (20 s, with the learning over time). Useful calls are 2xx counted at the simulator.
import { join } from 'node:path';
import { fmt, header, requireDist, startGateway, startSim, table, tempDir, writeResult } from './lib/common.mjs';
import { LOAD_CORE, ROOT, run, stop, stopAll } from './lib/proc.mjs';

const LATENCY_MS = Number(process.env.BENCH_TREE_LATENCY_MS ?? 20);
const ITEMS = 10_000;
const PAGE_LIMIT = 100;
const ONLY = process.env.BENCH_TREE_SCENARIOS?.split(',');
// Other CDF stand-ins for the tight scenario: BENCH_TREE_TIGHT=/assets/byids=20/6 (the endpoint's rate and
// concurrency), BENCH_TREE_API=80 or 80/40 (the API's flat rate and concurrency), BENCH_TREE_FIGURES=0 (429s
// name no figure); BENCH_TREE_GATEWAY_ONLY=1 skips the runs straight to CDF.
const VARIANT = {
  tight: process.env.BENCH_TREE_TIGHT,
  api: process.env.BENCH_TREE_API,
  figures: process.env.BENCH_TREE_FIGURES !== '0',
};
const GATEWAY_ONLY = process.env.BENCH_TREE_GATEWAY_ONLY === '1';

const { TREE_SCENARIOS, summarise, renderTable } = await import(join(ROOT, 'dist', 'demo', 'tree.js'));
const { parseTight } = await import(join(ROOT, 'dist', 'sim', 'options.js'));

/** The tight scenario as the variant's stand-in has it (its allowed rates follow). */
function variantOf(scenario) {
  if (scenario.name !== 'tight' || (!VARIANT.tight && !VARIANT.api && VARIANT.figures)) return scenario;
  const sim = structuredClone(scenario.sim);
  if (VARIANT.tight) sim.tight = [parseTight(VARIANT.tight)];
  if (VARIANT.api) {
    const [rate, concurrency] = VARIANT.api.split('/').map(Number);
    sim.project = { rate, burst: rate, concurrency: concurrency || sim.project.concurrency };
  }
  if (!VARIANT.figures) sim.statesFigures = false;
  const endpoint = sim.tight[0].rate;
  const api = sim.project.rate;
  const title = `an undocumented endpoint at ${endpoint}/s and ${sim.tight[0].concurrency} concurrent (${sim.tight[0].match}) inside an API of ${api}/s${VARIANT.figures ? '' : ', 429s naming no figure'}`;
  return {
    ...scenario,
    title,
    sim,
    allowed: { lookup: endpoint, ui: api - endpoint, total: api },
    why: `lookup: the endpoint ${endpoint}/s; ui: the rest of the API ${api}/s, ${api - endpoint}/s`,
  };
}

async function runApps(scenario, baseUrl, sim, gatewayUrl) {
  const opts = { scenario: scenario.name, baseUrl, simUrl: sim.url, gatewayUrl, items: ITEMS, pageLimit: PAGE_LIMIT };
  const out = await run(
    'tree apps',
    process.execPath,
    [join(ROOT, 'bench', 'lib', 'tree-apps.mjs'), JSON.stringify(opts)],
    {
      core: LOAD_CORE,
    },
  );
  return JSON.parse(out.trim().split('\n').pop());
}

/** One run on a fresh simulator (and a fresh gateway on its default configuration unless direct). */
async function once(scenario, viaGateway) {
  const sim = await startSim({
    tree: true,
    chargeThrottled: true,
    latencyMs: LATENCY_MS,
    items: ITEMS,
    ...scenario.sim,
  });
  let gateway;
  try {
    if (viaGateway) gateway = await startGateway(sim.url, {}, { logTo: join(tempDir('tree'), 'gateway.log') });
    const { run: r, timeline } = await runApps(scenario, gateway?.url ?? sim.url, sim, gateway?.url ?? null);
    const label = viaGateway ? 'through the gateway (defaults)' : 'straight to CDF';
    return { label, summary: summarise(label, scenario, r), apps: r.apps, timeline: perSecond(scenario, r, timeline) };
  } finally {
    if (gateway) await stop(gateway.proc);
    await stop(sim.proc);
  }
}

/** Per second: useful calls and 429s of each app (its tokens), and what the gateway said it learned. */
function perSecond(scenario, r, timeline) {
  const tokensOf = Object.fromEntries(r.apps.map((a) => [a.app, a.tokens]));
  let prev = null;
  // One point per second (the last sample taken in it), in order.
  const points = [...new Map(timeline.map((p) => [p.second, p])).values()].sort((a, b) => a.second - b.second);
  return points
    .filter((p) => p.second <= scenario.seconds)
    .map((p) => {
      const row = { second: p.second };
      for (const app of scenario.apps) {
        const sum = (pt, k) => tokensOf[app.name].reduce((n, t) => n + (pt?.byIdentity[t]?.[k] ?? 0), 0);
        row[`${app.name} ok`] = sum(p, 'ok') - sum(prev, 'ok');
        row[`${app.name} 429`] = sum(p, 'throttled') - sum(prev, 'throttled');
      }
      const by = Object.entries(p.throttledBy ?? {})
        .map(([k, v]) => [k, v - (prev?.throttledBy?.[k] ?? 0)])
        .filter(([, n]) => n > 0);
      row.by = by
        .map(([k, n]) => `${n} ${k.replace(/^tight \S+/, 'endpoint').replace(/^flat\/\S+/, 'API')}`)
        .join(', ');
      if (p.learned !== undefined) row.learned = compactMetrics(p.learned);
      prev = p;
      return row;
    });
}

/** `name{bucket="x",kind="y"} 12.3` lines as { "x y rate": 12.3 } (or "concurrency"). */
function compactMetrics(lines) {
  if (!lines) return null;
  const out = {};
  for (const line of lines) {
    const m = /^([a-z_]+)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    const what = m[1].endsWith('concurrency') ? 'concurrency' : 'rate';
    // A learned bucket's own figure wins over its effective one; configured buckets show their effective one.
    const key = `${labels.bucket} ${what}`;
    if (labels.source === 'learned' || out[key] === undefined) out[key] = Number(m[3]);
  }
  return out;
}

/** Buckets whose figures changed over the timeline (learned, or cut), as "bucket rate/s x concurrency" per second. */
function changed(timeline) {
  const seen = new Map();
  for (const row of timeline)
    for (const [k, v] of Object.entries(row.learned ?? {})) seen.set(k, (seen.get(k) ?? new Set()).add(v));
  const buckets = [
    ...new Set(
      [...seen]
        .filter(([k, values]) => values.size > 1 || k.startsWith('learned.'))
        .map(([k]) => k.slice(0, k.lastIndexOf(' '))),
    ),
  ];
  return (row) =>
    buckets
      .map((b) => `${b} ${fmt(row.learned?.[`${b} rate`], 1)}/s x ${fmt(row.learned?.[`${b} concurrency`])}`)
      .join('; ') || '-';
}

/** The tight scenario's figures: when 429s at the endpoint stopped, and rates after 8 s. */
function learning(timeline, seconds) {
  const quiet = (row) => row['lookup 429'] <= Math.max(1, 0.05 * (row['lookup ok'] + row['lookup 429']));
  let settledAt = null;
  for (let i = 0; i < timeline.length; i++) {
    if (timeline.slice(i).every(quiet)) {
      settledAt = timeline[i].second - 1;
      break;
    }
  }
  const after = timeline.filter((row) => row.second > 8 && row.second <= seconds);
  const mean = (k) => after.reduce((n, row) => n + row[k], 0) / Math.max(1, after.length);
  return { quietFromSecond: settledAt, lookupOkPerSecAfter8s: mean('lookup ok'), uiOkPerSecAfter8s: mean('ui ok') };
}

async function main() {
  requireDist();
  header(
    'tree',
    `apps with their own identities on CDF's documented assets tree (simulator, throttled calls charged, ${LATENCY_MS} ms per call), straight and through the gateway on its default configuration`,
  );
  const results = [];
  for (const scenario of Object.values(TREE_SCENARIOS).map(variantOf)) {
    if (ONLY && !ONLY.includes(scenario.name)) continue;
    console.log(`\nScenario ${scenario.name}: ${scenario.title}, ${scenario.seconds} s. Allowed: ${scenario.why}.`);
    const direct = GATEWAY_ONLY ? null : await once(scenario, false);
    const through = await once(scenario, true);
    const rows = [direct?.summary, through.summary].filter(Boolean);
    console.log(renderTable(scenario, rows));
    const runs = [direct, through].filter(Boolean);
    const result = {
      scenario: scenario.name,
      title: scenario.title,
      allowed: scenario.allowed,
      why: scenario.why,
      runs,
    };
    if (scenario.name === 'tight') {
      result.learning = {
        direct: direct && learning(direct.timeline, scenario.seconds),
        gateway: learning(through.timeline, scenario.seconds),
      };
      const show = changed(through.timeline);
      table(
        through.timeline.map((row) => ({
          s: row.second,
          'lookup ok/s': row['lookup ok'],
          'lookup 429/s': row['lookup 429'],
          'ui ok/s': row['ui ok'],
          'ui 429/s': row['ui 429'],
          '429s by budget (simulator)': row.by || '-',
          'gateway bucket figures that changed (metrics)': show(row),
        })),
        'Through the gateway, second by second (the tight endpoint is /assets/byids, app lookup)',
      );
      const g = result.learning.gateway;
      console.log(
        `  429s at the endpoint stayed under 5 % from second ${g.quietFromSecond ?? 'never'}; after 8 s: lookup ${fmt(g.lookupOkPerSecAfter8s, 1)}/s, ui ${fmt(g.uiOkPerSecAfter8s, 1)}/s`,
      );
    }
    results.push(result);
  }
  table(
    results.flatMap((r) =>
      r.runs.map((x) => ({
        scenario: r.scenario,
        path: x.label,
        'useful/s': fmt(x.summary.perSecond.total, 1),
        'of allowed': `${fmt(x.summary.share.total * 100, 0)}%`,
        'per budget (useful/s, share)': Object.keys(r.allowed)
          .filter((k) => k !== 'total')
          .map((k) => `${k} ${fmt(x.summary.perSecond[k], 1)} (${fmt(x.summary.share[k] * 100, 0)}%)`)
          .join(', '),
        'failed app calls': x.summary.failed,
        '429 share at CDF': `${fmt((x.summary.upstream429 / Math.max(1, x.summary.upstreamCalls)) * 100, 1)}%`,
      })),
    ),
    "Summary (per budget: the scenario's own budgets, apps or classes; see bench/README.md)",
  );
  await stopAll();
  writeResult('tree', { settings: { latencyMs: LATENCY_MS, items: ITEMS, pageLimit: PAGE_LIMIT }, results });
}

await main();
