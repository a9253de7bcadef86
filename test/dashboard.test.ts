import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, type Stack, startStack } from './helpers.js';

/** Debian's package; CHROMIUM_PATH points elsewhere (e.g. to check the failure when it is missing). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const inCi = Boolean(process.env.CI);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// test/artifacts/ is git-ignored: a test run never rewrites a tracked file. `npm run screenshot` points this at
// docs/dashboard.png to regenerate the README's picture.
const SCREENSHOT = resolve(ROOT, process.env.DASHBOARD_SCREENSHOT ?? 'test/artifacts/dashboard.png');
const PROJECT = '/api/v1/projects/dashboard-demo';

/** What the page functions below touch (the project's TypeScript has no DOM types). */
interface InPage {
  document: {
    body: { getAttribute(name: string): string | null };
    querySelectorAll(selector: string): Iterable<{ getAttribute(name: string): string | null }>;
  };
}

type Series = Array<number | null>;

/** The part of /dashboard/data.json the charts draw. */
interface DashboardData {
  t: number[];
  buckets: Record<
    string,
    { queued: Series; waitAvgMs: Series; admitted: Series; effectiveRate: Series; configuredRate: Series }
  >;
  throttling: Record<'upstream429' | 'retried' | 'passedOn' | 'gateway429', Series>;
  requests: { byStatus: Record<string, Series>; byClient: Record<string, Series> };
  upstream: Record<'attempts' | 'p50' | 'p95' | 'p99', Series>;
  errors: Record<'answers5xx' | 'upstreamFailures', Series>;
  appWait: Record<string, Series>;
  cache: { hitRatio: Series };
}

const drawn = (...series: Series[]) => series.reduce((n, s) => n + s.filter((v) => v !== null).length, 0);
const total = (s: Series) => s.reduce<number>((n, v) => n + (v ?? 0), 0);

/** The values each chart should draw from one answer of data.json: every one that is not null. */
function expectedPoints(d: DashboardData): Record<string, number> {
  const b = Object.values(d.buckets);
  const out: Record<string, number> = {
    queue: drawn(...b.map((x) => x.queued)),
    wait: drawn(...b.map((x) => x.waitAvgMs)),
    throttling: drawn(...Object.values(d.throttling)),
    status: drawn(...Object.values(d.requests.byStatus)),
    latency: drawn(d.upstream.p50, d.upstream.p95, d.upstream.p99),
    errors: drawn(...Object.values(d.errors)),
    appwait: drawn(...Object.values(d.appWait)),
    clients: drawn(...Object.values(d.requests.byClient)),
    cache: drawn(d.cache.hitRatio),
  };
  for (const [name, x] of Object.entries(d.buckets))
    out[`bucket-${name}`] = drawn(x.admitted, x.effectiveRate, x.configuredRate);
  return out;
}

if (!haveChromium && !inCi) {
  console.warn(`dashboard.test.ts skipped: no Chromium at ${CHROMIUM}. Install it with: apt-get install chromium`);
}

