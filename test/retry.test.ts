import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Fault } from '../src/sim/index.js';
import { type Answer, auth, call, oneLimit, type Stack, startStack } from './helpers.js';

const P = '/api/v1/projects/p';
const ASSETS = `${P}/assets`;
const LIST = `${P}/assets/list`;

/** Quick backoff, no breaker, one roomy bucket: the table's rows see only the retry policy. */
const QUICK = {
  retry: { baseDelayMs: 10, maxDelayMs: 50 },
  circuit: { enabled: false },
  ...oneLimit({ rate: 1000, burst: 1000, concurrency: 100 }),
};

/** The table's calls: method first. */
function send(stack: Stack, method: string, path: string, body?: unknown): Promise<Answer> {
  return call(stack, path, { method, body });
}

/** Calls the simulator saw for `METHOD /path` (path without query). */
const seen = (stack: Stack, method: string, path: string) => stack.sim.stats().byPath[`${method} ${path}`] ?? 0;

const retryLines = (stack: Stack) => stack.logs.lines.filter((l) => l.msg === 'retrying upstream call');

const newAsset = { items: [{ externalId: 'retry-test', name: 'retry test' }] };

describe('retry policy table', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ ...QUICK, upstream: { timeoutMs: 500 } });
    // Warm both ends up so that no cold first call comes near the short upstream timeout.
    for (let i = 0; i < 3; i++) expect((await send(stack, 'GET', ASSETS)).status).toBe(200);
    stack.sim.reset();
  });
  afterAll(() => stack.close());
  afterEach(() => stack.sim.reset());

  interface Row {
    name: string;
    method: 'GET' | 'POST';
    path: string;
    body?: unknown;
    fault: Fault;
    calls: number;
    status: number;
  }
  const rows: Row[] = [
    {
      name: 'GET list + 503: retried',
      method: 'GET',
      path: ASSETS,
      fault: { count: 1, status: 503 },
      calls: 2,
      status: 200,
    },
    {
      name: 'POST /assets/list (read) + 502: retried',
      method: 'POST',
      path: LIST,
      body: { limit: 1 },
      fault: { count: 1, status: 502 },
      calls: 2,
      status: 200,
    },
    {
      name: 'POST /assets (write) + 503: not retried, 503 passed back',
      method: 'POST',
      path: ASSETS,
      body: newAsset,
      fault: { count: 1, status: 503 },
      calls: 1,
      status: 503,
    },
    {
      name: 'POST /assets + 503 marked auto-retryable: retried',
      method: 'POST',
      path: ASSETS,
      body: newAsset,
      fault: { count: 1, status: 503, autoRetryable: true },
      calls: 2,
      status: 200,
    },
    {
      name: 'POST /assets + 429: retried (CDF did not process it)',
      method: 'POST',
      path: ASSETS,
      body: newAsset,
      fault: { count: 1, status: 429 },
      calls: 2,
      status: 200,
    },
    {
      name: 'POST /assets + reset: not retried, 502',
      method: 'POST',
      path: ASSETS,
      body: newAsset,
      fault: { count: 1, reset: true },
      calls: 1,
      status: 502,
    },
    {
      name: 'GET + reset: retried',
      method: 'GET',
      path: ASSETS,
      fault: { count: 1, reset: true },
      calls: 2,
      status: 200,
    },
    {
      name: 'GET + upstream timeout: retried',
      method: 'GET',
      path: ASSETS,
      fault: { count: 1, delayMs: 2000 },
      calls: 2,
      status: 200,
    },
    {
      name: 'POST /assets + upstream timeout: not retried, 504',
      method: 'POST',
      path: ASSETS,
      body: newAsset,
      fault: { count: 1, delayMs: 2000 },
      calls: 1,
      status: 504,
    },
  ];

  it.each(rows)('$name', async (row) => {
    stack.sim.inject({ ...row.fault, method: row.method });
    const before = retryLines(stack).length;
    const res = await send(stack, row.method, row.path, row.body);
    expect(res.status).toBe(row.status);
    expect(seen(stack, row.method, row.path)).toBe(row.calls);
    expect(retryLines(stack).length - before).toBe(row.calls - 1);
    if (row.status === 503) {
      // CDF's own answer, unchanged.
      expect(res.json?.error?.code).toBe(503);
      expect(res.json?.error?.message).toMatch(/Injected fault/);
    }
  });
});

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('connection refused', () => {
  let stack: Stack;
  afterAll(() => stack?.close());

  it('is retried even for a write (never sent), up to maxAttempts, then 502', async () => {
    const port = await closedPort();
    stack = await startStack({
      ...QUICK,
      upstream: { baseUrl: `http://127.0.0.1:${port}` },
      retry: { baseDelayMs: 10, maxDelayMs: 50, maxAttempts: 3 },
    });
    const res = await send(stack, 'POST', ASSETS, newAsset);
    expect(res.status).toBe(502);
    expect(res.json?.error?.message).toMatch(/could not be reached/);
    const lines = retryLines(stack);
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.reason === 'connect')).toBe(true);
  });
});

