// Child process of the learning benchmark: runs one scenario's apps, each the official @cognite/sdk with
// its own identity, against their base URLs (the simulator, or a gateway each), and prints one JSON line:
// what each app saw (calls the SDK returned, calls it gave up on, latency per kind of call), the
// simulator's counters when the window closed, and a per-second timeline (the simulator's counters and
// the gateways' cdf_gateway_bucket_* / cdf_gateway_limit_* lines for the scenario's buckets).
// Usage: node bench/lib/learning-apps.mjs '{"project":"bench","seconds":20,"simUrl":...,"apps":[...],"gateways":[...],"buckets":"datapoints"}'
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { CogniteClient } from '@cognite/sdk';

const o = JSON.parse(process.argv[2]);
const ITEMS = o.items;

/** What each kind of app call does: one SDK call per iteration (`n` varies the ids, `seq` is unique per loop). */
const WORK = {
  'datapoints.insert': (c, n) => {
    const ts = Date.now();
    // A few points to a few series per call, as an ingestion loop sends them.
    return c.datapoints.insert(
      [0, 1, 2].map((k) => ({
        id: ((n * 3 + k) % ITEMS) + 1,
        datapoints: Array.from({ length: 5 }, (_, i) => ({ timestamp: ts - i * 1000, value: n + i })),
      })),
    );
  },
  'datapoints.retrieve': (c, n) =>
    c.datapoints.retrieve({ items: [{ id: (n % ITEMS) + 1 }], start: '2m-ago', limit: 100 }),
  'datasets.retrieve': (c, n) => c.datasets.retrieve([{ id: (n % 100) + 1 }]),
  'functions.call': (c) => c.post(`/api/v1/projects/${o.project}/functions/1/call`, { data: { data: {} } }),
  'assets.list': (c, _n, loop) =>
    c.assets.list({ partition: loop.partition, limit: 100, cursor: loop.cursor }).then((page) => {
      loop.cursor = page.nextCursor;
    }),
  'assets.retrieve': (c, n) => c.assets.retrieve([{ id: (n % ITEMS) + 1 }]),
  'assets.search': (c, n) => c.assets.search({ search: { name: `Asset ${(n % 100) + 1}` }, limit: 10 }),
  'assets.get': (c, n) => c.get(`/api/v1/projects/${o.project}/assets/${(n % ITEMS) + 1}`),
  'events.create': (c, _n, loop) =>
    c.events.create([{ externalId: `${loop.prefix}-${loop.seq}`, type: 'bench', startTime: Date.now() }]),
  'events.retrieve': (c, n) => c.events.retrieve([{ id: (n % ITEMS) + 1 }]),
  'labels.list': (c) => c.labels.list({ limit: 100 }),
  'labels.create': (c, _n, loop) =>
    c.labels.create([{ externalId: `${loop.prefix}-${loop.seq}`, name: 'Bench label' }]),
  'sequences.list': (c) => c.sequences.list({ limit: 100 }),
  'sequences.retrieve': (c, n) => c.sequences.retrieve([{ id: (n % ITEMS) + 1 }]),
  'relationships.list': (c) => c.relationships.list({ limit: 100 }),
  'timeseries.list': (c) => c.timeseries.list({ limit: 100 }),
  'timeseries.retrieve': (c, n) => c.timeseries.retrieve([{ id: (n % ITEMS) + 1 }]),
  // Rows overwrite a thousand keys: the table stays small however long the run.
  'raw.insertRows': (c, n) => c.raw.insertRows('bench', 'readings', [{ key: `k${n % 1000}`, columns: { v: n } }], true),
};

// Each second's reading of a gateway's figures: its bucket and limit lines, all labels kept.
const FIGURE_LINE = /^cdf_gateway_(bucket|limit)_[a-z_]+\{[^}]*\}/;
const bucketOf = (line) => /bucket="([^"]*)"/.exec(line)?.[1];
const buckets = new RegExp(o.buckets ?? '^$');

async function figures(url) {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(900) })).text();
    return text.split('\n').filter((l) => FIGURE_LINE.test(l) && buckets.test(bucketOf(l) ?? ''));
  } catch {
    return null;
  }
}

