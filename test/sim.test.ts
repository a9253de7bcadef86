import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type SimOptions, type Simulator, startSimulator } from '../src/sim/index.js';

const P = '/api/v1/projects/test';
const AUTH = { authorization: 'Bearer test-token' };

let sim: Simulator | undefined;

afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(options?: Partial<SimOptions>): Promise<Simulator> {
  sim = await startSimulator(options);
  return sim;
}

interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test answers are inspected field by field
  body: any;
  text: string;
}

async function call(
  s: Simulator,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = AUTH,
) {
  const res = await fetch(s.url + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body:
      body === undefined
        ? undefined
        : typeof body === 'string' || body instanceof Uint8Array
          ? body
          : JSON.stringify(body),
  });
  const text = await res.text();
  const answer: Answer = { status: res.status, headers: res.headers, body: undefined, text };
  if (res.headers.get('content-type') === 'application/json') answer.body = JSON.parse(text);
  return answer;
}

const get = (s: Simulator, path: string, headers?: Record<string, string>) => call(s, 'GET', path, undefined, headers);
const post = (s: Simulator, path: string, body: unknown, headers?: Record<string, string>) =>
  call(s, 'POST', path, body, headers);

const ids = (a: Answer): number[] => a.body.items.map((item: { id: number }) => item.id);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const jwt = (claims: object, signature: string) =>
  ['e30', Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');

function expectCdfError(a: Answer, status: number, message?: string) {
  expect(a.status).toBe(status);
  expect(a.headers.get('content-type')).toBe('application/json');
  expect(a.body.error.code).toBe(status);
  expect(typeof a.body.error.message).toBe('string');
  if (message !== undefined) expect(a.body.error.message).toBe(message);
}

describe('lists', () => {
  it('pages through every asset with cursors and omits nextCursor on the last page', async () => {
    const s = await start();
    const seen: number[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const a = await get(s, `${P}/assets?limit=300${cursor ? `&cursor=${cursor}` : ''}`);
      expect(a.status).toBe(200);
      seen.push(...ids(a));
      cursor = a.body.nextCursor;
      pages++;
      if (pages === 4) expect('nextCursor' in a.body).toBe(false);
    } while (cursor);
    expect(pages).toBe(4);
    expect(seen).toEqual(range(1, 1000));
  });

  it('defaults to 100 items, honours `items`, and answers the same bytes every run', async () => {
    const s = await start({ items: 250 });
    const first = await get(s, `${P}/events`);
    expect(ids(first)).toEqual(range(1, 100));
    const last = await post(s, `${P}/events/list`, { limit: 1000 });
    expect(ids(last)).toEqual(range(1, 250));
    const other = await startSimulator({ items: 250 });
    try {
      const again = await fetch(`${other.url}${P}/events`, { headers: AUTH });
      expect(await again.text()).toBe(first.text);
    } finally {
      await other.close();
    }
  });

  it('serves items of 200-400 bytes with the documented fields', async () => {
    const s = await start();
    for (const kind of ['assets', 'events', 'timeseries']) {
      const a = await get(s, `${P}/${kind}?limit=1000`);
      for (const item of a.body.items) {
        const size = JSON.stringify(item).length;
        expect(size).toBeGreaterThanOrEqual(200);
        expect(size).toBeLessThanOrEqual(400);
      }
    }
    const asset = (await post(s, `${P}/assets/byids`, { items: [{ id: 12 }] })).body.items[0];
    expect(asset).toMatchObject({ id: 12, externalId: 'asset-12', parentId: 2, createdTime: expect.any(Number) });
    expect(typeof asset.name).toBe('string');
    expect(typeof asset.description).toBe('string');
    expect(typeof asset.metadata).toBe('object');
  });

  it('partitions cover all items exactly once, also when paging inside a partition', async () => {
    const s = await start();
    const seen: number[] = [];
    for (let m = 1; m <= 7; m++) {
      let cursor: string | undefined;
      do {
        const filter = { source: 'cdf-sim' }; // every generated event: the filtered path partitions alike
        const a = await post(s, `${P}/events/list`, { limit: 60, partition: `${m}/7`, cursor, filter });
        expect(a.status).toBe(200);
        seen.push(...ids(a));
        cursor = a.body.nextCursor;
      } while (cursor);
    }
    expect(seen.length).toBe(1000);
    expect([...seen].sort((x, y) => x - y)).toEqual(range(1, 1000));
    const second = await get(s, `${P}/timeseries?partition=2/4&limit=1000`);
    expect(ids(second)).toEqual(range(251, 500));
  });

  it('rejects over-limit, malformed partitions and bad cursors with 400 in CDF shape', async () => {
    const s = await start();
    expectCdfError(await get(s, `${P}/assets?limit=1001`), 400);
    expectCdfError(await get(s, `${P}/assets?limit=0`), 400);
    expectCdfError(await post(s, `${P}/assets/list`, { limit: 5000 }), 400);
    for (const partition of ['0/3', '4/3', '1-3', 'x']) {
      expectCdfError(await post(s, `${P}/assets/list`, { partition }), 400);
    }
    expectCdfError(await get(s, `${P}/assets?cursor=not-a-cursor`), 400);
    expectCdfError(await post(s, `${P}/assets/list`, '{"limit": 10'), 400);
    expectCdfError(await get(s, `${P}/nonsense/things`), 404);
    expectCdfError(await get(s, '/not-api'), 404);
  });
});

describe('items', () => {
  it('byids finds by id and externalId in request order, 400s on unknown ids unless ignored', async () => {
    const s = await start();
    const a = await post(s, `${P}/assets/byids`, { items: [{ externalId: 'asset-2' }, { id: 7 }] });
    expect(a.status).toBe(200);
    expect(ids(a)).toEqual([2, 7]);
    const missing = await post(s, `${P}/assets/byids`, { items: [{ id: 1 }, { id: 5000 }] });
    expectCdfError(missing, 400);
    expect(missing.body.error.missing).toEqual([{ id: 5000 }]);
    const ignored = await post(s, `${P}/timeseries/byids`, {
      items: [{ id: 3 }, { externalId: 'nope' }],
      ignoreUnknownIds: true,
    });
    expect(ids(ignored)).toEqual([3]);
  });

  it('creates items with new ids, counts them, and finds them again', async () => {
    const s = await start();
    const a = await post(s, `${P}/assets`, { items: [{ name: 'a', externalId: 'mine-1' }, { name: 'b' }] });
    expect(a.status).toBe(200);
    const [first, second] = ids(a);
    expect(first).toBeGreaterThan(1000);
    expect(second).not.toBe(first);
    expect(a.body.items[0]).toMatchObject({ name: 'a', externalId: 'mine-1' });
    const found = await post(s, `${P}/assets/byids`, { items: [{ externalId: 'mine-1' }] });
    expect(ids(found)).toEqual([first]);
    expect((await post(s, `${P}/assets/update`, { items: [{ id: 3, update: {} }] })).body.items[0].id).toBe(3);
    expect((await post(s, `${P}/assets/delete`, { items: [{ id: 3 }] })).body).toEqual({});
    const stats = s.stats();
    expect(stats.created).toBe(2);
    expect(stats.byPath[`POST ${P}/assets/delete`]).toBe(1);
    expect(stats.byPath[`POST ${P}/assets/update`]).toBe(1);
  });

  it('decompresses gzip request bodies', async () => {
    const s = await start();
    const zipped = gzipSync(JSON.stringify({ items: [{ id: 42 }, { externalId: 'event-43' }] }));
    const a = await post(s, `${P}/events/byids`, zipped, { ...AUTH, 'content-encoding': 'gzip' });
    expect(a.status).toBe(200);
    expect(ids(a)).toEqual([42, 43]);
    const bad = await post(s, `${P}/events/byids`, Buffer.from('not gzip'), { ...AUTH, 'content-encoding': 'gzip' });
    expectCdfError(bad, 400);
  });
});

describe('datapoints', () => {
  it('pages deterministic one-per-second datapoints with cursors', async () => {
    const s = await start();
    const timestamps: number[] = [];
    let cursor: string | undefined;
    let first: Answer | undefined;
    do {
      const a = await post(s, `${P}/timeseries/data/list`, {
        items: [{ externalId: 'timeseries-5', start: 500, end: 250_500, limit: 100, cursor }],
      });
      expect(a.status).toBe(200);
      first ??= a;
      const [item] = a.body.items;
      expect(item).toMatchObject({ id: 5, isString: false });
      timestamps.push(...item.datapoints.map((d: { timestamp: number }) => d.timestamp));
      cursor = item.nextCursor;
    } while (cursor);
    expect(timestamps).toEqual(range(1, 250).map((i) => i * 1000));
    const again = await post(s, `${P}/timeseries/data/list`, { items: [{ id: 5, start: 500, end: 250_500 }] });
    expect(again.body.items[0].datapoints).toEqual(first?.body.items[0].datapoints);
    expectCdfError(await post(s, `${P}/timeseries/data/list`, { items: [{ id: 99_999 }] }), 400);
  });

  it('answers latest and aggregate', async () => {
    const s = await start({ items: 10 });
    const latest = await post(s, `${P}/timeseries/data/latest`, { items: [{ id: 1, before: 10_500 }] });
    expect(latest.body.items[0].datapoints).toEqual([{ timestamp: 10_000, value: expect.any(Number) }]);
    expect((await post(s, `${P}/timeseries/aggregate`, {})).body).toEqual({ items: [{ count: 10 }] });
  });
});

describe('auth and request ids', () => {
  it('401s without a bearer token, in CDF shape, still counted', async () => {
    const s = await start();
    expectCdfError(await get(s, `${P}/assets`, {}), 401, 'Unauthorized');
    expectCdfError(await get(s, `${P}/assets`, { authorization: 'Basic abc' }), 401, 'Unauthorized');
    expect(s.stats()).toMatchObject({ calls: 2, ok: 0 });
  });

  it('echoes the client x-request-id or generates one, on every answer', async () => {
    const s = await start();
    const mine = await get(s, `${P}/assets?limit=1`, { ...AUTH, 'x-request-id': 'abc-123' });
    expect(mine.headers.get('x-request-id')).toBe('abc-123');
    const generated = await get(s, `${P}/assets?limit=1`, {});
    expect(generated.headers.get('x-request-id')).toMatch(/.{8,}/);
    expect((await get(s, '/_sim/stats', {})).headers.get('x-request-id')).toMatch(/.{8,}/);
  });
});

describe('throttling', () => {
  it('rate-limits per project and family with the CDF 429 body and Retry-After', async () => {
    // Slow refill (one token per 500 ms) so a loaded machine cannot earn a token during the burst.
    const s = await start({ project: { rate: 2, burst: 5, concurrency: 100 }, retryAfterSeconds: 2 });
    const statuses: number[] = [];
    let throttled: Answer | undefined;
    for (let i = 0; i < 8; i++) {
      const a = await get(s, `${P}/assets?limit=1`);
      statuses.push(a.status);
      if (a.status === 429) throttled = a;
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    expect(throttled?.text).toBe(
      `{"error":{"code":429,"message":"Project exceeded maximum number='2' of requests per second. Please try again later."}}`,
    );
    expect(throttled?.headers.get('content-type')).toBe('application/json');
    expect(throttled?.headers.get('retry-after')).toBe('2');
    // Another family and another project have their own buckets; _sim is never throttled.
    expect((await get(s, `${P}/events?limit=1`)).status).toBe(200);
    expect((await get(s, '/api/v1/projects/other/assets?limit=1')).status).toBe(200);
    expect((await get(s, `${P}/_sim/slow?ms=0`)).status).toBe(200);
    await sleep(600);
    expect((await get(s, `${P}/assets?limit=1`)).status).toBe(200);
    expect(s.stats()).toMatchObject({ throttled: 3 });
  });

  it('limits per identity (JWT sub) and says Identity in the message', async () => {
    const s = await start({ identity: { rate: 1, burst: 2, concurrency: 10 } });
    const alice1 = { authorization: `Bearer ${jwt({ sub: 'alice' }, 'one')}` };
    const alice2 = { authorization: `Bearer ${jwt({ sub: 'alice' }, 'two')}` };
    const bob = { authorization: `Bearer ${jwt({ oid: 'bob' }, 'x')}` };
    expect((await get(s, `${P}/assets`, alice1)).status).toBe(200);
    expect((await get(s, `${P}/assets`, alice2)).status).toBe(200);
    const third = await get(s, `${P}/assets`, alice1);
    expectCdfError(third, 429, "Identity exceeded maximum number='1' of requests per second. Please try again later.");
    expect((await get(s, `${P}/assets`, bob)).status).toBe(200);
    expect(s.stats().byIdentity).toEqual({
      alice: { calls: 3, ok: 2, throttled: 1 },
      bob: { calls: 1, ok: 1, throttled: 0 },
    });
  });

  it('chargeThrottled keeps a hammered bucket empty; without it the bucket refills', async () => {
    const hammer = async (s: Simulator) => {
      for (let i = 0; i < 12; i++) await get(s, `${P}/assets?limit=1`);
      await sleep(200);
      return (await get(s, `${P}/assets?limit=1`)).status;
    };
    const limit = { rate: 10, burst: 3, concurrency: 100 };
    expect(await hammer(await start({ project: limit, chargeThrottled: true }))).toBe(429);
    await sim?.close();
    expect(await hammer(await start({ project: limit, chargeThrottled: false }))).toBe(200);
  });

  it('caps concurrency per project and family, holding the slot until the response is done', async () => {
    const s = await start({ latencyMs: 300, project: { rate: 1000, burst: 1000, concurrency: 2 } });
    const answers = await Promise.all(range(1, 5).map(() => get(s, `${P}/assets?limit=1`)));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([200, 200, 429, 429, 429]);
    const rejected = answers.find((a) => a.status === 429);
    expect(rejected?.body.error.message).toBe(
      "Project exceeded maximum number='2' of concurrent requests. Please try again later.",
    );
    expect(s.stats().maxInFlight).toBe(5);
    await vi.waitFor(() => expect(s.stats().inFlight).toBe(0));
    expect((await get(s, `${P}/assets?limit=1`)).status).toBe(200);
  });

  it('applies new limits at runtime, in process and over HTTP', async () => {
    const s = await start({ project: { rate: 1, burst: 1, concurrency: 10 } });
    expect((await get(s, `${P}/assets`)).status).toBe(200);
    expect((await get(s, `${P}/assets`)).status).toBe(429);
    s.update({ project: { rate: 1000, burst: 1000, concurrency: 10 } });
    await sleep(20);
    expect((await get(s, `${P}/assets`)).status).toBe(200);
    const set = await post(s, '/_sim/options', { project: { rate: 0, burst: 0 } }, {});
    expect(set.status).toBe(200);
    expect(s.options.project).toEqual({ rate: 0, burst: 0, concurrency: Number.POSITIVE_INFINITY });
    expect((await get(s, `${P}/assets`)).status).toBe(429);
    expectCdfError(await post(s, '/_sim/options', { projct: null }, {}), 400);
  });
});

describe('faults', () => {
  it('injects statuses with Retry-After and auto-retryable markers for the matching calls only', async () => {
    const s = await start();
    s.inject({ count: 2, match: '/assets', method: 'post', status: 503, retryAfter: '1', autoRetryable: true });
    expect((await get(s, `${P}/assets?limit=1`)).status).toBe(200);
    expect((await post(s, `${P}/events/list`, {})).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const a = await post(s, `${P}/assets/list`, {});
      expectCdfError(a, 503);
      expect(a.headers.get('retry-after')).toBe('1');
      expect(a.headers.get('cdf-is-auto-retryable')).toBe('true');
      expect(a.body.error.isAutoRetryable).toBe(true);
    }
    expect((await post(s, `${P}/assets/list`, {})).status).toBe(200);
    expect(s.stats()).toMatchObject({ faults: 2, throttled: 0, calls: 5, ok: 3 });
  });

  it('resets the connection, before or after the headers', async () => {
    const s = await start();
    s.inject({ count: 1, reset: true });
    await expect(fetch(`${s.url}${P}/assets`, { headers: AUTH })).rejects.toThrow();
    s.inject({ count: 1, reset: true, afterHeaders: true });
    const res = await fetch(`${s.url}${P}/assets`, { headers: AUTH });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    expect((await get(s, `${P}/assets?limit=1`)).status).toBe(200);
    expect(s.stats()).toMatchObject({ calls: 3, faults: 2, ok: 1 });
  });

  it('delays, and takes faults over HTTP', async () => {
    const s = await start();
    expect((await post(s, '/_sim/faults', { count: 1, delayMs: 250 }, {})).status).toBe(200);
    const t0 = performance.now();
    expect((await get(s, `${P}/assets?limit=1`)).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(240);
    expectCdfError(await post(s, '/_sim/faults', { count: 1 }, {}), 400);
    await post(s, '/_sim/faults', { count: 1, status: 500 }, {});
    expectCdfError(await get(s, `${P}/events`), 500);
  });
});

describe('stats', () => {
  it('counts calls, ok, throttled, paths and the last 200 requests; reset zeroes them', async () => {
    const s = await start({ project: { rate: 1, burst: 3, concurrency: 10 } });
    for (let i = 0; i < 5; i++) await get(s, `${P}/assets?limit=${i + 1}`);
    await get(s, `${P}/assets`, {});
    const stats = s.stats();
    expect(stats).toMatchObject({ calls: 6, ok: 3, throttled: 2, faults: 0, inFlight: 0, maxInFlight: 1, created: 0 });
    expect(stats.byPath).toEqual({ [`GET ${P}/assets`]: 6 });
    expect(stats.requests.map((r) => r.url)).toEqual([
      ...range(1, 5).map((i) => `${P}/assets?limit=${i}`),
      `${P}/assets`,
    ]);
    expect(stats.requests[0].headers.authorization).toBe('Bearer test-token');
    expect(stats.byIdentity['test-token']).toEqual({ calls: 5, ok: 3, throttled: 2 });
    const overHttp = await get(s, '/_sim/stats', {});
    expect(overHttp.body).toMatchObject({ calls: 6, ok: 3, throttled: 2 });

    expect((await post(s, '/_sim/reset', undefined, {})).status).toBe(200);
    expect(s.stats()).toMatchObject({ calls: 0, ok: 0, throttled: 0, byPath: {}, requests: [] });
    // Reset also refilled the bucket.
    expect((await get(s, `${P}/assets`)).status).toBe(200);
  });

  it('keeps only the last 200 requests, oldest first', async () => {
    const s = await start();
    for (let i = 1; i <= 205; i++) await get(s, `${P}/_sim/slow?ms=0&n=${i}`);
    const requests = s.stats().requests;
    expect(requests.length).toBe(200);
    expect(requests[0].url).toBe(`${P}/_sim/slow?ms=0&n=6`);
    expect(requests[199].url).toBe(`${P}/_sim/slow?ms=0&n=205`);
  });
});

describe('helpers', () => {
  it('streams exactly the requested number of bytes', async () => {
    const s = await start();
    const bytes = 5 * 1024 * 1024 + 7;
    const res = await fetch(`${s.url}${P}/_sim/blob?bytes=${bytes}`, { headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe(String(bytes));
    expect((await res.arrayBuffer()).byteLength).toBe(bytes);
    expect((await get(s, `${P}/_sim/blob?bytes=0`)).text).toBe('');
    expectCdfError(await get(s, `${P}/_sim/blob?bytes=-1`), 400);
  });

  it('echoes method, raw url, headers and a hash of the body as received', async () => {
    const s = await start();
    const payload = gzipSync('{"hello":"world"}');
    const a = await call(s, 'PUT', `${P}/_sim/echo/a/b?x=1&y=%20z`, payload, {
      ...AUTH,
      'content-encoding': 'gzip',
      'X-Custom': 'Yes',
    });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({
      method: 'PUT',
      url: `${P}/_sim/echo/a/b?x=1&y=%20z`,
      bodyBytes: payload.length,
      bodySha256: createHash('sha256').update(payload).digest('hex'),
      contentEncoding: 'gzip',
    });
    expect(a.body.headers['x-custom']).toBe('Yes');
  });

  it('answers slow calls after the delay, and adds latencyMs to every call', async () => {
    const s = await start();
    let t0 = performance.now();
    expect((await get(s, `${P}/_sim/slow?ms=200`)).body).toEqual({});
    expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
    s.update({ latencyMs: 150 });
    t0 = performance.now();
    expect((await get(s, `${P}/assets?limit=1`)).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
  });
});