describe('Retry-After, deadline and attempts', () => {
  let stack: Stack;
  afterEach(() => stack?.close());

  it('waits for Retry-After before the retry', async () => {
    stack = await startStack(QUICK);
    stack.sim.inject({ count: 1, status: 429, retryAfter: '1', method: 'GET' });
    const res = await send(stack, 'GET', ASSETS);
    expect(res.status).toBe(200);
    expect(seen(stack, 'GET', ASSETS)).toBe(2);
    const lines = retryLines(stack);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ retryAfter: true, reason: 'throttled' });
    expect(lines[0].delayMs).toBeGreaterThanOrEqual(1000);
  });

  it('stops at retry.maxAttempts and passes CDF’s 429 back', async () => {
    stack = await startStack({ ...QUICK, retry: { baseDelayMs: 10, maxDelayMs: 50, maxAttempts: 3 } });
    stack.sim.inject({ count: 5, status: 429, method: 'GET' });
    const res = await send(stack, 'GET', ASSETS);
    expect(res.status).toBe(429);
    expect(res.json?.error?.code).toBe(429);
    expect(res.json?.error?.message).toMatch(/Injected fault/);
    expect(seen(stack, 'GET', ASSETS)).toBe(3);
    expect(retryLines(stack)).toHaveLength(2);
  });

  it('does not retry when Retry-After is past retry.maxWaitMs', async () => {
    stack = await startStack({ ...QUICK, retry: { baseDelayMs: 10, maxDelayMs: 50, maxWaitMs: 300 } });
    stack.sim.inject({ count: 1, status: 429, retryAfter: '5', method: 'GET' });
    const res = await send(stack, 'GET', ASSETS);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.json?.error?.message).toMatch(/Injected fault/);
    expect(seen(stack, 'GET', ASSETS)).toBe(1);
    expect(retryLines(stack)).toHaveLength(0);
  });
});

describe('retry budget', () => {
  let stack: Stack;
  afterAll(() => stack?.close());

  it('stops retrying past the floor of 10 retries/s when budgetRatio is 0', async () => {
    // Tiny backoff: the whole run stays inside one 1 s budget window.
    stack = await startStack({
      ...QUICK,
      retry: { baseDelayMs: 1, maxDelayMs: 5, budgetRatio: 0, budgetWindowMs: 1000 },
    });
    stack.sim.inject({ count: 50, status: 503, method: 'GET' });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await send(stack, 'GET', ASSETS)).status);
    const calls = seen(stack, 'GET', ASSETS);
    expect(statuses.every((s) => s === 503)).toBe(true);
    // 20 first attempts + the floor of 10 retries (a little slack should the window slide).
    expect(calls).toBeGreaterThanOrEqual(30);
    expect(calls).toBeLessThanOrEqual(33);
    expect(stack.logs.lines.some((l) => String(l.msg).startsWith('retry budget exhausted'))).toBe(true);
  });
});

describe('a body read whole in many chunks', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(QUICK);
  });
  afterAll(() => stack.close());

  it('goes upstream whole and unchanged, on the first attempt and on the retry', async () => {
    // 2 MiB arrives in many socket reads; the gateway keeps the chunks (no copy) and sends them twice.
    const body = JSON.stringify({ items: [{ externalId: 'big', description: 'y'.repeat(2 * 2 ** 20) }] });
    const sha = createHash('sha256').update(body).digest('hex');
    stack.sim.inject({ count: 1, status: 429, method: 'POST', match: '_sim/echo' });
    const res = await call(stack, `${P}/_sim/echo`, { method: 'POST', body });
    expect(res.status).toBe(200);
    const echoed = res.json as { bodyBytes: number; bodySha256: string; headers: Record<string, string> };
    expect(echoed.bodyBytes).toBe(Buffer.byteLength(body));
    expect(echoed.bodySha256).toBe(sha);
    expect(echoed.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(retryLines(stack)).toHaveLength(1);
  });
});