const stats = async () => (await fetch(`${o.simUrl}/_sim/stats?requests=0`)).json();

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Runs `app`'s loops until `stopAt`, counting into `out` as they go (read even if some never finish). */
async function runApp(app, stopAt, out) {
  const client = new CogniteClient({
    appId: app.name,
    project: o.project,
    baseUrl: app.baseUrl,
    oidcTokenProvider: async () => app.token,
  });
  await client.authenticate();
  const works = app.works.map((w) => {
    const f = WORK[w];
    if (!f) throw new Error(`unknown work '${w}' (${Object.keys(WORK).join(', ')})`);
    return f;
  });
  const byWork = out.byWork;
  // CDF advises at most 10 partitions: more loops than that share them.
  const parts = Math.min(10, app.loops);
  const loops = Array.from({ length: app.loops }, async (_, i) => {
    const loop = { partition: `${(i % parts) + 1}/${parts}`, cursor: undefined, prefix: `${app.token}-${i}`, seq: 0 };
    let n = i * 7919;
    let turn = 0;
    while (performance.now() < stopAt) {
      const w = app.works[turn % works.length];
      const f = works[turn % works.length];
      turn++;
      n = (n * 31 + 17) % 1_000_003;
      loop.seq++;
      const out = byWork[w];
      const t0 = performance.now();
      try {
        await f(client, n, loop);
        out.ok++;
        out.latenciesMs.push(performance.now() - t0);
      } catch {
        // The SDK gave up after its own retries: the app's call failed.
        out.failed++;
        out.latenciesMs.push(performance.now() - t0);
        loop.cursor = undefined;
        await sleep(100);
      }
    }
  });
  await Promise.all(loops);
}

function summary(app, out) {
  return {
    app: app.name,
    token: app.token,
    error: out.error ?? null,
    works: Object.fromEntries(
      Object.entries(out.byWork).map(([w, r]) => {
        const sorted = r.latenciesMs.sort((a, b) => a - b);
        return [w, { ok: r.ok, failed: r.failed, p50Ms: percentile(sorted, 50), p95Ms: percentile(sorted, 95) }];
      }),
    ),
  };
}

const started = performance.now();
const stopAt = started + o.seconds * 1000;
const timeline = [{ second: 0, t: 0, ...(await stats()) }];
const closed = sleep(o.seconds * 1000);
// Seconds are counted from the start, not from ticks: a busy machine delays ticks, not the clock.
const ticker = setInterval(() => {
  const t = (performance.now() - started) / 1000;
  const second = Math.round(t);
  if (second >= o.seconds || second < 1) return;
  Promise.all([stats(), Promise.all((o.gateways ?? []).map((g) => figures(g.url)))])
    .then(([s, lines]) => {
      const point = { second, t, ...s };
      if (o.gateways?.length) point.figures = Object.fromEntries(o.gateways.map((g, i) => [g.name, lines[i]]));
      timeline.push(point);
    })
    .catch(() => {});
}, 1000);

const outs = o.apps.map((a) => ({
  byWork: Object.fromEntries(a.works.map((w) => [w, { ok: 0, failed: 0, latenciesMs: [] }])),
}));
for (const [i, a] of o.apps.entries()) {
  runApp(a, stopAt, outs[i]).catch((err) => {
    outs[i].error = err instanceof Error ? err.message : String(err);
  });
}
// The window closes for everyone at once: what the apps saw then, and what CDF counted then. Calls still
// in flight or retrying are left out of both (the process exits under them).
await closed;
clearInterval(ticker);
const apps = o.apps.map((a, i) => summary(a, outs[i]));
const [closing, lines] = await Promise.all([stats(), Promise.all((o.gateways ?? []).map((g) => figures(g.url)))]);
const last = { second: o.seconds, t: (performance.now() - started) / 1000, ...closing };
if (o.gateways?.length) last.figures = Object.fromEntries(o.gateways.map((g, i) => [g.name, lines[i]]));
timeline.push(last);
timeline.sort((a, b) => a.t - b.t);
for (const p of timeline) delete p.requests;
// A pipe is written asynchronously: exit once the whole line is out.
process.stdout.write(`${JSON.stringify({ apps, atStop: closing, timeline })}\n`, () => process.exit(0));
