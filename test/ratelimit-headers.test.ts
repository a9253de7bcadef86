import { parseList } from 'structured-headers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { call, type Stack, startStack } from './helpers.js';

const P = '/api/v1/projects/rl';

/** The one list member of a RateLimit-Policy or RateLimit field, parsed as an RFC 9651 structured field. */
function field(headers: Headers, name: string): { name: unknown; params: Record<string, unknown> } {
  const value = headers.get(name);
  expect(value, `${name} header`).not.toBeNull();
  const list = parseList(value as string);
  expect(list).toHaveLength(1);
  const [item, params] = list[0] as [unknown, Map<string, unknown>];
  return { name: item, params: Object.fromEntries(params) };
}

const limit = (name: string, match: string, rate: number, concurrency: number) => ({
  name,
  match,
  per: 'project',
  rate,
  burst: rate,
  concurrency,
});

describe('RateLimit headers', () => {
  let stack: Stack;
  afterEach(async () => {
    await stack?.close();
  });

  it('states the rate of the bucket closest to exhaustion on every proxied answer', async () => {
    stack = await startStack({
      limits: [limit('assets', '/assets/**', 200, 400), limit('assets-analytical', '/assets/list', 30, 400)],
    });
    // Ten calls at once: the analytical bucket (30/s, 28.5 after the 50 ms jitter reserve) is the scarcer.
    const burst = await Promise.all(
      Array.from({ length: 10 }, () => call(stack, `${P}/assets/list`, { body: { limit: 1 } })),
    );
    for (const res of burst) {
      expect(res.status).toBe(200);
      expect(field(res.headers, 'ratelimit-policy')).toEqual({ name: 'assets-analytical', params: { q: 30, w: 1 } });
      const r = field(res.headers, 'ratelimit');
      expect(r.name).toBe('assets-analytical');
      // At most 28 whole tokens (30 less the 50 ms jitter reserve), at least 18 (ten taken); full within 1 s.
      expect(r.params.r).toBeLessThanOrEqual(28);
      expect(r.params.r).toBeGreaterThanOrEqual(18);
      expect([0, 1]).toContain(r.params.t);
    }
    // Another path of the same API: only the API-level bucket applies.
    const byIds = await call(stack, `${P}/assets/byids`, { body: { items: [{ id: 1 }] } });
    expect(field(byIds.headers, 'ratelimit-policy')).toEqual({ name: 'assets', params: { q: 200, w: 1 } });
  });

  it('states concurrency as concurrent-requests when the slots are the scarcer', async () => {
    stack = await startStack({ limits: [limit('slots', '/**', 1000, 2)] });
    // Two slots against hundreds of tokens: the slots run out first. A call's own slot is free again once
    // its answer is written, so alone it sees both.
    const res = await call(stack, `${P}/assets`);
    expect(field(res.headers, 'ratelimit-policy')).toEqual({
      name: 'slots',
      params: { q: 2, qu: 'concurrent-requests' },
    });
    expect(field(res.headers, 'ratelimit')).toEqual({ name: 'slots', params: { r: 2 } });
    // With another call in flight, one of the two slots stays taken.
    stack.sim.inject({ delayMs: 300, count: 1, match: '/assets' });
    const slow = call(stack, `${P}/assets`);
    // Held at the simulator (the injected delay), so its slot is taken while the next call is answered.
    await vi.waitFor(() => expect(stack.sim.stats().inFlight).toBe(1), { timeout: 10_000 });
    const during = await call(stack, `${P}/assets`);
    expect(field(during.headers, 'ratelimit-policy')).toEqual({
      name: 'slots',
      params: { q: 2, qu: 'concurrent-requests' },
    });
    expect(field(during.headers, 'ratelimit')).toEqual({ name: 'slots', params: { r: 1 } });
    expect((await slow).status).toBe(200);
  });

  it("is on the gateway's own 429 next to Retry-After, and fresh on cached answers", async () => {
    stack = await startStack({
      limits: [{ name: 'tight', match: '/**', per: 'project', rate: 0.5, burst: 1, concurrency: 10 }],
      queue: { maxQueued: 0 },
      cache: { rules: [{ match: '/assets/byids', methods: ['POST'], ttlMs: 60_000 }] },
    });
    const miss = await call(stack, `${P}/assets/byids`, { body: { items: [{ id: 7 }] } });
    expect(miss.headers.get('x-cache')).toBe('MISS');
    // A rate under 1/s is stated over a longer window; the one token went to this call, the next in 2 s.
    expect(field(miss.headers, 'ratelimit-policy')).toEqual({ name: 'tight', params: { q: 1, w: 2 } });
    expect(field(miss.headers, 'ratelimit')).toEqual({ name: 'tight', params: { r: 0, t: 2 } });
    const refused = await call(stack, `${P}/assets`);
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(field(refused.headers, 'ratelimit-policy')).toEqual({ name: 'tight', params: { q: 1, w: 2 } });
    expect(field(refused.headers, 'ratelimit').params.r).toBe(0);
    // A cached answer takes no token, and tells the bucket as it is now, not as it was when stored:
    // over a second later the next token is less than a second away.
    await new Promise((r) => setTimeout(r, 1100));
    const hit = await call(stack, `${P}/assets/byids`, { body: { items: [{ id: 7 }] } });
    expect(hit.headers.get('x-cache')).toBe('HIT');
    expect(field(hit.headers, 'ratelimit')).toEqual({ name: 'tight', params: { r: 0, t: 1 } });
  });

  it('headers.rateLimit: false leaves them out', async () => {
    stack = await startStack({ limits: [limit('all', '/**', 100, 10)], headers: { rateLimit: false } });
    const res = await call(stack, `${P}/assets`);
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit')).toBeNull();
    expect(res.headers.get('ratelimit-policy')).toBeNull();
  });
});