/** Apps calling the gateway until stopped: enough variety for every chart to have something to show. */
function traffic(stack: Stack): { stop(): Promise<void>; sent(): number } {
  let running = true;
  let sent = 0;
  const worker = async (client: string, path: string, body: () => unknown, pauseMs: number) => {
    while (running) {
      try {
        const res = await fetch(`${stack.url}${PROJECT}${path}`, {
          method: 'POST',
          headers: { ...auth(), 'content-type': 'application/json', 'x-cdp-app': client },
          body: JSON.stringify(body()),
        });
        await res.arrayBuffer();
        sent++;
      } catch {
        // the stack is closing
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const workers = [
    worker('inventory-sync', '/assets/list', () => ({ limit: 10 }), 60),
    worker('inventory-sync', '/assets/list', () => ({ limit: 10 }), 60),
    // Cacheable: a handful of ids asked again and again.
    worker('operator-ui', '/assets/byids', () => ({ items: [{ id: 1 + Math.floor(Math.random() * 4) }] }), 40),
    worker('operator-ui', '/assets/byids', () => ({ items: [{ id: 1 + Math.floor(Math.random() * 4) }] }), 40),
    // More than the simulated CDF allows for timeseries: 429s from CDF, retries, adaptive limits.
    ...Array.from({ length: 4 }, () => worker('ts-loader', '/timeseries/list', () => ({ limit: 5 }), 20)),
    // More than the gateway's events bucket allows: a queue, waits and some 429s from the gateway.
    ...Array.from({ length: 6 }, () => worker('event-reporter', '/events/list', () => ({ limit: 1 }), 0)),
  ];
  return {
    sent: () => sent,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

describe.skipIf(!haveChromium && !inCi)('/dashboard in a real browser', () => {
  let stack: Stack;
  let browser: Browser;

  beforeAll(async () => {
    expect(haveChromium, `no Chromium at ${CHROMIUM}: apt-get install chromium`).toBe(true);
    stack = await startStack(
      {
        limits: [
          { name: 'assets', match: ['/assets', '/assets/**'], per: 'project', rate: 200, burst: 200, concurrency: 40 },
          { name: 'events', match: ['/events', '/events/**'], per: 'project', rate: 8, burst: 8, concurrency: 4 },
          {
            name: 'timeseries',
            match: ['/timeseries', '/timeseries/**'],
            per: 'project',
            rate: 60,
            burst: 60,
            concurrency: 20,
          },
          { name: 'other', match: ['/**'], per: 'project', rate: 50, burst: 50, concurrency: 10, fallback: true },
        ],
        queue: { maxWaitMs: 600, maxQueued: 100 },
        retry: { baseDelayMs: 20, maxDelayMs: 200 },
        cache: { rules: [{ match: ['/assets/byids'], methods: ['POST'], ttlMs: 3000 }] },
      },
      // The simulated CDF allows 40 calls/s per family: the timeseries loader runs into it.
      { project: { rate: 40, burst: 40, concurrency: 30 }, latencyMs: 15 },
    );
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('draws every chart from live data, without console errors or failed requests', async () => {
    const problems: string[] = [];
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`console ${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
    page.on('response', (res) => {
      if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
    });
    // Every data.json the page fetched, in order: the page renders them one at a time, in turn.
    const served: Array<Promise<DashboardData>> = [];
    page.on('response', (res) => {
      if (new URL(res.url()).pathname === '/dashboard/data.json') served.push(res.json());
    });

    const load = traffic(stack);
    try {
      const response = await page.goto(`${stack.url}/dashboard`);
      expect(response?.status()).toBe(200);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
      // Let the history fill while the traffic runs: about a dozen samples, six refreshes.
      await page.waitForFunction(
        () => Number((globalThis as unknown as InPage).document.body.getAttribute('data-refreshes')) >= 6,
        undefined,
        { timeout: 30_000 },
      );

      // Read in one turn of the page, so that the points are those of the refresh counted.
      const seen = await page.evaluate(() => {
        const doc = (globalThis as unknown as InPage).document;
        const points: Record<string, number> = {};
        for (const e of doc.querySelectorAll('[data-chart]'))
          points[String(e.getAttribute('data-chart'))] = Number(e.getAttribute('data-points') ?? -1);
        return { refreshes: Number(doc.body.getAttribute('data-refreshes')), points };
      });
      const { points } = seen;
      const rendered = await served[seen.refreshes - 1];
      const charts = ['queue', 'wait', 'throttling', 'latency', 'errors', 'appwait', 'status', 'clients', 'cache'];
      for (const chart of [...charts, 'bucket-assets', 'bucket-events', 'bucket-timeseries']) {
        expect(points[chart], `points in chart ${chart}`).toBeGreaterThan(0);
      }
      // Each chart drew every value of the answer it rendered, no more, no fewer.
      expect(points).toEqual(expectedPoints(rendered));
      // And those values show the traffic above: a history of several samples, CDF's 429s on the timeseries
      // loader (retried), the gateway's own 429s on the events queue, and cache hits on the repeated ids.
      expect(rendered.t.length).toBeGreaterThanOrEqual(6);
      expect(total(rendered.throttling.upstream429)).toBeGreaterThan(0);
      expect(total(rendered.throttling.retried)).toBeGreaterThan(0);
      expect(total(rendered.throttling.gateway429)).toBeGreaterThan(0);
      expect(Math.max(...rendered.cache.hitRatio.map((v) => v ?? 0))).toBeGreaterThan(0);
      // uPlot drew a canvas into each chart.
      const canvases = await page.$$eval('[data-chart] canvas', (els) => els.length);
      expect(canvases).toBe(Object.keys(points).length);
      const tiles = await page.$$eval('.tile .value', (els) => els.map((e) => e.textContent));
      expect(tiles).toHaveLength(7);
      // The header names the version, the uptime and the upstream.
      const build = await page.$eval('#build', (e) => e.textContent ?? '');
      expect(build).toMatch(/version \d+\.\d+\.\d+/);
      expect(build).toMatch(/up \d+m \d+s/);
      expect(build).toContain(`upstream ${stack.sim.url}`);
      // Queue wait per app: one line per app that sent requests.
      const appLines = await page.$$eval('[data-chart="appwait"] .u-legend th', (els) => els.map((e) => e.textContent));
      expect(appLines).toEqual(expect.arrayContaining(['event-reporter', 'ts-loader']));
      const clients = await page.$$eval('.sharelegend span', (els) => els.map((e) => e.textContent ?? ''));
      expect(clients.some((c) => c.startsWith('ts-loader'))).toBe(true);

      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    } finally {
      await load.stop();
    }
    expect(load.sent()).toBeGreaterThan(100);
    expect(problems).toEqual([]);
    await page.close();
  });
});
