import { afterEach, describe, expect, it } from 'vitest';
import type { SimBudget } from '../src/sim/budgets.js';
import { type SimOptions, type Simulator, startSimulator } from '../src/sim/index.js';
import { BudgetPlan } from '../src/sim/plan.js';
import { type Held, isRejection, Throttle } from '../src/sim/throttle.js';
import type { SimLimiter } from '../src/sim/types.js';

// The kinds of CDF stand-in the learning benchmark measures the gateway against: which 429s name their
// figure, in which words and bodies, how a budget counts its rate, and the documented tree scaled. Counts of
// 200s and 429s over HTTP (concurrency held by the simulator's latency, rates far from refilling during a
// test), and rates on the throttle with an injected clock.

const P = '/api/v1/projects/shapes';
// Held long enough for a whole burst to arrive while the first calls are still in flight, on a busy machine.
const LATENCY_MS = 500;
// One token, and the next one 100 s away: a second call is refused however slow the machine is.
const ONE_CALL = { rate: 0.01, burst: 1 };

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(options: Partial<SimOptions>): Promise<Simulator> {
  sim = await startSimulator(options);
  return sim;
}

interface Answer {
  status: number;
  type: string | null;
  text: string;
}

async function call(s: Simulator, method: string, path: string, body?: unknown, token = 'app-1'): Promise<Answer> {
  const res = await fetch(s.url + P + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

const list = (s: Simulator, token?: string) => call(s, 'POST', '/assets/list', { limit: 1 }, token);
const messageOf = (a: Answer): string => (JSON.parse(a.text) as { error: { message: string } }).error.message;

/** `n` calls at once; the 429s among them. */
async function refusals(n: number, f: () => Promise<Answer>): Promise<Answer[]> {
  const answers = await Promise.all(Array.from({ length: n }, f));
  return answers.filter((a) => a.status === 429);
}

/** The second of two calls to a budget of one call: its 429. */
async function rate429(f: () => Promise<Answer>): Promise<Answer> {
  expect((await f()).status).toBe(200);
  const second = await f();
  expect(second.status).toBe(429);
  return second;
}

/** Admissions of `n` calls at instant `now`, each slot given back at once; refusals charged when `charge`. */
function admitted(t: Throttle, budgets: readonly SimBudget[], n: number, now: number, charge = false): number {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const r = t.admit(budgets, 'proj', 'app', charge, now);
    if (!isRejection(r)) {
      ok++;
      t.release(r as Held);
    }
  }
  return ok;
}

describe('which 429s name their figure', () => {
  it('by default: the flat limit names both, the tree and tight budgets only their concurrency', async () => {
    const s = await start({
      latencyMs: LATENCY_MS,
      tree: false,
      tight: [{ match: '/assets/list', ...ONE_CALL }],
      project: { rate: 1000, burst: 1000, concurrency: 2 },
    });
    expect(messageOf(await rate429(() => list(s)))).toBe(
      'Project exceeded the request rate limit. Please try again later.',
    );
    const held = await refusals(4, () => call(s, 'GET', '/events?limit=1'));
    expect(held.map(messageOf)).toEqual([
      "Project exceeded maximum number='2' of concurrent requests. Please try again later.",
      "Project exceeded maximum number='2' of concurrent requests. Please try again later.",
    ]);
  });

  it('rate always and concurrency never, independently', async () => {
    const s = await start({
      latencyMs: LATENCY_MS,
      figures: { rate: 'always', concurrency: 'never' },
      tight: [
        { match: '/assets/list', ...ONE_CALL },
        { match: '/events/**', concurrency: 1 },
      ],
    });
    expect(messageOf(await rate429(() => list(s)))).toBe(
      "Project exceeded maximum number='0.01' of requests per second. Please try again later.",
    );
    const held = await refusals(2, () => call(s, 'GET', '/events?limit=1'));
    expect(held.map(messageOf)).toEqual(['Project exceeded the concurrent requests limit. Please try again later.']);
  });

  it('rate never silences the flat limit; a partial figures keeps the other default', async () => {
    const s = await start({ latencyMs: LATENCY_MS, tree: false, project: { ...ONE_CALL, concurrency: 1 } });
    // Over HTTP, as a benchmark sets it: the missing half keeps its default.
    await fetch(`${s.url}/_sim/options`, { method: 'POST', body: JSON.stringify({ figures: { rate: 'never' } }) });
    expect(s.options.figures).toEqual({ rate: 'never', concurrency: 'always' });
    expect(messageOf(await rate429(() => list(s)))).toBe(
      'Project exceeded the request rate limit. Please try again later.',
    );
    s.update({ project: { rate: 1000, burst: 1000, concurrency: 1 } });
    // Another family: its own flat bucket, full.
    const held = await refusals(2, () => call(s, 'GET', '/events?limit=1'));
    expect(held.map(messageOf)).toEqual([
      "Project exceeded maximum number='1' of concurrent requests. Please try again later.",
    ]);
  });

  it('statesFigures: false is never for both; a tight budget of its own choice still names its figure', async () => {
    const s = await start({
      latencyMs: LATENCY_MS,
      statesFigures: false,
      tight: [
        { match: '/sequences/**', rate: 0.01, burst: 1, concurrency: 1, figures: { rate: 'always' } },
        { match: '/relationships/**', concurrency: 1 },
      ],
    });
    const seq = () => call(s, 'POST', '/sequences/list', { limit: 1 });
    expect(messageOf(await rate429(seq))).toBe(
      "Project exceeded maximum number='0.01' of requests per second. Please try again later.",
    );
    const held = await refusals(2, () => call(s, 'POST', '/relationships/list', { limit: 1 }));
    expect(held.map(messageOf)).toEqual(['Project exceeded the concurrent requests limit. Please try again later.']);
  });

  it('a bad figures option is a 400 naming it', async () => {
    const s = await start({});
    for (const [body, field] of [
      [{ figures: { rate: 'sometimes' } }, 'figures.rate'],
      [{ figures: { concurrency: 'budget' } }, 'figures.concurrency'],
      [{ figures: { size: 'never' } }, "unknown key 'size'"],
      [{ tight: [{ match: '/a', figures: { rate: 'budget' } }] }, 'tight[0].figures.rate'],
    ] as const) {
      const res = await fetch(`${s.url}/_sim/options`, { method: 'POST', body: JSON.stringify(body) });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain(field);
    }
  });
});

describe('other wordings and bodies of 429s', () => {
  const options: Partial<SimOptions> = {
    latencyMs: LATENCY_MS,
    tree: false,
    figures: { rate: 'always', concurrency: 'always' },
    project: { rate: 0.01, burst: 1, concurrency: 1000 },
    identity: { rate: 1000, burst: 1000, concurrency: 1 },
  };

  it('the alternate wording names rate and concurrency figures in other words', async () => {
    const s = await start({ ...options, wording: 'alternate' });
    const held = await refusals(2, () => list(s));
    expect(held.map(messageOf)).toEqual(['Too many concurrent requests for this identity (max 1)']);
    const second = await list(s, 'app-2');
    expect(messageOf(second)).toBe('Rate limit of 0.01 requests/s exceeded for project');
    s.update({
      figures: { rate: 'never', concurrency: 'never' },
      project: { rate: 1000, burst: 1000, concurrency: 1 },
    });
    const unstated = await refusals(2, () => call(s, 'GET', '/events?limit=1', undefined, 'app-3'));
    expect(unstated.map(messageOf)).toEqual(['Too many concurrent requests']);
  });

  it('plain text bodies, not JSON', async () => {
    const s = await start({ ...options, throttleBody: 'text', wording: 'alternate', retryAfterSeconds: 3 });
    expect((await list(s)).status).toBe(200);
    const res = await fetch(`${s.url}${P}/assets/list`, {
      method: 'POST',
      headers: { authorization: 'Bearer app-2' },
      body: '{}',
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('retry-after')).toBe('3');
    expect(await res.text()).toBe('Too many requests: Rate limit of 0.01 requests/s exceeded for project');
  });

  it('JSON bodies over 64 KiB with the message past the padding; other answers keep their shape', async () => {
    const s = await start({ ...options, throttleBody: 'large-json' });
    const second = await rate429(() => list(s));
    expect(second.type).toBe('application/json');
    expect(second.text.length).toBeGreaterThan(64 * 1024);
    expect(second.text.indexOf('"message"')).toBeGreaterThan(64 * 1024);
    const body = JSON.parse(second.text) as { error: { code: number; message: string; padding: string } };
    expect(body.error.code).toBe(429);
    expect(body.error.message).toBe(
      "Project exceeded maximum number='0.01' of requests per second. Please try again later.",
    );
    const missing = await call(s, 'POST', '/events/byids', { items: [{ id: 999_999 }] });
    expect(missing.status).toBe(400);
    expect(missing.text.length).toBeLessThan(1000);
  });

  it('bad wording or body options are a 400 naming them', async () => {
    const s = await start({});
    for (const [body, field] of [
      [{ wording: 'polite' }, 'wording'],
      [{ throttleBody: 'xml' }, 'throttleBody'],
      [{ limiter: 'leaky' }, 'limiter'],
      [{ treeScale: 0 }, 'treeScale'],
    ] as const) {
      const res = await fetch(`${s.url}/_sim/options`, { method: 'POST', body: JSON.stringify(body) });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain(field);
    }
  });
});

describe('limiter shapes, on the throttle with an injected clock', () => {
  const plan = new BudgetPlan({
    project: null,
    identity: null,
    tree: false,
    tight: [{ match: '/timeseries/data', rate: 10, concurrency: 1000 }],
  });
  const budgets = plan.budgetsOf('POST', ['timeseries', 'data']);
  const admit = (t: Throttle, n: number, now: number, charge = false) => admitted(t, budgets, n, now, charge);

  it('token bucket: a second of rate, then the refill', () => {
    const t = new Throttle('token-bucket');
    expect(admit(t, 20, 900)).toBe(10);
    expect(admit(t, 20, 1000)).toBe(1);
    expect(admit(t, 20, 1500)).toBe(5);
  });

  it('fixed window: rate calls per clock second, all of them again at the next whole second', () => {
    const t = new Throttle('fixed-window');
    expect(admit(t, 20, 900)).toBe(10);
    expect(admit(t, 20, 999)).toBe(0);
    // Twice the rate within 100 ms across the boundary: the shape's known edge.
    expect(admit(t, 20, 1000)).toBe(10);
    expect(admit(t, 20, 1999)).toBe(0);
    expect(admit(t, 5, 2000)).toBe(5);
    expect(admit(t, 20, 2500)).toBe(5);
  });

  it('sliding window: at most rate calls in any second', () => {
    const t = new Throttle('sliding-window');
    expect(admit(t, 5, 0)).toBe(5);
    expect(admit(t, 20, 500)).toBe(5);
    expect(admit(t, 20, 999)).toBe(0);
    // The five of t=0 have left the window, the five of t=500 not yet.
    expect(admit(t, 20, 1000)).toBe(5);
    expect(admit(t, 20, 1499)).toBe(0);
    expect(admit(t, 20, 1500)).toBe(5);
  });

  it.each([
    ['token-bucket', 5, 0, 5],
    ['fixed-window', 0, 10, 10],
    ['sliding-window', 0, 0, 10],
  ] as const)('chargeThrottled under %s', (limiter, halfway, charged, uncharged) => {
    for (const charge of [true, false]) {
      const t = new Throttle(limiter as SimLimiter);
      expect(admit(t, 10, 0)).toBe(10);
      // Refusals at t=500: the token bucket has earned 5, the windows are full; charged, they keep the token
      // bucket in debt and the sliding window full (it lets them go at t=1500); the fixed window starts afresh.
      expect(admit(t, 20, 500, charge)).toBe(halfway);
      expect(admit(t, 20, 1000)).toBe(charge ? charged : uncharged);
    }
  });

  it('another limiter over HTTP starts every budget afresh', async () => {
    const s = await start({ tree: false, project: { ...ONE_CALL, concurrency: 100 } });
    expect((await rate429(() => list(s))).status).toBe(429);
    s.update({ limiter: 'sliding-window' });
    expect(s.options.limiter).toBe('sliding-window');
    // The window allows rate (1/60) calls: one call, then none.
    expect((await rate429(() => list(s))).status).toBe(429);
  });
});

describe('the documented tree scaled', () => {
  const scaled = (scale: number, path: string, n: number) =>
    admitted(
      new Throttle(),
      new BudgetPlan({ project: null, identity: null, tree: true, tight: [], treeScale: scale }).budgetsOf(
        'POST',
        path.split('/'),
      ),
      n,
      0,
    );

  it('2x and 0.5x the figures, per identity and per project, by the same budget names', () => {
    expect(scaled(1, 'assets/aggregate', 100)).toBe(12);
    expect(scaled(2, 'assets/aggregate', 100)).toBe(24);
    expect(scaled(0.5, 'assets/aggregate', 100)).toBe(6);
    expect(scaled(2, 'assets/byids', 1000)).toBe(260);
    expect(scaled(0.5, 'assets/byids', 1000)).toBe(65);
  });

  it('concurrencies are rounded, over HTTP', async () => {
    const s = await start({ latencyMs: LATENCY_MS, treeScale: 0.5 });
    const held = await refusals(8, () => call(s, 'POST', '/assets/aggregate', {}));
    // Aggregation per identity: 5 x 0.5 = 2.5, rounded to 3.
    expect(held).toHaveLength(5);
    expect(messageOf(held[0])).toBe(
      "Identity exceeded maximum number='3' of concurrent requests. Please try again later.",
    );
    expect(s.stats().throttledBy).toEqual({ 'assets/aggregate identity concurrency': 5 });
  });
});
