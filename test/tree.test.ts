import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { buildGateway } from '../src/app.js';
import { lookupRoute } from '../src/cdf/index.js';
import { ConfigError, type LimitConfig, loadConfig } from '../src/config/index.js';
import {
  type Bucket,
  type BucketPath,
  type LimitChange,
  MAX_BUCKETS,
  MemoryStore,
  QuotaTree,
  quotaLimit,
  Scheduler,
} from '../src/quota/index.js';
import { startSimulator } from '../src/sim/index.js';
import { startStack } from './helpers.js';

/**
 * The quota tree and its learning, driven by an injected clock: every call gets `now` from the test, so
 * the assertions are on counts and figures, never on how long anything took.
 */

const defaults = () => loadConfig({ env: {} });

/** The injected clock: milliseconds that move only when the test says so. */
class Clock {
  constructor(public t: number) {}
  tick(ms: number): number {
    this.t += ms;
    return this.t;
  }
}
const P = 'proj';

interface Rig {
  tree: QuotaTree;
  scheduler: Scheduler;
  store: MemoryStore;
  changes: LimitChange[];
  learned: LimitConfig[];
  /** The buckets of a call, as the pipeline resolves them. */
  buckets(method: string, rest: string, identity?: string): Bucket[];
  /** Admits a call at `now` (a token and a slot in each bucket) or says which bucket refused. */
  admit(buckets: readonly Bucket[], now: number): boolean;
  close(): void;
}

function rig(limits: readonly LimitConfig[] = defaults().limits, adaptive = {}): Rig {
  const config = defaults();
  const store = new MemoryStore();
  const scheduler = new Scheduler(store, config.queue);
  const changes: LimitChange[] = [];
  const learned: LimitConfig[] = [];
  const tree = new QuotaTree(
    limits,
    scheduler,
    { ...config.adaptive, ...adaptive },
    { limitChanged: (c) => changes.push(c), learned: (l) => learned.push(l) },
  );
  return {
    tree,
    scheduler,
    store,
    changes,
    learned,
    buckets: (method, rest, identity = 'alice') =>
      tree.bucketsFor(method, rest, lookupRoute(method, rest), P, () => identity),
    admit: (buckets, now) => store.take(buckets, now) === null,
    close: () => scheduler.close(),
  };
}

const names = (buckets: readonly Bucket[]) => buckets.map((b) => b.limit.name).sort();
const byName = (buckets: readonly Bucket[], name: string) => {
  const b = buckets.find((x) => x.limit.name === name);
  if (!b) throw new Error(`no bucket ${name} in ${names(buckets).join(', ')}`);
  return b;
};
const silent = 'Project exceeded the request rate limit.';
const rateMsg = (n: number, who = 'Project') =>
  `${who} exceeded maximum number='${n}' of requests per second. Please try again later.`;
const concurrencyMsg = (n: number, who = 'Project') =>
  `${who} exceeded maximum number='${n}' of concurrent requests. Please try again later.`;

