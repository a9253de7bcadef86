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
const SCREENSHOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'dashboard.png');
const PROJECT = '/api/v1/projects/dashboard-demo';

/** What the page functions below touch (the project's TypeScript has no DOM types). */
interface InPage {
  document: { body: { getAttribute(name: string): string | null } };
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

      const points = await page.$$eval('[data-chart]', (els) =>
        Object.fromEntries(els.map((e) => [e.getAttribute('data-chart'), Number(e.getAttribute('data-points') ?? -1)])),
      );
      const charts = ['queue', 'wait', 'throttling', 'latency', 'errors', 'appwait', 'status', 'clients', 'cache'];
      for (const chart of [...charts, 'bucket-assets', 'bucket-events', 'bucket-timeseries']) {
        expect(points[chart], `points in chart ${chart}`).toBeGreaterThan(0);
      }
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
