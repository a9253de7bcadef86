import { afterEach, describe, expect, it, vi } from 'vitest';
import { classify } from '../src/sim/classify.js';
import { type SimOptions, type Simulator, startSimulator } from '../src/sim/index.js';
import { parseTight, SimInputError } from '../src/sim/options.js';
import { BudgetPlan } from '../src/sim/plan.js';
import { type Held, isRejection, type Rejection, Throttle } from '../src/sim/throttle.js';

// The simulator enforcing CDF's documented limit tree: counts of 200s and 429s, never timings. Over HTTP
// the counts come from concurrency (calls held by the simulator's latency); rates are counted on the
// throttle itself at a fixed instant, where no token is earned between calls.

const P = '/api/v1/projects/tree';
// Held long enough for a whole burst to arrive while the first calls are still in flight, on a busy machine.
const LATENCY_MS = 500;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const jwt = (claims: object, signature: string) =>
  ['e30', Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');

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
  message: string | undefined;
}

async function call(s: Simulator, method: string, path: string, token = 'app-1', body?: unknown): Promise<Answer> {
  const res = await fetch(s.url + P + path, {
    method,
    headers: { ...bearer(token), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as { error?: { message: string } };
  return { status: res.status, message: json.error?.message };
}

const aggregate = (s: Simulator, token?: string) => call(s, 'POST', '/assets/aggregate', token, {});
const list = (s: Simulator, token?: string) => call(s, 'POST', '/assets/list', token, { limit: 1 });
const byids = (s: Simulator, token?: string) => call(s, 'POST', '/assets/byids', token, { items: [{ id: 1 }] });

/** `n` calls at once. */
const burst = (n: number, f: (i: number) => Promise<Answer>) => Promise.all(Array.from({ length: n }, (_, i) => f(i)));
const count = (answers: Answer[], status: number) => answers.filter((a) => a.status === status).length;

describe('classification (the simulator own rules, not the gateway route table)', () => {
  it.each([
    ['POST', 'assets', 'assets', 'crud'],
    ['GET', 'assets/123', 'assets', 'crud'],
    ['POST', 'assets/byids', 'assets', 'crud'],
    ['POST', 'assets/update', 'assets', 'crud'],
    ['POST', 'assets/delete', 'assets', 'crud'],
    ['GET', 'assets', 'assets', 'analytical'],
    ['POST', 'assets/list', 'assets', 'analytical'],
    ['POST', 'assets/search', 'assets', 'analytical'],
    ['POST', 'assets/aggregate', 'assets', 'aggregate'],
    ['POST', 'events/list', 'events', 'analytical'],
    ['POST', 'timeseries/aggregate', 'timeseries', 'aggregate'],
    ['POST', 'timeseries/data/list', 'datapoints', 'analytical'],
    ['POST', 'timeseries/data', 'datapoints', 'crud'],
    ['POST', 'streams/s1/records/filter', 'records', 'analytical'],
    ['POST', 'streams/s1/records', 'records', 'crud'],
    ['POST', 'models/instances/query', 'instances', 'analytical'],
    ['GET', 'raw/dbs/db1/tables/t1/rows', 'raw', undefined],
  ])('%s /%s is %s %s', (method, path, api, cls) => {
    expect(classify(method, path.split('/'))).toMatchObject({ api, cls });
  });
});

describe('the documented assets tree', () => {
  it('Aggregation: 5 concurrent per identity, 7 per project, with the number in the message', async () => {
    const s = await start({ latencyMs: LATENCY_MS });
    const one = await burst(8, () => aggregate(s, 'report'));
    expect(count(one, 200)).toBe(5);
    expect(one.find((a) => a.status === 429)?.message).toBe(
      "Identity exceeded maximum number='5' of concurrent requests. Please try again later.",
    );
    // Two identities, 5 each: the project's 7 binds.
    const two = await burst(10, (i) => aggregate(s, i % 2 === 0 ? 'report-a' : 'report-b'));
    expect(count(two, 200)).toBe(7);
    expect(two.find((a) => a.status === 429)?.message).toBe(
      "Project exceeded maximum number='7' of concurrent requests. Please try again later.",
    );
    expect(s.stats().throttledBy).toEqual({
      'assets/aggregate identity concurrency': 3,
      'assets/aggregate project concurrency': 3,
    });
  });

  it('rate 429s name no number; the class of the call shows in the stats', async () => {
    const s = await start({ tight: [{ match: '/assets/aggregate', rate: 1, burst: 1 }] });
    expect((await aggregate(s)).status).toBe(200);
    expect(await aggregate(s)).toEqual({
      status: 429,
      message: 'Project exceeded the request rate limit. Please try again later.',
    });
    expect((await list(s)).status).toBe(200);
    expect((await byids(s)).status).toBe(200);
    expect(s.stats().byClass).toEqual({
      'assets/aggregate': { calls: 2, ok: 1, throttled: 1 },
      'assets/analytical': { calls: 1, ok: 1, throttled: 0 },
      'assets/crud': { calls: 1, ok: 1, throttled: 0 },
    });
  });

  it('per identity means per principal: JWTs with the same oid share, raw tokens do not', async () => {
    const s = await start({ latencyMs: LATENCY_MS });
    const sameOid = await burst(6, (i) => aggregate(s, jwt({ oid: 'report', sub: `client-${i}` }, `sig${i}`)));
    expect(count(sameOid, 200)).toBe(5);
    // The first burst's slots given back (the simulator holds one until its answer has closed).
    await vi.waitFor(() => expect(s.stats().inFlight).toBe(0), { timeout: 10_000 });
    const rawTokens = await burst(6, (i) => aggregate(s, i < 3 ? 'token-a' : 'token-b'));
    expect(count(rawTokens, 200)).toBe(6);
  });

  it('other documented APIs: events CRUD, time series aggregate, raw concurrency', async () => {
    const s = await start({ latencyMs: LATENCY_MS });
    const ts = await burst(6, () => call(s, 'POST', '/timeseries/aggregate', 'app-1', {}));
    expect(count(ts, 429)).toBe(2);
    expect(ts.find((a) => a.status === 429)?.message).toBe(
      "Identity exceeded maximum number='4' of concurrent requests. Please try again later.",
    );
    const events = await burst(35, () => call(s, 'POST', '/events/byids', 'app-2', { items: [{ id: 1 }] }));
    expect(count(events, 429)).toBe(5);
    expect(s.stats().throttledBy).toMatchObject({ 'events/crud identity concurrency': 5 });
  });
});

describe('tight endpoints, the flat limit and turning the tree off', () => {
  it('an undocumented tight endpoint: 4 concurrent, 10/s, messages naming only the concurrency', async () => {
    const s = await start({ latencyMs: LATENCY_MS, tight: [{ match: '/assets/byids', rate: 10, concurrency: 4 }] });
    const held = await burst(6, () => byids(s));
    expect(count(held, 200)).toBe(4);
    expect(held.find((a) => a.status === 429)?.message).toBe(
      "Project exceeded maximum number='4' of concurrent requests. Please try again later.",
    );
    // The rest of the API is not touched by the endpoint's budget.
    const creates = await burst(6, () => call(s, 'POST', '/assets', 'app-1', { items: [{ name: 'x' }] }));
    expect(count(creates, 200)).toBe(6);
    expect(s.stats().throttledBy).toEqual({ 'tight /assets/byids project concurrency': 2 });
  });

  it('the flat limit is an extra outer level; tree: false leaves only it', async () => {
    const flat = { rate: 1000, burst: 1000, concurrency: 3 };
    const s = await start({ latencyMs: LATENCY_MS, project: flat });
    const both = await burst(8, () => aggregate(s));
    expect(count(both, 200)).toBe(3);
    expect(s.stats().throttledBy).toEqual({ 'flat/assets project concurrency': 5 });
    s.update({ project: null, tree: false });
    expect(count(await burst(40, () => aggregate(s)), 200)).toBe(40);
    s.update({ tree: true });
    expect(count(await burst(8, () => aggregate(s, 'app-9')), 200)).toBe(5);
  });

  it('--tight parses PATH=RATE/CONCURRENCY and rejects anything else', () => {
    expect(parseTight('/assets/byids=10/4')).toEqual({ match: '/assets/byids', rate: 10, concurrency: 4 });
    expect(parseTight('/events/**=/2')).toEqual({ match: '/events/**', concurrency: 2 });
    for (const bad of ['/assets/byids', 'assets=1/1', '/a=x/1', '/a=1/2/3']) {
      expect(() => parseTight(bad)).toThrow(SimInputError);
    }
  });

  it('bad tight options over HTTP get a 400 naming the field', async () => {
    const s = await start();
    const res = await fetch(`${s.url}/_sim/options`, {
      method: 'POST',
      body: JSON.stringify({ tight: [{ rate: 1 }] }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/tight\[0\]\.match/);
  });
});

describe('rates, on the throttle with an injected clock', () => {
  const plan = (o: Partial<SimOptions> = {}) =>
    new BudgetPlan({ project: null, identity: null, tree: true, tight: [], ...o });
  /** `n` admissions of `method path` for `identity` at instant `now`; slots are given back at once. */
  function admit(t: Throttle, p: BudgetPlan, n: number, path: string, identity: string, now = 0, method = 'POST') {
    const out = { ok: 0, refused: [] as Rejection[] };
    for (let i = 0; i < n; i++) {
      const r = t.admit(p.budgetsOf(method, path.split('/')), 'proj', identity, false, now);
      if (isRejection(r)) out.refused.push(r);
      else {
        out.ok++;
        t.release(r as Held);
      }
    }
    return out;
  }

  it('Aggregation: 12/s per identity, 15/s per project', () => {
    const t = new Throttle();
    const p = plan();
    const a = admit(t, p, 20, 'assets/aggregate', 'report');
    expect(a.ok).toBe(12);
    expect(a.refused[0]).toEqual({
      message: 'Identity exceeded the request rate limit. Please try again later.',
      by: 'assets/aggregate identity rate',
    });
    const b = admit(t, p, 20, 'assets/aggregate', 'report-2');
    expect(b.ok).toBe(3);
    expect(b.refused[0].by).toBe('assets/aggregate project rate');
    // One second later both buckets are full again.
    expect(admit(t, p, 20, 'assets/aggregate', 'report', 1000).ok).toBe(12);
  });

  it('aggregate calls spend Analytical; CRUD 130/s per identity inside the project 170/s and API 200/s', () => {
    const t = new Throttle();
    const p = plan();
    expect(admit(t, p, 12, 'assets/aggregate', 'app').ok).toBe(12);
    const lists = admit(t, p, 20, 'assets/list', 'app');
    expect(lists.ok).toBe(11);
    expect(lists.refused[0].by).toBe('assets/analytical identity rate');
    const ui = admit(t, p, 200, 'assets/byids', 'ui');
    expect(ui.ok).toBe(130);
    expect(ui.refused[0].by).toBe('assets/crud identity rate');
    const sync = admit(t, p, 100, 'assets', 'sync');
    expect(sync.ok).toBe(40);
    expect(sync.refused[0].by).toBe('assets/crud project rate');
    // The API level: 23 Analytical + 170 CRUD spent of 200 leaves 7 for an operation of no class.
    const third = admit(t, p, 20, 'assets/unclassified', 'third');
    expect(third.ok).toBe(7);
    expect(third.refused[0].by).toBe('assets project rate');
  });

  it('a tight endpoint: 10/s inside its API, checked first; the rest of the API keeps its budget', () => {
    const t = new Throttle();
    const p = plan({ tight: [{ match: '/assets/byids', rate: 10, concurrency: 4 }] });
    const tight = admit(t, p, 30, 'assets/byids', 'ui');
    expect(tight.ok).toBe(10);
    expect(tight.refused.every((r) => r.by === 'tight /assets/byids project rate')).toBe(true);
    expect(admit(t, p, 30, 'assets/update', 'ui').ok).toBe(30);
  });

  it('charging throttled calls takes a token from each budget checked up to the one that refused', () => {
    const t = new Throttle();
    const p = plan();
    const budgets = p.budgetsOf('POST', ['assets', 'aggregate']);
    expect(admit(t, p, 12, 'assets/aggregate', 'a').ok).toBe(12);
    // Refused by the identity's Aggregation budget, the first checked: Analytical is not charged ...
    for (let i = 0; i < 10; i++) expect(isRejection(t.admit(budgets, 'proj', 'a', true, 0))).toBe(true);
    expect(admit(t, p, 20, 'assets/list', 'a').ok).toBe(23 - 12);
    // ... while a call Analytical refuses is charged there (both scopes), and to Aggregation, which it passed.
    for (const charge of [true, false]) {
      const t2 = new Throttle();
      expect(admit(t2, p, 23, 'assets/list', 'b').ok).toBe(23);
      for (let i = 0; i < 5; i++) expect(isRejection(t2.admit(budgets, 'proj', 'b', charge, 0))).toBe(true);
      // The project's Analytical had 30 - 23 = 7 left, less the 5 charged.
      expect(admit(t2, p, 10, 'assets/aggregate', 'c').ok).toBe(charge ? 2 : 7);
    }
  });
});