describe('large writes sent as they arrive (TeeBody)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(QUICK);
  });
  afterAll(() => stack.close());

  it('arrive whole and unchanged when their buffers are reused, after a retry and side by side', async () => {
    // 1 MiB uploads of the same capacity: the buffer of one is reused by the next, except where a retry
    // sent views of it upstream. Each arrives with its own bytes.
    const upload = async (fill: string) => {
      const body = JSON.stringify({ items: [{ externalId: fill, description: fill.repeat(2 ** 20) }] });
      const res = await call(stack, `${P}/_sim/echo`, { method: 'POST', body });
      const echoed = res.json as { bodyBytes: number; bodySha256: string };
      return {
        status: res.status,
        same: echoed.bodySha256 === createHash('sha256').update(body).digest('hex'),
        bytes: echoed.bodyBytes,
      };
    };
    expect(await upload('a')).toMatchObject({ status: 200, same: true });
    stack.sim.inject({ count: 1, status: 429, method: 'POST', match: '_sim/echo' });
    expect(await upload('b')).toMatchObject({ status: 200, same: true });
    expect(retryLines(stack)).toHaveLength(1);
    for (const fill of ['c', 'd']) expect(await upload(fill)).toMatchObject({ status: 200, same: true });
    // Side by side, three of them retried from their kept bytes: no two share a buffer.
    stack.sim.inject({ count: 3, status: 429, method: 'POST', match: '_sim/echo' });
    const together = await Promise.all(['e', 'f', 'g', 'h', 'i', 'j'].map(upload));
    expect(retryLines(stack)).toHaveLength(4);
    expect(together.map((r) => `${r.status} ${r.same}`)).toEqual(Array(6).fill('200 true'));
  });
});

describe('bodies and responses that cannot be retried', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ ...QUICK, retry: { baseDelayMs: 10, maxDelayMs: 50, maxBodyBytes: 1024 } });
  });
  afterAll(() => stack.close());
  afterEach(() => stack.sim.reset());

  it('a body over retry.maxBodyBytes streams, and its 429 goes back unchanged', async () => {
    stack.sim.inject({ count: 1, status: 429, method: 'POST' });
    const filter = { filter: { name: 'x'.repeat(10_240) }, limit: 1 };
    const res = await send(stack, 'POST', LIST, filter);
    expect(res.status).toBe(429);
    expect(res.json?.error?.code).toBe(429);
    expect(res.json?.error?.message).toMatch(/Injected fault/);
    expect(seen(stack, 'POST', LIST)).toBe(1);
    expect(retryLines(stack)).toHaveLength(0);
  });

  it('is never retried once the response has started', async () => {
    stack.sim.inject({ count: 1, reset: true, afterHeaders: true, method: 'GET' });
    const res = await fetch(`${stack.url}${ASSETS}`, { headers: auth() });
    let broken = false;
    let text = '';
    try {
      text = await res.text();
    } catch {
      broken = true;
    }
    if (!broken) {
      // Not a clean answer either: a 200 whose body broke off.
      expect(res.status).toBe(200);
      expect(() => JSON.parse(text)).toThrow();
    }
    expect(seen(stack, 'GET', ASSETS)).toBe(1);
    expect(retryLines(stack)).toHaveLength(0);
  });
});