describe('limits config: a mapping over the default table', () => {
  it('holds the documented assets tree, per project and per identity, burst defaulting to the rate', () => {
    const limits = defaults().limits;
    const get = (name: string) => limits.find((l) => l.name === name);
    expect(get('assets')).toMatchObject({ rate: 200, burst: 200, concurrency: 40, per: 'project', classes: null });
    expect(get('assets-identity')).toMatchObject({ rate: 150, concurrency: 30, per: 'identity' });
    expect(get('assets-crud')).toMatchObject({ rate: 170, concurrency: 30, classes: ['crud'] });
    expect(get('assets-analytical')).toMatchObject({ rate: 30, concurrency: 15, classes: ['analytical'] });
    expect(get('assets-aggregate')).toMatchObject({ rate: 15, concurrency: 7, classes: ['aggregate'] });
    expect(get('assets-aggregate-identity')).toMatchObject({ rate: 12, concurrency: 5, per: 'identity' });
    expect(defaults().warnings).toEqual([]);
  });

  it('changes one figure, adds a bucket, removes one with null, keeps the rest', () => {
    const base = defaults().limits;
    const config = loadConfig({
      env: {},
      overrides: {
        limits: {
          assets: { rate: 100 },
          'assets-identity': null,
          mine: { match: '/files/**', classes: ['analytical'], rate: 5, concurrency: 2 },
        },
      },
    });
    const get = (name: string) => config.limits.find((l) => l.name === name);
    expect(get('assets')).toMatchObject({ rate: 100, concurrency: 40, match: ['/assets', '/assets/**'] });
    expect(get('assets-identity')).toBeUndefined();
    expect(get('mine')).toMatchObject({ per: 'project', burst: 5, classes: ['analytical'], methods: null });
    expect(config.limits.length).toBe(base.length);
    expect(config.warnings).toEqual([]);
  });

  it('keeps the list form (it replaces the table) and warns naming the APIs left without a bucket', () => {
    const config = loadConfig({
      env: {},
      overrides: { limits: [{ name: 'a', match: ['/assets', '/assets/**'], rate: 10, concurrency: 2 }] },
    });
    expect(config.limits.map((l) => l.name)).toEqual(['a']);
    expect(config.limits[0]).toMatchObject({ per: 'project', burst: 10 });
    expect(config.warnings).toHaveLength(1);
    expect(config.warnings?.[0]).toMatch(/left without any bucket: .*events/);
    expect(config.warnings?.[0]).toContain('timeseries');
    expect(config.warnings?.[0]).not.toMatch(/[:,] assets[,( ]/);
    // A list that covers everything warns about nothing.
    const all = loadConfig({ env: {}, overrides: { limits: [{ name: 'a', match: '/**', rate: 10, concurrency: 2 }] } });
    expect(all.warnings).toEqual([]);
  });

  it('reports every bad bucket field at once, by key', () => {
    let error: ConfigError | null = null;
    try {
      loadConfig({
        env: {},
        overrides: { limits: { assets: { classes: ['reads'], rate: -1 }, 'bad name!': { rate: 1 } } },
      });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = error?.issues.join('\n') ?? '';
    expect(text).toContain('limits.assets.classes[0]');
    expect(text).toContain('limits.assets.rate');
    expect(text).toContain('limits.bad name!');
  });
});

describe('quota tree: every level on the path', () => {
  it('takes from the API, class and aggregation levels, per project and per identity', () => {
    const r = rig();
    expect(names(r.buckets('POST', '/assets/list'))).toEqual([
      'assets',
      'assets-analytical',
      'assets-analytical-identity',
      'assets-identity',
    ]);
    expect(names(r.buckets('POST', '/assets/aggregate'))).toEqual([
      'assets',
      'assets-aggregate',
      'assets-aggregate-identity',
      'assets-analytical',
      'assets-analytical-identity',
      'assets-identity',
    ]);
    expect(names(r.buckets('POST', '/assets/byids'))).toEqual([
      'assets',
      'assets-crud',
      'assets-crud-identity',
      'assets-identity',
    ]);
    // Each identity has its own identity-level buckets; the project levels are shared.
    const a = r.buckets('POST', '/assets/list', 'alice');
    const b = r.buckets('POST', '/assets/list', 'bob');
    expect(byName(a, 'assets')).toBe(byName(b, 'assets'));
    expect(byName(a, 'assets-identity')).not.toBe(byName(b, 'assets-identity'));
    r.close();
  });

  it('admits an aggregate only while every level has a token: 15 at once per project, not the API 200', () => {
    const r = rig(defaults().limits.filter((l) => l.per === 'project'));
    const now = performance.now();
    let aggregates = 0;
    for (let i = 0; i < 100; i++) {
      const bs = r.buckets('POST', '/assets/aggregate');
      if (r.admit(bs, now)) {
        aggregates++;
        r.store.release(bs);
      }
    }
    // The aggregate bucket's burst (15) less the 50 ms jitter reserve.
    expect(aggregates).toBe(14);
    let lists = 0;
    for (let i = 0; i < 100; i++) {
      const bs = r.buckets('POST', '/assets/list');
      if (r.admit(bs, now)) {
        lists++;
        r.store.release(bs);
      }
    }
    // Analytical (30) already gave 14 tokens to the aggregates: aggregation is inside analytical.
    expect(lists).toBe(28 - 14);
    let crud = 0;
    for (let i = 0; i < 300; i++) {
      const bs = r.buckets('POST', '/assets/byids');
      if (r.admit(bs, now)) {
        crud++;
        r.store.release(bs);
      }
    }
    // CRUD's own 170 (less reserve), not cut by what analytical spent; the API level (200) had 28 taken.
    expect(crud).toBe(161);
    r.close();
  });
});

describe('quota tree: a 429 is charged to the narrowest budget that explains it', () => {
  it('charges the bucket whose figure CDF states, leaving its parents alone', () => {
    const r = rig();
    const bs = r.buckets('POST', '/assets/aggregate');
    const t = performance.now();
    r.admit(bs, t);
    r.tree.throttled(bs, 'POST', lookupRoute('POST', '/assets/aggregate'), rateMsg(15), t + 10, t);
    expect(byName(bs, 'assets-aggregate').rate).toBeCloseTo(14.7);
    for (const other of ['assets', 'assets-identity', 'assets-analytical', 'assets-analytical-identity'])
      expect(byName(bs, other).rate).toBe(byName(bs, other).limit.rate);
    // An identity-level message charges the identity level.
    r.tree.throttled(bs, 'POST', lookupRoute('POST', '/assets/aggregate'), concurrencyMsg(5, 'Identity'), t + 20, t);
    expect(byName(bs, 'assets-aggregate-identity').concurrency).toBeLessThanOrEqual(5);
    expect(byName(bs, 'assets-aggregate').concurrency).toBe(7);
    expect(byName(bs, 'assets-identity').concurrency).toBe(30);
    expect(r.learned).toHaveLength(0);
    r.close();
  });

  it('charges the narrowest level that was near its limit when CDF names no figure', () => {
    const r = rig(defaults().limits.filter((l) => l.per === 'project'));
    const t = performance.now();
    // Analytical drained by listing; the API level far from its limit.
    let bs = r.buckets('POST', '/assets/list');
    while (r.admit(bs, t)) r.store.release(bs);
    bs = r.buckets('POST', '/assets/list');
    r.tree.throttled(bs, 'POST', lookupRoute('POST', '/assets/list'), 'Too many requests', t, t);
    expect(byName(bs, 'assets-analytical').tokens).toBeLessThan(0);
    expect(byName(bs, 'assets').tokens).toBeGreaterThan(100);
    expect(r.learned).toHaveLength(0);
    r.close();
  });

  it('learns a bucket for an operation tighter than its API when CDF states the figure', () => {
    const r = rig();
    const route = lookupRoute('POST', '/sequences/data/list');
    const bs = r.buckets('POST', '/sequences/data/list');
    const t = performance.now();
    r.admit(bs, t);
    r.tree.throttled(bs, 'POST', route, rateMsg(10), t + 5, t);
    expect(r.learned.map((l) => l.name)).toEqual(['learned.post.sequences.data.list']);
    expect(byName(bs, 'sequences').rate).toBe(50);
    const next = r.buckets('POST', '/sequences/data/list');
    const leaf = byName(next, 'learned.post.sequences.data.list');
    expect(leaf.rate).toBeCloseTo(9.8);
    // Its ceiling: its parent's (a guessed figure may be raised to maxRate).
    expect(leaf.limit.maxRate).toBe(byName(bs, 'sequences').limit.maxRate);
    // Other operations of the API do not take from it.
    expect(names(r.buckets('POST', '/sequences/list'))).toEqual(['sequences']);
    expect(r.tree.learned()).toEqual([
      expect.objectContaining({ key: 'POST /sequences/data/list', level: 'operation', stated: true }),
    ]);
    r.close();
  });

  it('follows a figure CDF stated for a learned budget: no cut for a storm, none for a silent 429, no probe past it', () => {
    const r = rig();
    const get = lookupRoute('GET', '/assets/123');
    const byids = lookupRoute('POST', '/assets/byids');
    const t = performance.now();
    const early = r.buckets('GET', '/assets/123');
    r.tree.throttled(early, 'GET', get, rateMsg(50), t + 1, t);
    // Another operation of the API meets the same figure: one budget over both (their class), learned once.
    const lookups = r.buckets('POST', '/assets/byids');
    for (let i = 0; i < 8; i++) r.tree.throttled(lookups, 'POST', byids, rateMsg(50), t + 2 + i, t);
    const shared = byName(r.buckets('POST', '/assets/byids'), 'learned.assets.crud');
    // The storm's 429s (calls sent before it was learned) leave it at the figure: CDF is in debt, not lower.
    expect(shared.rate).toBeCloseTo(49);
    // It starts in debt, as CDF's charged bucket is after a storm.
    expect(shared.tokens).toBeLessThan(0);
    // A 429 naming no figure (another budget's: CDF names this one's) does not cut it.
    const later = r.buckets('GET', '/assets/123');
    expect(later).toContain(shared);
    for (let i = 0; i < 4; i++)
      r.tree.throttled(later, 'GET', get, 'Project exceeded the request rate limit.', t + 600 + i * 300, t + 500);
    expect(shared.rate).toBeCloseTo(49);
    // Thirty seconds of answers: never probed past what CDF stated.
    for (let i = 0; i < 120; i++) r.tree.passed(later, get, t + 2000 + i * 250);
    expect(shared.rate).toBeLessThanOrEqual(49 + 1e-9);
    expect(shared.rate).toBeGreaterThan(45);
    r.close();
  });

  it("gives a storm's retries and queued calls the bucket their 429s taught, whenever their buckets were chosen", async () => {
    const r = rig();
    const route = lookupRoute('GET', '/assets/123');
    const t = performance.now();
    const app = { name: 'ui', identity: 'alice', weight: 1, priority: 0 } as never;
    // Chosen before anything was learned: one call in flight, one waiting behind an empty bucket.
    const pathOf = (): BucketPath => ({
      method: 'GET',
      route,
      target: { project: P, rest: '/assets/123' },
      identity: 'alice',
      bucketsChosenAt: r.tree.generation,
      buckets: r.buckets('GET', '/assets/123'),
    });
    const inFlight = pathOf();
    const queued = pathOf();
    const api = byName(queued.buckets, 'assets');
    api.cap(-5);
    const waiting = r.scheduler.acquire(queued.buckets, app, Number.POSITIVE_INFINITY, undefined, queued);
    expect(r.scheduler.queuedCount()).toBe(1);
    r.tree.throttled(inFlight.buckets, 'GET', route, rateMsg(50), t + 1, t);
    const learned = 'learned.get.assets._';
    // The in-flight call's retry takes the learned bucket (in debt, as CDF's is): it waits.
    expect(names(r.tree.current(inFlight))).toContain(learned);
    const retry = r.scheduler.acquire(inFlight.buckets, app, Number.POSITIVE_INFINITY, undefined, inFlight);
    expect(r.scheduler.queuedCount()).toBe(2);
    // The queued call moved to it too: the API level refilling no longer lets it out.
    expect(names(queued.buckets)).toContain(learned);
    api.cap(api.burst);
    api.mirror(api.burst, performance.now());
    expect(r.scheduler.queuedCount()).toBe(2);
    // Once the learned bucket has a token, they go, each holding it.
    const leaf = byName(r.tree.current(queued), learned);
    leaf.mirror(leaf.burst, performance.now());
    r.scheduler.limitsChanged(leaf);
    const leases = await Promise.all([waiting, retry]);
    for (const l of leases) expect(names(l.buckets)).toContain(learned);
    expect(leaf.inFlight).toBe(2);
    for (const l of leases) l.release();
    expect(leaf.inFlight).toBe(0);
    // A path chosen after the learning is already current: the same list, not chosen again.
    const fresh = pathOf();
    const list = fresh.buckets;
    expect(r.tree.current(fresh)).toBe(list);
    r.close();
  });

  it('follows a concurrency CDF stated for an endpoint: learned at it, never cut under it, never probed past it', () => {
    const r = rig();
    const route = lookupRoute('POST', '/assets/byids');
    const clock = new Clock(performance.now());
    const early = [0, 1, 2, 3, 4, 5].map(() => r.buckets('POST', '/assets/byids'));
    // A storm of concurrency 429s stating 4 (calls sent together, before anything was learned).
    for (const bs of early) r.tree.throttled(bs, 'POST', route, concurrencyMsg(4), clock.tick(1), clock.t - 10);
    const leaf = byName(r.buckets('POST', '/assets/byids'), 'learned.post.assets.byids');
    expect(leaf.concurrency).toBe(4);
    // A minute of answers: still 4.
    for (let i = 0; i < 240; i++) r.tree.passed(r.buckets('POST', '/assets/byids'), route, clock.tick(250));
    expect(leaf.concurrency).toBe(4);
    r.close();
  });

  /** Files at 50/s; half a second: search gets 10 calls through a second and a 429 for each, by-ids 20 and none. */
  const searchRefused = () => {
    const r = rig([{ ...defaults().limits.find((l) => l.name === 'files')!, rate: 50, burst: 50, concurrency: 10 }]);
    const search = lookupRoute('POST', '/files/search');
    const byids = lookupRoute('POST', '/files/byids');
    const clock = new Clock(performance.now());
    for (let i = 0; i < 5; i++) {
      r.tree.throttled(r.buckets('POST', '/files/search'), 'POST', search, silent, clock.tick(50), clock.t - 1);
      r.tree.passed(r.buckets('POST', '/files/search'), search, clock.tick(50));
      r.tree.passed(r.buckets('POST', '/files/byids'), byids, clock.tick(1));
      r.tree.passed(r.buckets('POST', '/files/byids'), byids, clock.tick(1));
    }
    return { r, search, clock };
  };

  it('learns an operation CDF refuses while the rest of its API passes, at the rate that got through', () => {
    const { r } = searchRefused();
    expect(r.learned.map((l) => l.learned?.key)).toEqual(['POST /files/search']);
    const leaf = byName(r.buckets('POST', '/files/search'), 'learned.post.files.search');
    expect(leaf.rate).toBeGreaterThanOrEqual(2.5);
    expect(leaf.rate).toBeLessThanOrEqual(12);
    expect(leaf.rateSource).toBe('learned');
    // Its parent is not cut, and other operations do not take from it.
    expect(byName(r.buckets('POST', '/files/byids'), 'files').rate).toBe(50);
    expect(names(r.buckets('POST', '/files/byids'))).toEqual(['files']);
    r.close();
  });

  it('cuts a learned endpoint its calls wait at on one 429 naming no figure, where another bucket would only follow', () => {
    const { r, search, clock } = searchRefused();
    const leaf = byName(r.buckets('POST', '/files/search'), 'learned.post.files.search');
    // Three seconds of answers: the storm's 429s are out of the tally's window.
    for (let i = 0; i < 12; i++) r.tree.passed(r.buckets('POST', '/files/search'), search, clock.tick(250));
    // Calls wait at it: its tokens are taken.
    const bs = r.buckets('POST', '/files/search');
    while (r.admit(bs, clock.t)) r.store.release(bs);
    const before = leaf.rate;
    r.tree.throttled(bs, 'POST', search, silent, clock.tick(10), clock.t - 1);
    expect(leaf.rate).toBeLessThan(before);
    expect(leaf.rate).toBeGreaterThanOrEqual(before * 0.35);
    expect(byName(r.buckets('POST', '/files/byids'), 'files').rate).toBe(50);
    r.close();
  });

  it('learns a class when its operations are refused alike while another class passes', () => {
    const r = rig([{ ...defaults().limits.find((l) => l.name === 'files')!, rate: 50, burst: 50, concurrency: 10 }]);
    const clock = new Clock(performance.now());
    const call = (m: string, p: string, ok: boolean) => {
      const route = lookupRoute(m, p);
      if (ok) r.tree.passed(r.buckets(m, p), route, clock.tick(10));
      else r.tree.throttled(r.buckets(m, p), m, route, silent, clock.tick(10), clock.t - 1);
    };
    for (let i = 0; i < 6; i++) {
      call('POST', '/files/search', i % 2 === 0);
      call('POST', '/files/list', i % 2 === 1);
      call('POST', '/files/byids', true);
      call('POST', '/files/byids', true);
    }
    expect(r.learned.map((l) => l.learned?.key)).toEqual(['files analytical']);
    expect(names(r.buckets('POST', '/files/list'))).toEqual(['files', 'learned.files.analytical']);
    expect(names(r.buckets('POST', '/files/byids'))).toEqual(['files']);
    expect(byName(r.buckets('POST', '/files/byids'), 'files').rate).toBe(50);
    r.close();
  });

  it('cuts the bucket that held the calls back when every operation is refused alike', () => {
    const r = rig([{ ...defaults().limits.find((l) => l.name === 'files')!, rate: 50, burst: 50, concurrency: 10 }]);
    const clock = new Clock(performance.now());
    const paths: Array<[string, string]> = [
      ['POST', '/files/search'],
      ['POST', '/files/byids'],
      ['POST', '/files/list'],
    ];
    // The files bucket runs empty (calls wait for it) while CDF refuses a third of every operation's calls.
    for (let i = 0; i < 36; i++) {
      const [m, p] = paths[i % 3];
      const bs = r.buckets(m, p);
      while (r.admit(bs, clock.t)) r.store.release(bs);
      if (Math.floor(i / 3) % 3 === 0) r.tree.throttled(bs, m, lookupRoute(m, p), silent, clock.tick(20), clock.t - 1);
      else r.tree.passed(bs, lookupRoute(m, p), clock.tick(20));
    }
    expect(r.learned).toHaveLength(0);
    expect(byName(r.buckets('POST', '/files/list'), 'files').rate).toBeLessThan(50);
    r.close();
  });

  it('charges nothing but the tokens until the other operations have answered enough to tell', () => {
    const r = rig([{ ...defaults().limits.find((l) => l.name === 'files')!, rate: 50, burst: 50, concurrency: 10 }]);
    const clock = new Clock(performance.now());
    const search = lookupRoute('POST', '/files/search');
    const files = byName(r.buckets('POST', '/files/search'), 'files');
    files.cap(1);
    r.tree.throttled(r.buckets('POST', '/files/search'), 'POST', search, silent, clock.tick(1), clock.t - 1);
    r.tree.passed(r.buckets('POST', '/files/byids'), lookupRoute('POST', '/files/byids'), clock.tick(1));
    for (let i = 0; i < 4; i++)
      r.tree.throttled(r.buckets('POST', '/files/search'), 'POST', search, silent, clock.tick(1), clock.t - 1);
    expect(r.learned).toHaveLength(0);
    expect(r.changes).toHaveLength(0);
    expect(byName(r.buckets('POST', '/files/search'), 'files').tokens).toBeLessThan(0);
    r.close();
  });

  it('learns the endpoint, not the API, when the API bucket is at its real figure (near) and one endpoint 429s', () => {
    // issue #27: labels configured at CDF's figure (always near its limit), /labels/list tighter, no figure named.
    const r = rig(loadConfig({ env: {}, overrides: { limits: { labels: { rate: 50, concurrency: 10 } } } }).limits);
    const list = lookupRoute('POST', '/labels/list');
    const create = lookupRoute('POST', '/labels');
    const clock = new Clock(performance.now());
    for (let i = 0; i < 30; i++) {
      const labels = byName(r.buckets('POST', '/labels'), 'labels');
      labels.cap(0);
      r.tree.passed(r.buckets('POST', '/labels'), create, clock.tick(20));
      if (i % 2 === 0)
        r.tree.throttled(r.buckets('POST', '/labels/list'), 'POST', list, silent, clock.tick(5), clock.t - 1);
      else r.tree.passed(r.buckets('POST', '/labels/list'), list, clock.tick(5));
    }
    expect(r.learned.map((l) => l.learned?.key)).toEqual(['POST /labels/list']);
    const labels = byName(r.buckets('POST', '/labels'), 'labels');
    expect(labels.rate).toBe(50);
    expect(labels.rateSource).toBe('configured');
    r.close();
  });
});

describe('quota tree: reconfigure keeps what survives', () => {
  it('keeps tokens, slots and learned figures of buckets whose name survives; forgets the others', () => {
    const r = rig();
    const t = performance.now();
    const bs = r.buckets('POST', '/assets/aggregate');
    r.admit(bs, t);
    r.tree.throttled(bs, 'POST', lookupRoute('POST', '/assets/aggregate'), rateMsg(15), t + 1, t);
    const seq = r.buckets('POST', '/sequences/data/list');
    r.tree.throttled(seq, 'POST', lookupRoute('POST', '/sequences/data/list'), rateMsg(10), t + 1, t);
    const aggregate = byName(bs, 'assets-aggregate');
    const tokens = aggregate.tokens;

    const next = loadConfig({ env: {}, overrides: { limits: { 'assets-crud': null, assets: { rate: 180 } } } }).limits;
    r.tree.reconfigure(next);
    const after = r.buckets('POST', '/assets/aggregate');
    expect(byName(after, 'assets-aggregate')).toBe(aggregate);
    expect(aggregate.tokens).toBe(tokens);
    expect(aggregate.inFlight).toBe(1);
    expect(aggregate.rate).toBeCloseTo(14.7);
    expect(byName(after, 'assets').rate).toBe(180);
    expect(names(r.buckets('POST', '/assets/byids'))).not.toContain('assets-crud');
    expect(names(r.buckets('POST', '/sequences/data/list'))).toContain('learned.post.sequences.data.list');
    expect(r.tree.limits.map((l) => [l.name, l.rate])).toEqual(next.map((l) => [l.name, l.rate]));
    r.store.release(bs);
    expect(aggregate.inFlight).toBe(0);
    r.close();
  });
});

describe('quota tree: bounded whatever callers send', () => {
  it('keeps at most MAX_BUCKETS buckets in all: 30,000 made-up projects add under 50 MiB of heap', () => {
    const r = rig();
    const route = lookupRoute('POST', '/assets/list');
    const t = performance.now();
    // A hot project keeps its bucket (and its state) through the churn.
    const hot = r.tree.bucketsFor('POST', '/assets/list', route, 'hot', () => 'alice');
    r.admit(hot, t);
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 30_000; i++) {
      const bs = r.tree.bucketsFor('POST', '/assets/list', route, `made-up-${i}`, () => `caller-${i}`);
      r.admit(bs, t);
      r.store.release(bs);
      if (i % 1000 === 0) r.tree.bucketsFor('POST', '/assets/list', route, 'hot', () => 'alice');
    }
    const grown = process.memoryUsage().heapUsed - before;
    expect(r.scheduler.bucketsKept).toBeLessThanOrEqual(MAX_BUCKETS);
    expect(r.scheduler.bucketsKept).toBeGreaterThan(MAX_BUCKETS / 2);
    expect(grown).toBeLessThan(50 * 1024 * 1024);
    const again = r.tree.bucketsFor('POST', '/assets/list', route, 'hot', () => 'alice');
    expect(byName(again, 'assets')).toBe(byName(hot, 'assets'));
    // A scrape reads a bounded number of buckets.
    let seen = 0;
    for (const _ of r.scheduler.allBuckets()) seen++;
    expect(seen).toBe(r.scheduler.bucketsKept);
    r.store.release(hot);
    r.close();
  });

  it('never drops a bucket with a call in flight', () => {
    const config = defaults();
    const store = new MemoryStore();
    const scheduler = new Scheduler(store, config.queue, null, 8);
    const limit = quotaLimit(config.limits.find((l) => l.name === 'assets')!, config.adaptive);
    const busy = scheduler.bucket(limit, 'busy');
    store.take([busy], performance.now());
    for (let i = 0; i < 100; i++) scheduler.bucket(limit, `p${i}`);
    expect(scheduler.bucketsKept).toBeLessThanOrEqual(8);
    expect(scheduler.bucket(limit, 'busy')).toBe(busy);
    scheduler.close();
  });
});

describe('quota tree: learned buckets through the gateway', () => {
  it('learns a tight endpoint on the default config, shows it in /metrics and the dashboard, keeps it on reload', async () => {
    const stack = await startStack(
      {},
      { tree: true, latencyMs: 100, tight: [{ match: '/assets/byids', rate: 10, concurrency: 4 }] },
    );
    const byids = () =>
      fetch(`${stack.url}/api/v1/projects/p/assets/byids`, {
        method: 'POST',
        headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
        body: JSON.stringify({ items: [{ id: 1 }] }),
      }).then((r) => r.status);
    try {
      const statuses = await Promise.all(Array.from({ length: 8 }, byids));
      // The gateway retried CDF's 429s: every app call answered.
      expect(statuses).toEqual(Array(8).fill(200));
      const metrics = await (await fetch(`${stack.url}/metrics`)).text();
      expect(metrics).toMatch(
        /cdf_gateway_limit_concurrency\{bucket="learned\.post\.assets\.byids",source="learned",provenance="stated"\} [1-4]\n/,
      );
      expect(metrics).toMatch(
        /cdf_gateway_limit_rate_per_second\{bucket="assets",source="configured",provenance="documented"\} 200\n/,
      );
      expect(metrics).toMatch(/cdf_gateway_learned_buckets\{level="operation"\} 1\n/);
      // The dashboard samples once a second.
      let data: { buckets: Record<string, { learned: boolean }> } = { buckets: {} };
      for (let i = 0; i < 30 && !data.buckets['learned.post.assets.byids']; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        await byids();
        data = (await (await fetch(`${stack.url}/dashboard/data.json`)).json()) as typeof data;
      }
      expect(data.buckets['learned.post.assets.byids']?.learned).toBe(true);
      expect(data.buckets.assets?.learned).toBe(false);
      // A reload keeps what was learned and the state of buckets whose name survives.
      const assets = [...stack.gateway.scheduler.allBuckets()].find((b) => b.limit.name === 'assets')!;
      stack.gateway.reconfigure(
        loadConfig({ env: {}, overrides: { upstream: { baseUrl: stack.sim.url }, limits: { assets: { rate: 180 } } } }),
      );
      expect(stack.gateway.quota.learned().map((l) => l.name)).toEqual(['learned.post.assets.byids']);
      expect([...stack.gateway.scheduler.allBuckets()].find((b) => b.limit.name === 'assets')).toBe(assets);
      expect(assets.rate).toBe(180);
    } finally {
      await stack.close();
    }
  });
});

describe.skipIf(!(await redisUp()))('quota tree: learned buckets shared through Redis', () => {
  it('a bucket one replica learned is adopted by another, under the same name', async () => {
    const sim = await startSimulator({
      tree: false,
      latencyMs: 150,
      tight: [{ match: '/assets/byids', rate: 10, concurrency: 4 }],
    });
    const keyPrefix = `cdfgw-test-tree-${randomBytes(5).toString('hex')}`;
    const config = () =>
      loadConfig({
        env: {},
        overrides: {
          server: { port: 0 },
          upstream: { baseUrl: sim.url },
          log: { level: 'silent' },
          cluster: { redisUrl: 'redis://127.0.0.1:6379', keyPrefix, leaseMs: 900 },
        },
      });
    const a = await buildGateway(config());
    const b = await buildGateway(config());
    const [urlA, urlB] = [await a.listen(), await b.listen()];
    const byids = (url: string) =>
      fetch(`${url}/api/v1/projects/p/assets/byids`, {
        method: 'POST',
        headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
        body: JSON.stringify({ items: [{ id: 1 }] }),
      }).then((r) => r.arrayBuffer());
    try {
      // Eight at once through A: CDF's endpoint takes four; its 429 names the figure.
      await Promise.all(Array.from({ length: 8 }, () => byids(urlA)));
      expect(a.quota.learned().map((l) => l.name)).toEqual(['learned.post.assets.byids']);
      expect(b.quota.learned()).toEqual([]);
      // B, with calls in flight, reads what was learned elsewhere.
      const until = Date.now() + 5000;
      while (b.quota.learned().length === 0 && Date.now() < until) await Promise.all([byids(urlB), byids(urlB)]);
      const adopted = b.quota.learned();
      expect(adopted.map((l) => l.name)).toEqual(['learned.post.assets.byids']);
      expect(adopted[0].concurrency).toBeLessThanOrEqual(4);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await sim.close();
      const r = new Redis('redis://127.0.0.1:6379');
      const keys = await r.keys(`${keyPrefix}*`);
      if (keys.length > 0) await r.del(...keys);
      r.disconnect();
    }
  });
});

async function redisUp(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port: 6379 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
