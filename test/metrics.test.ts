import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, type Stack, startStack } from './helpers.js';

/** parse-prometheus-text-format ships no types: what it returns, as far as these tests read it. */
interface ParsedMetric {
  labels?: Record<string, string>;
  value: string;
}
interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: ParsedMetric[];
}
const parsePrometheusTextFormat = createRequire(import.meta.url)('parse-prometheus-text-format') as (
  text: string,
) => ParsedFamily[];

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PROJECT = '/api/v1/projects/metrics-test';
const CLIENT = 'metrics-test-app';

class Scrape {
  /** Families by name; a histogram's samples are under name_bucket, name_sum and name_count. */
  readonly families = new Map<string, ParsedFamily>();
  /** Declared type of each family, lower case. */
  readonly types = new Map<string, string>();

  constructor(readonly text: string) {
    for (const f of parsePrometheusTextFormat(text)) this.types.set(f.name, f.type.toLowerCase());
    // parse-prometheus-text-format 1.1.1 folds every series of a labelled histogram into one and drops the
    // labels. Declared untyped, each _bucket, _sum and _count sample keeps its labels: parse it that way.
    const lines = text
      .split('\n')
      .map((line) =>
        line.startsWith('# TYPE ') && line.endsWith(' histogram')
          ? `${line.slice(0, -' histogram'.length)} untyped`
          : line,
      );
    for (const f of parsePrometheusTextFormat(lines.join('\n'))) {
      const seen = this.families.get(f.name);
      if (seen) seen.metrics.push(...f.metrics);
      else this.families.set(f.name, f);
    }
  }

  family(name: string): ParsedFamily {
    const f = this.families.get(name);
    if (!f) throw new Error(`no series ${name} in the scrape`);
    return f;
  }

  type(name: string): string | undefined {
    return this.types.get(name);
  }

  /** Series of a family whose labels include `labels`. */
  series(name: string, labels: Record<string, string> = {}): ParsedMetric[] {
    return this.family(name).metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  }

  /** The sum of the matching series' values; 0 when none match. */
  value(name: string, labels: Record<string, string> = {}): number {
    let sum = 0;
    for (const m of this.series(name, labels)) sum += Number(m.value);
    return sum;
  }

  /** The value of the one series that matches (value() reads a missing series as 0, which a 0 cannot tell). */
  one(name: string, labels: Record<string, string> = {}): number {
    const found = this.series(name, labels);
    expect(found, `one series ${name} ${JSON.stringify(labels)}`).toHaveLength(1);
    return Number(found[0].value);
  }

  labelValues(name: string, label: string): Set<string> {
    return new Set(this.family(name).metrics.map((m) => m.labels?.[label] ?? ''));
  }
}

async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return new Scrape(await res.text());
}

/** Scrapes until `ready` holds: the record stage runs when the app's connection is done with the answer. */
async function scrapeUntil(url: string, ready: (s: Scrape) => boolean, timeoutMs = 5000): Promise<Scrape> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await scrape(url);
    if (ready(s) || Date.now() > until) return s;
    await new Promise((r) => setTimeout(r, 25));
  }
}

function call(stack: Stack, path: string, body: unknown, client = CLIENT): Promise<Response> {
  return fetch(`${stack.url}${PROJECT}${path}`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json', 'x-cdp-app': client },
    body: JSON.stringify(body),
  });
}

const limit = (name: string, match: string[], rate: number, concurrency = 50) => ({
  name,
  match,
  per: 'project',
  rate,
  burst: rate,
  concurrency,
});