describe('adaptive limits (AIMD)', () => {
  let stack: Stack;
  afterAll(() => stack?.close());

  it('cuts the effective rate on 429s and raises it again when CDF allows more', async () => {
    stack = await startStack(
      {
        ...oneLimit({ rate: 150, burst: 30, concurrency: 30 }),
        retry: { baseDelayMs: 10, maxDelayMs: 50 },
        // A short hold under the level CDF pushed back at, so that the climb past it shows within the run.
        adaptive: { holdMs: 1000 },
        circuit: { enabled: false },
      },
      { project: { rate: 50, burst: 10, concurrency: 10 }, chargeThrottled: true },
    );
    // The call's tightest bucket: 'all', or the bucket learned for the operation (CDF's stated 50/s is
    // tighter than every configured bucket on its path, so the gateway learns it for the operation).
    const bucket = () => {
      const bs = [...stack.gateway.scheduler.allBuckets()].filter((x) => x.limit.name === 'all' || x.limit.learned);
      if (bs.length === 0) throw new Error('no bucket yet');
      return bs.reduce((a, b) => (b.rate < a.rate ? b : a));
    };
    const drive = async (ms: number) => {
      const until = Date.now() + ms;
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (Date.now() < until) {
            const res = await fetch(`${stack.url}${ASSETS}?limit=1`, { headers: auth() });
            await res.arrayBuffer();
          }
        }),
      );
    };
    const share = (a: { calls: number; throttled: number }, b: { calls: number; throttled: number }) =>
      (b.throttled - a.throttled) / Math.max(1, b.calls - a.calls);

    const s0 = stack.sim.stats();
    await drive(1500);
    const s1 = stack.sim.stats();
    // The lowest effective rate seen while it is being cut: "right after the cut".
    let lowest = bucket().rate;
    const sampler = setInterval(() => {
      lowest = Math.min(lowest, bucket().rate);
    }, 20);
    await drive(1500).finally(() => clearInterval(sampler));
    const s2 = stack.sim.stats();
    const cut = Math.min(lowest, bucket().rate);
    expect(cut).toBeLessThan(150);
    expect(bucket().rate).toBeLessThan(150);
    const firstHalf = share(s0, s1);
    const secondHalf = share(s1, s2);
    expect(firstHalf).toBeGreaterThan(0);
    // CDF's 429s state its 50/s, which the gateway learns within the first half's first 429s (issue #12), so
    // both halves mostly run on the learned bucket and the second is not reliably lower than the first (run
    // alone, 0.09-0.12 in both; a CI run had 0.07 then 0.105, so a ratio of the two is noise). What must hold:
    // no storm, and not clearly more throttling once cut than before (5 points: ~35 of the ~700 calls a half).
    expect(secondHalf).toBeLessThan(0.2);
    expect(secondHalf).toBeLessThanOrEqual(firstHalf + 0.05);

    stack.sim.update({ project: { rate: 200, burst: 40, concurrency: 20 } });
    await drive(3000);
    expect(bucket().rate).toBeGreaterThan(cut);

    const changes = stack.logs.lines.filter((l) => l.msg === 'effective limit changed');
    expect(changes.some((l) => l.direction === 'decrease')).toBe(true);
    expect(changes.some((l) => l.direction === 'increase')).toBe(true);
  });
});

describe('circuit breaker', () => {
  let stack: Stack;
  afterAll(() => stack?.close());

  it('opens after failures, answers 503 without calling CDF, and closes after a good probe', async () => {
    stack = await startStack({
      ...QUICK,
      retry: { maxAttempts: 1 },
      circuit: { enabled: true, minCalls: 5, failureRatio: 0.5, openMs: 500, windowMs: 10000 },
    });
    stack.sim.inject({ count: 20, status: 503, method: 'GET' });
    for (let i = 0; i < 5; i++) expect((await send(stack, 'GET', ASSETS)).status).toBe(503);
    expect(stack.gateway.circuit.state).toBe('open');
    expect(seen(stack, 'GET', ASSETS)).toBe(5);

    const fast = await send(stack, 'GET', ASSETS);
    expect(fast.status).toBe(503);
    expect(fast.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(fast.json?.error?.code).toBe(503);
    expect(fast.json?.error?.message).toMatch(/not sending calls/);
    expect(seen(stack, 'GET', ASSETS)).toBe(5);

    // CDF recovers; after openMs a probe goes through and closes the breaker.
    stack.sim.reset();
    await sleep(600);
    let status = 0;
    for (let i = 0; i < 30 && status !== 200; i++) {
      status = (await send(stack, 'GET', ASSETS)).status;
      if (status !== 200) await sleep(100);
    }
    expect(status).toBe(200);
    expect(stack.gateway.circuit.state).toBe('closed');
    expect(seen(stack, 'GET', ASSETS)).toBeGreaterThanOrEqual(1);
  });
});
