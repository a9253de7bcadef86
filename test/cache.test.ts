import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { buildGateway } from '../src/app.js';
import type { MemoryResponseCache } from '../src/cache/index.js';
import { ConfigError, loadConfig } from '../src/config/index.js';
import type { SimOptions } from '../src/sim/index.js';
import { auth, jwt, type Stack, startStack } from './helpers.js';

const P = '/api/v1/projects/p';
const BYIDS = `POST ${P}/assets/byids`;
const LIST = `GET ${P}/assets`;

const RULES = [
  { match: ['/assets/byids'], methods: ['POST'], ttlMs: 60_000 },
  { match: ['/assets'], methods: ['GET'], ttlMs: 60_000 },
];

let stack: Stack | undefined;

afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function start(
  cache: Record<string, unknown> = {},
  sim: Partial<SimOptions> = {},
  more: Record<string, unknown> = {},
) {
  stack = await startStack({ cache: { rules: RULES, ...cache }, ...more }, sim);
  return stack;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

async function call(
  s: Stack,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Answer> {
  const res = await fetch(s.url + path, {
    method,
    headers: {
      ...auth(),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body:
      body === undefined
        ? undefined
        : body instanceof Uint8Array || typeof body === 'string'
          ? body
          : JSON.stringify(body),
    signal,
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const byids = (
  s: Stack,
  body: unknown = { items: [{ id: 1 }] },
  headers?: Record<string, string>,
  signal?: AbortSignal,
) => call(s, 'POST', `${P}/assets/byids`, body, headers, signal);
const upstreamCalls = (s: Stack, key: string) => s.sim.stats().byPath[key] ?? 0;
const cacheOf = (s: Stack) => s.gateway.cache as MemoryResponseCache;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` holds; a generous bound, not a measurement. */
async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(10);
  }
}
const xcache = (a: Answer) => a.headers.get('x-cache');

describe('response cache', () => {
  it('answers a repeated read from the cache: MISS, then HIT with Age, one upstream call', async () => {
    const s = await start();
    const first = await byids(s);
    expect(first.status).toBe(200);
    expect(xcache(first)).toBe('MISS');
    expect(first.headers.get('age')).toBeNull();
    const second = await byids(s);
    expect(second.status).toBe(200);
    expect(xcache(second)).toBe('HIT');
    // Whole seconds since it was stored (RFC 9111): present, and within the minute's TTL.
    expect(second.headers.get('age')).toMatch(/^\d+$/);
    expect(Number(second.headers.get('age'))).toBeGreaterThanOrEqual(0);
    expect(Number(second.headers.get('age'))).toBeLessThanOrEqual(60);
    expect(second.text).toBe(first.text);
    expect(upstreamCalls(s, BYIDS)).toBe(1);
    const stats = cacheOf(s).stats();
    expect(stats).toMatchObject({ entries: 1, hits: 1, misses: 1, stored: 1 });
    // GET with the query parameters in another order is the same entry.
    expect(xcache(await call(s, 'GET', `${P}/assets?limit=5&partition=1/2`))).toBe('MISS');
    expect(xcache(await call(s, 'GET', `${P}/assets?partition=1/2&limit=5`))).toBe('HIT');
    expect(upstreamCalls(s, LIST)).toBe(1);
  });

  it('never shares an entry across identities', async () => {
    const s = await start();
    expect(xcache(await byids(s))).toBe('MISS');
    const other = await byids(s, undefined, { authorization: jwt({ sub: 'someone-else' }) });
    expect(other.status).toBe(200);
    expect(xcache(other)).toBe('MISS');
    expect(xcache(await byids(s, undefined, { authorization: 'Bearer test-token-2' }))).toBe('MISS');
    expect(xcache(await byids(s))).toBe('HIT');
    expect(upstreamCalls(s, BYIDS)).toBe(3);
  });

  it('keys POST bodies canonically: key order does not matter, content and array order do', async () => {
    const s = await start();
    expect(xcache(await byids(s, { items: [{ id: 1 }, { id: 2 }], ignoreUnknownIds: false }))).toBe('MISS');
    expect(xcache(await byids(s, { ignoreUnknownIds: false, items: [{ id: 1 }, { id: 2 }] }))).toBe('HIT');
    expect(xcache(await byids(s, '{ "ignoreUnknownIds" : false,\n "items": [{"id":1},{"id":2}] }'))).toBe('HIT');
    expect(xcache(await byids(s, { items: [{ id: 2 }, { id: 1 }], ignoreUnknownIds: false }))).toBe('MISS');
    expect(xcache(await byids(s, { items: [{ id: 3 }], ignoreUnknownIds: false }))).toBe('MISS');
    expect(upstreamCalls(s, BYIDS)).toBe(3);
  });

  it('shares an entry between a gzip and a plain body of the same JSON', async () => {
    const s = await start();
    const body = { items: [{ id: 7 }] };
    const plain = await byids(s, body);
    expect(xcache(plain)).toBe('MISS');
    const zipped = await byids(s, gzipSync(JSON.stringify(body)), { 'content-encoding': 'gzip' });
    expect(zipped.status).toBe(200);
    expect(xcache(zipped)).toBe('HIT');
    expect(zipped.text).toBe(plain.text);
    expect(upstreamCalls(s, BYIDS)).toBe(1);
  });

  it('bypasses a POST whose body is not JSON, and leaves paths without a rule alone', async () => {
    const s = await start();
    const bad = await byids(s, 'not json');
    expect(bad.status).toBe(400);
    expect(xcache(bad)).toBe('BYPASS');
    const events = await call(s, 'GET', `${P}/events?limit=1`);
    expect(events.status).toBe(200);
    expect(xcache(events)).toBeNull();
  });

  it('coalesces 50 identical concurrent calls into one upstream call', async () => {
    const s = await start({}, { latencyMs: 200 });
    const answers = await Promise.all(Array.from({ length: 50 }, () => byids(s, { items: [{ id: 3 }] })));
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
    expect(new Set(answers.map((a) => a.text)).size).toBe(1);
    expect(upstreamCalls(s, BYIDS)).toBe(1);
    const outcomes = answers.map(xcache);
    expect(outcomes.filter((o) => o === 'MISS')).toHaveLength(1);
    expect(outcomes.every((o) => o === 'MISS' || o === 'COALESCED' || o === 'HIT')).toBe(true);
    expect(cacheOf(s).stats().inFlight).toBe(0);
  });

  it('lets the waiters make their own calls when the leader fails', async () => {
    const s = await start({}, { latencyMs: 150 });
    s.sim.inject({ status: 500, count: 1, match: '/assets/byids' });
    const answers = await Promise.all(Array.from({ length: 20 }, () => byids(s, { items: [{ id: 4 }] })));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((x) => x === 500)).toHaveLength(1);
    expect(statuses.filter((x) => x === 200)).toHaveLength(19);
    const calls = upstreamCalls(s, BYIDS);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(21);
    // The 500 was not stored; a 200 was.
    expect(xcache(await byids(s, { items: [{ id: 4 }] }))).toBe('HIT');
  });

  it('a waiter that goes away does not disturb the leader or the other waiters', async () => {
    const s = await start({}, { latencyMs: 300 });
    const controllers = Array.from({ length: 10 }, () => new AbortController());
    const pending = controllers.map((c) =>
      byids(s, { items: [{ id: 5 }] }, undefined, c.signal).catch((e: Error) => e),
    );
    // All ten in the gateway and the leader's call at the simulator: the other nine wait on its flight.
    await until(() => s.gateway.watchdog.size === 10 && s.sim.stats().inFlight === 1);
    for (const c of controllers.slice(5)) c.abort();
    const results = await Promise.all(pending);
    const answers = results.slice(0, 5) as Answer[];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(results.slice(5).every((r) => r instanceof Error)).toBe(true);
    expect(upstreamCalls(s, BYIDS)).toBe(1);
  });

  it('drops the cached entries of a family in a project after a successful write there', async () => {
    const s = await start();
    const other = `/api/v1/projects/q/assets/byids`;
    expect(xcache(await byids(s))).toBe('MISS');
    expect(xcache(await byids(s))).toBe('HIT');
    expect(xcache(await call(s, 'POST', other, { items: [{ id: 1 }] }))).toBe('MISS');
    expect(xcache(await call(s, 'GET', `${P}/assets?limit=2`))).toBe('MISS');
    // Another identity writes: the entries go for every identity.
    const created = await call(
      s,
      'POST',
      `${P}/assets`,
      { items: [{ name: 'new' }] },
      { authorization: 'Bearer writer' },
    );
    expect(created.status).toBe(200);
    expect(xcache(created)).toBeNull();
    expect(xcache(await byids(s))).toBe('MISS');
    expect(xcache(await call(s, 'GET', `${P}/assets?limit=2`))).toBe('MISS');
    // Another project is untouched.
    expect(xcache(await call(s, 'POST', other, { items: [{ id: 1 }] }))).toBe('HIT');
    expect(upstreamCalls(s, BYIDS)).toBe(2);
    expect(cacheOf(s).stats().invalidated).toBe(2);
    // A failed write invalidates nothing.
    expect((await call(s, 'POST', `${P}/assets`, { items: [] })).status).toBe(400);
    expect(xcache(await byids(s))).toBe('HIT');
  });

  it('does not cache errors', async () => {
    const s = await start();
    const missing = { items: [{ id: 999_999 }] };
    expect((await byids(s, missing)).status).toBe(400);
    expect((await byids(s, missing)).status).toBe(400);
    expect(upstreamCalls(s, BYIDS)).toBe(2);
    s.sim.inject({ status: 500, count: 1, match: '/assets/byids' });
    const failed = await byids(s);
    expect(failed.status).toBe(500);
    expect(xcache(failed)).toBe('MISS');
    const ok = await byids(s);
    expect(ok.status).toBe(200);
    expect(xcache(ok)).toBe('MISS');
    expect(upstreamCalls(s, BYIDS)).toBe(4);
    expect(xcache(await byids(s))).toBe('HIT');
  });

  it('does not store an answer whose stream breaks off', async () => {
    const s = await start();
    s.sim.inject({ reset: true, afterHeaders: true, count: 1, match: '/assets' });
    // A cacheable answer is read whole before it is passed on, so the app is told in CDF's shape.
    const broken = await call(s, 'GET', `${P}/assets?limit=3`);
    expect(broken.status).toBeGreaterThanOrEqual(500);
    expect(broken.status).toBe(502);
    expect(JSON.parse(broken.text).error.gatewayCode).toBe('CDFGW_UPSTREAM_BROKEN');
    const next = await call(s, 'GET', `${P}/assets?limit=3`);
    expect(next.status).toBe(200);
    expect(xcache(next)).toBe('MISS');
    expect(JSON.parse(next.text).items).toHaveLength(3);
    expect(upstreamCalls(s, LIST)).toBe(2);
  });

  it('follows the app: no-cache refreshes, no-store bypasses, max-age bounds the age', async () => {
    const s = await start();
    expect(xcache(await byids(s))).toBe('MISS');
    const refreshed = await byids(s, undefined, { 'cache-control': 'no-cache' });
    expect(xcache(refreshed)).toBe('MISS');
    expect(upstreamCalls(s, BYIDS)).toBe(2);
    expect(xcache(await byids(s))).toBe('HIT');

    const bypass = await byids(s, undefined, { 'cache-control': 'no-store' });
    expect(bypass.status).toBe(200);
    expect(xcache(bypass)).toBe('BYPASS');
    expect(upstreamCalls(s, BYIDS)).toBe(3);
    // no-store writes nothing either.
    const fresh = { items: [{ id: 9 }] };
    expect(xcache(await byids(s, fresh, { 'cache-control': 'no-store' }))).toBe('BYPASS');
    expect(xcache(await byids(s, fresh))).toBe('MISS');

    await sleep(20);
    expect(xcache(await byids(s, fresh, { 'cache-control': 'max-age=60' }))).toBe('HIT');
    expect(xcache(await byids(s, fresh, { 'cache-control': 'max-age=0' }))).toBe('MISS');
    expect(upstreamCalls(s, BYIDS)).toBe(6);
    expect(xcache(await byids(s, fresh))).toBe('HIT');
  });

  it('holds memory to maxBytes under many large entries, and streams answers over maxEntryBytes whole', async () => {
    const maxBytes = 200_000;
    const s = await start({ maxBytes, maxEntryBytes: 60_000 });
    const cache = cacheOf(s);
    for (let limit = 20; limit <= 400; limit += 20) {
      const a = await call(s, 'GET', `${P}/assets?limit=${limit}`);
      expect(a.status).toBe(200);
      expect(JSON.parse(a.text).items).toHaveLength(limit);
      expect(cache.stats().bytes).toBeLessThanOrEqual(maxBytes);
    }
    const stats = cache.stats();
    expect(stats.entries).toBeGreaterThan(0);
    expect(stats.evictions).toBeGreaterThan(0);
    expect(stats.notStored).toBeGreaterThan(0);
    expect(stats.bytes).toBeLessThanOrEqual(maxBytes);
    // A page too large to store is still served whole, and reaches upstream every time.
    const big = `${P}/assets?limit=1000`;
    const before = upstreamCalls(s, LIST);
    for (let i = 0; i < 2; i++) {
      const a = await call(s, 'GET', big);
      expect(xcache(a)).toBe('MISS');
      expect(JSON.parse(a.text).items).toHaveLength(1000);
    }
    expect(upstreamCalls(s, LIST)).toBe(before + 2);
  });

  it('expires entries after ttlMs', async () => {
    const s = await start({ rules: [{ match: ['/assets/byids'], methods: ['POST'], ttlMs: 300 }] });
    expect(xcache(await byids(s))).toBe('MISS');
    expect(xcache(await byids(s))).toBe('HIT');
    await sleep(600);
    expect(xcache(await byids(s))).toBe('MISS');
    expect(upstreamCalls(s, BYIDS)).toBe(2);
  });

  it('serves an expired entry as STALE when CDF fails, within staleIfErrorMs', async () => {
    const s = await start(
      { staleIfErrorMs: 10_000, rules: [{ match: ['/assets/byids'], methods: ['POST'], ttlMs: 200 }] },
      {},
      { retry: { maxAttempts: 1 } },
    );
    const first = await byids(s);
    expect(xcache(first)).toBe('MISS');
    await sleep(300);
    s.sim.inject({ status: 503, count: 1, match: '/assets/byids' });
    const stale = await byids(s);
    expect(stale.status).toBe(200);
    expect(xcache(stale)).toBe('STALE');
    expect(stale.headers.get('age')).not.toBeNull();
    expect(stale.text).toBe(first.text);
    s.sim.inject({ status: 500, count: 1, match: '/assets/byids' });
    expect(xcache(await byids(s))).toBe('STALE');
    // A 4xx is the app's problem, not CDF failing: passed on.
    s.sim.inject({ status: 403, count: 1, match: '/assets/byids' });
    expect((await byids(s)).status).toBe(403);
    const refreshed = await byids(s);
    expect(xcache(refreshed)).toBe('MISS');
    expect(xcache(await byids(s))).toBe('HIT');
    expect(cacheOf(s).stats().stale).toBe(2);
  });
});

describe('cache configuration', () => {
  const build = (rules: unknown[]) =>
    buildGateway(
      loadConfig({ env: {}, overrides: { server: { port: 0 }, log: { level: 'silent' }, cache: { rules } } }),
    );

  it.each([
    [[{ match: ['/assets'], methods: ['POST'], ttlMs: 1000 }], 'cache.rules[0].methods', /"\/assets" which writes/],
    [
      [
        { match: ['/assets/byids'], methods: ['POST'], ttlMs: 1000 },
        { match: ['/assets/*'], methods: ['POST'], ttlMs: 1000 },
      ],
      'cache.rules[1].methods',
      /writes \(it matches POST \/assets\/(delete|update)\)/,
    ],
    [[{ match: ['/assets/*'], methods: ['PUT'], ttlMs: 1000 }], 'cache.rules[0].methods', /got PUT/],
    [[{ match: ['/assets'], methods: ['DELETE'], ttlMs: 1000 }], 'cache.rules[0].methods', /got DELETE/],
  ])('refuses a rule that could cache a write (%#)', async (rules, key, message) => {
    const err = await build(rules).then(
      async (g) => {
        await g.close();
        return null;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(key);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain('expected GET or read-only POSTs');
  });

  it('accepts GETs and read-only POSTs', async () => {
    const g = await build([
      { match: ['/assets/byids', '/events/list', '/timeseries/search'], methods: ['POST', 'GET'], ttlMs: 1000 },
      { match: ['/assets', '/assets/*'], ttlMs: 1000 },
    ]);
    await g.close();
  });
});