describe('/metrics after a scripted scenario', () => {
  let stack: Stack;
  let s: Scrape;
  const statuses: Record<string, number[]> = {};

  beforeAll(async () => {
    stack = await startStack({
      limits: [
        limit('assets', ['/assets', '/assets/**'], 1000),
        // One call per second and a short queue: a burst of five gets four 429s from the gateway itself.
        limit('slow-events', ['/events', '/events/**'], 1, 10),
        limit('timeseries', ['/timeseries', '/timeseries/**'], 1000),
        { ...limit('other', ['/**'], 1000), fallback: true },
      ],
      queue: { maxWaitMs: 300, maxQueued: 1000 },
      retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 },
      adaptive: { enabled: false },
      circuit: { enabled: true, minCalls: 1000 },
      cache: { rules: [{ match: ['/assets/byids'], methods: ['POST'], ttlMs: 60_000 }] },
    });
    const record = async (name: string, res: Promise<Response>) => {
      const r = await res;
      await r.arrayBuffer();
      statuses[name] = [...(statuses[name] ?? []), r.status];
    };

    // 1. CDF throttles once; the gateway retries and the app gets 200.
    stack.sim.inject({ count: 1, status: 429, match: '/assets/list' });
    await record('throttled-retried', call(stack, '/assets/list', { limit: 5 }));
    // 2. The connection is reset under a read; the gateway retries it.
    stack.sim.inject({ count: 1, reset: true, match: '/timeseries/list' });
    await record('reset-retried', call(stack, '/timeseries/list', { limit: 5 }));
    // 3. CDF throttles twice: retried once, then (maxAttempts: 2) passed on to the app.
    stack.sim.inject({ count: 2, status: 429, match: '/timeseries/byids' });
    await record('passed-on', call(stack, '/timeseries/byids', { items: [{ id: 1 }] }));
    // 4. A burst into a bucket of one call per second with a 300 ms queue.
    await Promise.all(Array.from({ length: 5 }, () => record('burst', call(stack, '/events/list', { limit: 1 }))));
    // 5. The same cacheable read twice.
    await record('cached', call(stack, '/assets/byids', { items: [{ id: 1 }] }));
    await record('cached', call(stack, '/assets/byids', { items: [{ id: 1 }] }));

    // 1 + 1 + 1 + 5 + 2 requests in all.
    s = await scrapeUntil(stack.url, (x) => x.value('cdf_gateway_requests_total') >= 10);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('ran the scenario as scripted', () => {
    expect(statuses['throttled-retried']).toEqual([200]);
    expect(statuses['reset-retried']).toEqual([200]);
    expect(statuses['passed-on']).toEqual([429]);
    expect([...statuses.burst].sort()).toEqual([200, 429, 429, 429, 429]);
    expect(statuses.cached).toEqual([200, 200]);
  });

  it('is Prometheus text with help and type for every family', () => {
    for (const [name, type] of s.types) {
      expect(['counter', 'gauge', 'histogram'], name).toContain(type);
      if (type !== 'histogram') expect(s.family(name).help, name).not.toBe('');
    }
    expect(s.type('cdf_gateway_requests_total')).toBe('counter');
    expect(s.type('cdf_gateway_request_duration_seconds')).toBe('histogram');
    expect(s.type('cdf_gateway_upstream_duration_seconds')).toBe('histogram');
    expect(s.type('cdf_gateway_queue_wait_seconds')).toBe('histogram');
    expect(s.type('cdf_gateway_circuit_state')).toBe('gauge');
    for (const name of s.types.keys()) {
      if (!name.startsWith('process_') && !name.startsWith('nodejs_')) expect(name).toMatch(/^cdf_gateway_[a-z_]+$/);
    }
  });

  it('counts requests by method, family, status and client', () => {
    const req = (family: string, status: string) =>
      s.value('cdf_gateway_requests_total', { method: 'POST', family, status, client: CLIENT });
    expect(req('assets', '200')).toBe(3);
    expect(req('timeseries', '200')).toBe(1);
    expect(req('timeseries', '429')).toBe(1);
    expect(req('events', '200')).toBe(1);
    expect(req('events', '429')).toBe(4);
    expect(s.value('cdf_gateway_requests_total')).toBe(10);
    expect(s.labelValues('cdf_gateway_requests_total', 'client')).toEqual(new Set([CLIENT]));
  });

  it('times whole requests per family', () => {
    const h = 'cdf_gateway_request_duration_seconds';
    expect(s.value(`${h}_count`, { family: 'assets' })).toBe(3);
    expect(s.value(`${h}_sum`, { family: 'assets' })).toBeGreaterThan(0);
    expect(s.value(`${h}_bucket`, { family: 'assets', le: '+Inf' })).toBe(3);
    expect(s.value(`${h}_bucket`, { family: 'assets', le: '60' })).toBe(3);
    expect(s.value(`${h}_bucket`, { family: 'assets', le: '0.005' })).toBeLessThanOrEqual(3);
    expect(s.value(`${h}_count`)).toBe(10);
  });

  it('counts upstream attempts by family and status, network failures as "error"', () => {
    expect(s.value('cdf_gateway_upstream_attempts_total', { family: 'assets', status: '429' })).toBe(1);
    expect(s.value('cdf_gateway_upstream_attempts_total', { family: 'assets', status: '200' })).toBe(2);
    expect(s.value('cdf_gateway_upstream_attempts_total', { family: 'timeseries', status: 'error' })).toBe(1);
    expect(s.value('cdf_gateway_upstream_attempts_total', { family: 'timeseries', status: '200' })).toBe(1);
    expect(s.value('cdf_gateway_upstream_attempts_total', { family: 'timeseries', status: '429' })).toBe(2);
    // The four refused by the queue never went upstream.
    expect(s.value('cdf_gateway_upstream_attempts_total', { family: 'events' })).toBe(1);
    const attempts = s.value('cdf_gateway_upstream_attempts_total');
    expect(s.value('cdf_gateway_upstream_duration_seconds_count')).toBe(attempts);
  });

  it("counts CDF's 429s as retried or passed on", () => {
    expect(s.value('cdf_gateway_upstream_throttled_total', { family: 'assets', outcome: 'retried' })).toBe(1);
    expect(s.value('cdf_gateway_upstream_throttled_total', { family: 'assets', outcome: 'passed_on' })).toBe(0);
    expect(s.value('cdf_gateway_upstream_throttled_total', { family: 'timeseries', outcome: 'retried' })).toBe(1);
    expect(s.value('cdf_gateway_upstream_throttled_total', { family: 'timeseries', outcome: 'passed_on' })).toBe(1);
  });

  it('counts retries by reason', () => {
    expect(s.value('cdf_gateway_retries_total', { family: 'assets', reason: 'throttled' })).toBe(1);
    expect(s.value('cdf_gateway_retries_total', { family: 'timeseries', reason: 'reset' })).toBe(1);
    expect(s.value('cdf_gateway_retries_total', { family: 'timeseries', reason: 'throttled' })).toBe(1);
    expect(s.value('cdf_gateway_retries_total')).toBe(3);
    expect(s.value('cdf_gateway_retry_budget_exhausted_total')).toBe(0);
  });

  it('shows the queue: rejections by reason, waits, admitted calls', () => {
    expect(s.value('cdf_gateway_queue_rejected_total', { bucket: 'slow-events', reason: 'timeout' })).toBe(4);
    expect(s.value('cdf_gateway_queue_rejected_total', { bucket: 'slow-events', reason: 'full' })).toBe(0);
    expect(s.value('cdf_gateway_queue_rejected_total', { bucket: 'assets' })).toBe(0);
    expect(s.value('cdf_gateway_bucket_admitted_total', { bucket: 'slow-events' })).toBe(1);
    // Every attempt is admitted: 2 (retry) + 1 for assets (the second byids is a cache hit); 2 + 2 for timeseries.
    expect(s.value('cdf_gateway_bucket_admitted_total', { bucket: 'assets' })).toBe(3);
    expect(s.value('cdf_gateway_bucket_admitted_total', { bucket: 'timeseries' })).toBe(4);
    expect(s.value('cdf_gateway_queue_wait_seconds_count', { bucket: 'slow-events' })).toBe(1);
    expect(s.value('cdf_gateway_queue_wait_seconds_count', { bucket: 'timeseries' })).toBe(4);
    expect(s.one('cdf_gateway_queue_length', { bucket: 'slow-events' })).toBe(0);
  });

  it('shows each bucket: configured and effective limits, tokens, calls in flight', () => {
    const rate = (bucket: string, kind: string) => s.value('cdf_gateway_bucket_rate_per_second', { bucket, kind });
    expect(rate('slow-events', 'configured')).toBe(1);
    expect(rate('slow-events', 'effective')).toBe(1);
    expect(rate('assets', 'configured')).toBe(1000);
    expect(s.value('cdf_gateway_bucket_concurrency', { bucket: 'slow-events', kind: 'configured' })).toBe(10);
    expect(s.value('cdf_gateway_bucket_concurrency', { bucket: 'slow-events', kind: 'effective' })).toBe(10);
    expect(s.one('cdf_gateway_bucket_in_flight', { bucket: 'assets' })).toBe(0);
    expect(s.value('cdf_gateway_bucket_scopes', { bucket: 'assets' })).toBe(1);
    const tokens = s.one('cdf_gateway_bucket_tokens', { bucket: 'slow-events' });
    expect(tokens).toBeGreaterThanOrEqual(0);
    expect(tokens).toBeLessThanOrEqual(1);
    // A limit that saw no call has no buckets yet, so no gauges.
    expect(s.series('cdf_gateway_bucket_rate_per_second', { bucket: 'other' })).toEqual([]);
  });

  it('shows the circuit breaker and the quota store', () => {
    expect(s.one('cdf_gateway_circuit_state')).toBe(0);
    expect(s.value('cdf_gateway_store_healthy', { mode: 'memory' })).toBe(1);
  });

  it('counts cache outcomes when the cache is active', () => {
    expect(s.value('cdf_gateway_cache_requests_total', { family: 'assets', outcome: 'hit' })).toBe(1);
    expect(s.value('cdf_gateway_cache_requests_total', { family: 'assets', outcome: 'miss' })).toBe(1);
    expect(s.value('cdf_gateway_cache_entries')).toBeGreaterThanOrEqual(1);
    expect(s.value('cdf_gateway_cache_bytes')).toBeGreaterThan(0);
  });

  it('includes the process metrics', () => {
    expect(s.type('process_cpu_user_seconds_total')).toBe('counter');
    expect(s.value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(s.type('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });

  it('never labels raw paths', () => {
    expect(s.text).not.toContain('/assets/list');
    expect(s.text).not.toContain('metrics-test"'); // the project is no label value either
  });

  it('exports every cdf_gateway_ series the Grafana dashboard queries', () => {
    const dashboard = readFileSync(resolve(repoRoot, 'config/grafana/dashboards/cdf-gateway.json'), 'utf8');
    const exprs = (JSON.parse(dashboard) as { panels: Array<{ targets?: Array<{ expr: string }> }> }).panels.flatMap(
      (p) => p.targets?.map((t) => t.expr) ?? [],
    );
    expect(exprs.length).toBeGreaterThan(20);
    const names = new Set(exprs.flatMap((e) => e.match(/\bcdf_gateway_[a-z_]+/g) ?? []));
    for (const name of names) expect(s.types.has(name.replace(/_(bucket|sum|count)$/, '')), name).toBe(true);
  });

  it('serves the dashboard data with the same counts', async () => {
    const res = await fetch(`${stack.url}/dashboard/data.json`);
    expect(res.status).toBe(200);
    const d = (await res.json()) as { current: { totals: Record<string, number> }; t: number[]; buckets: object };
    expect(d.current.totals).toMatchObject({ requests: 10, upstream429: 3, retried: 2, passedOn: 1, gateway429: 4 });
    expect(Array.isArray(d.t)).toBe(true);
  });
});

describe('/metrics placement and limits', () => {
  it('serves /metrics and /dashboard on metrics.port; the main port then forwards /metrics to CDF', async () => {
    const stack = await startStack({ metrics: { port: 0 } });
    try {
      const admin = stack.gateway.adminUrl();
      expect(admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(admin).not.toBe(stack.url);
      const s = await scrape(admin!);
      expect(s.families.has('cdf_gateway_requests_total')).toBe(true);
      const page = await fetch(`${admin}/dashboard`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect((await fetch(`${admin}/dashboard/uplot.js`)).status).toBe(200);

      // The simulator's 404 (CDF's error shape, naming the path), not the gateway's own.
      const forwarded = await fetch(`${stack.url}/metrics`);
      expect(forwarded.status).toBe(404);
      expect(await forwarded.json()).toEqual({ error: { code: 404, message: 'Unknown path: /metrics' } });
      const dashboard = await fetch(`${stack.url}/dashboard`);
      expect(await dashboard.json()).toEqual({ error: { code: 404, message: 'Unknown path: /dashboard' } });
    } finally {
      await stack.close();
    }
    expect(stack.gateway.adminUrl()).toBeNull();
  });

  it('metrics.enabled: false serves neither; /metrics goes to CDF', async () => {
    const stack = await startStack({ metrics: { enabled: false, port: 0 } });
    try {
      expect(stack.gateway.adminUrl()).toBeNull();
      const res = await fetch(`${stack.url}/metrics`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: { code: 404, message: 'Unknown path: /metrics' } });
    } finally {
      await stack.close();
    }
  });

  it('caps client label values at metrics.maxClients, the rest counted as "other"', async () => {
    const stack = await startStack({ metrics: { maxClients: 2 } });
    try {
      const clients = ['app-a', 'app-b', 'app-c', 'app-d', 'app-e'];
      for (const client of clients) {
        const res = await call(stack, '/assets/list', { limit: 1 }, client);
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
      const s = await scrapeUntil(stack.url, (x) => x.value('cdf_gateway_requests_total') >= 5);
      const labels = s.labelValues('cdf_gateway_requests_total', 'client');
      expect(labels.size).toBeLessThanOrEqual(3);
      expect(labels).toEqual(new Set(['app-a', 'app-b', 'other']));
      expect(s.value('cdf_gateway_requests_total', { client: 'other' })).toBe(3);
      expect(s.value('cdf_gateway_requests_total')).toBe(5);
    } finally {
      await stack.close();
    }
  });
});
