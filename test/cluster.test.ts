import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildGateway, type Gateway } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { type SimOptions, type Simulator, startSimulator } from '../src/sim/index.js';
import { jwt, LogCapture, oneLimit } from './helpers.js';

// Real Redis: the shared one for most scenarios, a private redis-server child where Redis must die.
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const HOW_TO = 'redis-server --daemonize yes --port 6379 --save "" --appendonly no';
const P = '/api/v1/projects/test';
const MAIN = join(import.meta.dirname, '..', 'dist', 'main.js');

function client(url: string): Redis {
  const c = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  c.on('error', () => {});
  return c;
}

async function ping(url: string): Promise<boolean> {
  const c = client(url);
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

const redisUp = await ping(REDIS_URL);
const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
if (!redisUp && !process.env.CI) {
  console.warn(
    `test/cluster.test.ts: no Redis at ${REDIS_URL}; the shared-quota tests are skipped. Start one with: ${HOW_TO}`,
  );
}

// Everything a test starts, stopped after it whatever happened.
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      // best effort
    }
  }
});

/** A flat CDF quota: the simulator's documented tree is off in these tests. */
async function sim(options: Partial<SimOptions>): Promise<Simulator> {
  const s = await startSimulator({ tree: false, ...options });
  cleanups.push(() => s.close());
  return s;
}

/** A fresh key prefix per test, its keys deleted afterwards. */
function prefix(redisUrl = REDIS_URL): string {
  const p = `cdfgw-test-${randomBytes(6).toString('hex')}`;
  cleanups.push(async () => {
    const c = client(redisUrl);
    await c.connect();
    const keys = await c.keys(`${p}:*`);
    if (keys.length > 0) await c.del(...keys);
    c.disconnect();
  });
  return p;
}

function redis(url = REDIS_URL): Redis {
  const c = client(url);
  cleanups.push(() => c.disconnect());
  return c;
}

interface InProcess {
  gateway: Gateway;
  url: string;
  logs: LogCapture;
}

// A short shutdown grace: requests the load aborted can leave keep-alive connections that close() waits for.
function settings(s: Simulator, extra: Record<string, unknown>): Record<string, unknown> {
  return { server: { port: 0, shutdownGraceMs: 500 }, upstream: { baseUrl: s.url }, log: { pretty: false }, ...extra };
}

async function gateway(s: Simulator, extra: Record<string, unknown>): Promise<InProcess> {
  const logs = new LogCapture();
  const config = loadConfig({ env: {}, overrides: settings(s, extra) });
  const gw = await buildGateway(config, { logDestination: logs });
  cleanups.push(() => gw.close());
  return { gateway: gw, url: await gw.listen(), logs };
}

interface Child {
  proc: ChildProcess;
  url: string;
}

/** A replica as its own process: `node dist/main.js` with a temporary config file. */
async function spawnGateway(s: Simulator, extra: Record<string, unknown>): Promise<Child> {
  expect(existsSync(MAIN), 'dist/main.js is missing: run `npm run build` first').toBe(true);
  const dir = mkdtempSync(join(tmpdir(), 'cdfgw-cluster-'));
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, stringify(settings(s, extra)));
  const proc = spawn(process.execPath, [MAIN], {
    env: { ...process.env, GATEWAY_CONFIG: file, PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      let nl = out.indexOf('\n');
      while (nl !== -1) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        nl = out.indexOf('\n');
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'cdf-gateway listening' && entry.url) resolve(entry.url);
        } catch {
          // not a log line
        }
      }
    });
    proc.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${err}`)));
    setTimeout(() => reject(new Error(`gateway did not start: ${err}`)), 15_000).unref();
  });
  return { proc, url };
}

/** Cluster settings over a one-bucket config. */
function cluster(
  redisUrl: string,
  keyPrefix: string,
  limit: Record<string, unknown>,
  more: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    ...oneLimit(limit),
    cluster: { redisUrl, keyPrefix, ...((more.cluster as object) ?? {}) },
    ...omit(more, 'cluster'),
  };
}

function omit(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const { [key]: _, ...rest } = o;
  return rest;
}

interface Load {
  statuses: Map<number, number>;
  /** Requests that failed without an answer (timeout, reset). */
  errors: string[];
  /** Answered, per target URL. */
  byTarget: Map<string, number>;
  /** Stops issuing; the requests still waiting are aborted. Resolves when every worker is done. */
  stop(): Promise<void>;
}

/** `workers` loops per target, each sending the next request when the last one is answered. */
function drive(targets: Array<{ url: string; auth: string }>, workers: number, path = `${P}/assets?limit=1`): Load {
  const load: Load = { statuses: new Map(), errors: [], byTarget: new Map(), stop: async () => {} };
  const abort = new AbortController();
  let running = true;
  const loops: Promise<void>[] = [];
  for (const t of targets) {
    for (let w = 0; w < workers; w++) {
      loops.push(
        (async () => {
          while (running) {
            try {
              const res = await fetch(t.url + path, {
                headers: { authorization: t.auth },
                signal: AbortSignal.any([abort.signal, AbortSignal.timeout(15_000)]),
              });
              await res.arrayBuffer();
              load.statuses.set(res.status, (load.statuses.get(res.status) ?? 0) + 1);
              load.byTarget.set(t.url, (load.byTarget.get(t.url) ?? 0) + 1);
            } catch (err) {
              if (running) load.errors.push((err as Error).message);
            }
          }
        })(),
      );
    }
  }
  load.stop = async () => {
    running = false;
    abort.abort();
    await Promise.all(loops);
  };
  return load;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function readyz(url: string): Promise<{ status: string; store: string }> {
  return (await fetch(`${url}/readyz`)).json() as Promise<{ status: string; store: string }>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.runIf(process.env.CI)('cluster: CI', () => {
  it('has Redis', () => {
    expect(redisUp, `Redis is required in CI (none at ${REDIS_URL}; start one with: ${HOW_TO})`).toBe(true);
  });
});

describe.skipIf(!redisUp)('cluster: several replicas share one quota in Redis', () => {
  it('three gateways together stay within one project quota', async () => {
    const quota = { rate: 50, burst: 10, concurrency: 5 };
    const s = await sim({ project: quota, chargeThrottled: true });
    const keyPrefix = prefix();
    const gws = await Promise.all([1, 2, 3].map(() => gateway(s, cluster(REDIS_URL, keyPrefix, quota))));
    const seconds = 4;
    const load = drive(
      gws.map((g) => ({ url: g.url, auth: 'Bearer shared-token' })),
      4,
    );
    await sleep(seconds * 1000);
    const stats = s.stats();
    await load.stop();

    expect(load.errors).toEqual([]);
    // Without Redis each gateway would admit the whole quota: about 3x, and CDF would throttle the rest.
    expect(stats.ok).toBeLessThanOrEqual(1.3 * quota.rate * seconds + quota.burst);
    expect(stats.ok).toBeGreaterThanOrEqual(0.5 * quota.rate * seconds);
    expect(stats.throttled).toBeLessThan(0.02 * stats.calls);
    for (const g of gws) expect(load.byTarget.get(g.url) ?? 0).toBeGreaterThan(10);
    for (const g of gws) expect(g.gateway.store.status()).toEqual({ mode: 'redis', healthy: true });
  });

  it('a replica killed while holding slots: they come back after the lease, and another replica gets them all', async () => {
    const s = await sim({});
    const keyPrefix = prefix();
    const limit = { rate: 1000, burst: 1000, concurrency: 5 };
    const shared = cluster(REDIS_URL, keyPrefix, limit, { cluster: { leaseMs: 1500 }, queue: { maxWaitMs: 20_000 } });
    const [a, b] = await Promise.all([spawnGateway(s, shared), gateway(s, shared)]);
    const leases = `${keyPrefix}:{test}:all:test:leases`;
    const r = redis();
    await r.connect();

    // Replica A takes every slot with calls that would last a minute.
    const held = Array.from({ length: 5 }, () =>
      fetch(`${a.url}${P}/_sim/slow?ms=60000`, { headers: { authorization: 'Bearer t' } }).catch(() => null),
    );
    await until('A to hold all 5 slots', async () => (await r.zcard(leases)) === 5);

    // B's call waits: A renews its leases, so they outlive leaseMs while A lives.
    const waiting = fetch(`${b.url}${P}/_sim/slow?ms=10`, { headers: { authorization: 'Bearer t' } });
    let answered = false;
    void waiting.then(() => {
      answered = true;
    });
    // Waited for on Redis's clock (the leases' own): past the latest expiry the leases had, with none of
    // them still at or before it, A has renewed every one; without renewals they would lapse and B would run.
    const scores = await r.zrange(leases, 0, -1, 'WITHSCORES');
    const firstExpiry = Math.max(...scores.filter((_, i) => i % 2 === 1).map(Number));
    const redisNow = async () => {
      const [sec, usec] = await r.time();
      return Number(sec) * 1000 + Number(usec) / 1000;
    };
    await until('A to renew its leases past their first expiry', async () => {
      return (await redisNow()) > firstExpiry && (await r.zcount(leases, '-inf', firstExpiry)) === 0;
    });
    expect(await r.zcard(leases)).toBe(5);
    expect(b.gateway.scheduler.queuedCount()).toBe(1);
    expect(answered).toBe(false);

    a.proc.kill('SIGKILL');
    await Promise.all(held);
    expect((await waiting).status).toBe(200);

    // All five slots are B's now.
    const bucket = [...b.gateway.scheduler.allBuckets()][0];
    const five = Array.from({ length: 5 }, () =>
      fetch(`${b.url}${P}/_sim/slow?ms=400`, { headers: { authorization: 'Bearer t' } }),
    );
    await until('B to hold all 5 slots', () => bucket.inFlight === 5);
    expect(await r.zcard(leases)).toBe(5);
    for (const res of await Promise.all(five)) expect(res.status).toBe(200);
    await until('the slots to be released', async () => (await r.zcard(leases)) === 0);
  });

  it('per-identity buckets are shared across replicas, one per identity, and keys never hold a raw token', async () => {
    const quota = { rate: 20, burst: 5, concurrency: 3 };
    const s = await sim({ identity: quota, chargeThrottled: true });
    const keyPrefix = prefix();
    const shared = {
      limits: [{ name: 'ident', match: ['/**'], per: 'identity', ...quota }],
      cluster: { redisUrl: REDIS_URL, keyPrefix },
    };
    const gws = await Promise.all([1, 2].map(() => gateway(s, shared)));
    const alice = jwt({ oid: 'alice' });
    const raw = 'Bearer raw-secret-token-123';
    const seconds = 3;
    const load = drive(
      gws.flatMap((g) => [
        { url: g.url, auth: alice },
        { url: g.url, auth: raw },
      ]),
      3,
    );
    await sleep(seconds * 1000);
    const stats = s.stats();
    await load.stop();

    expect(load.errors).toEqual([]);
    // Each identity gets its own quota, once, however many replicas its calls go through.
    for (const id of ['alice', 'raw-secret-token-123']) {
      const { ok, throttled, calls } = stats.byIdentity[id];
      expect(ok).toBeLessThanOrEqual(1.3 * quota.rate * seconds + quota.burst);
      expect(ok).toBeGreaterThanOrEqual(0.5 * quota.rate * seconds);
      expect(throttled).toBeLessThanOrEqual(Math.max(1, 0.02 * calls));
    }
    const r = redis();
    await r.connect();
    const all = await r.keys(`${keyPrefix}:*`);
    // Without identity.jwks an identity is a hash of the credential (unverified claims key nothing).
    const identities = new Set(
      all
        .filter((k) => k.startsWith(`${keyPrefix}:{test}:ident:test/cred:`))
        .map((k) => k.split(':').slice(0, 5).join(':')),
    );
    expect(identities.size).toBe(2);
    expect(all.filter((k) => k.includes('alice'))).toEqual([]);
    expect(all.filter((k) => k.includes('raw-secret-token'))).toEqual([]);
    for (const k of all) expect(await r.pttl(k)).toBeGreaterThan(0);
  });

  it('adaptive limits are shared: a 429 at one replica lowers the effective rate at another', async () => {
    // CDF's bucket at the gateway's rate but with a burst of one: a few calls at once from A meet a 429 that
    // names the figure of A's bucket (50/s), which the quota tree charges to that bucket.
    const s = await sim({ project: { rate: 50, burst: 1, concurrency: 10 } });
    const keyPrefix = prefix();
    const limit = { rate: 50, burst: 10, concurrency: 10 };
    // A long adaptive interval: the store refuses raises that soon after a cut, so B's successes (its own
    // bucket below the configured rate) cannot lift the shared limits back while the test looks.
    const conf = cluster(REDIS_URL, keyPrefix, limit, { retry: { baseDelayMs: 10 }, adaptive: { intervalMs: 60_000 } });
    const [a, b] = await Promise.all([gateway(s, conf), gateway(s, conf)]);
    const r = redis();
    await r.connect();

    // B has seen the bucket at its configured limits.
    expect((await fetch(`${b.url}${P}/assets?limit=1`, { headers: { authorization: 'Bearer t' } })).status).toBe(200);
    const atB = [...b.gateway.scheduler.allBuckets()][0];
    expect(atB.rate).toBe(50);

    const atOnce = await Promise.all(
      Array.from({ length: 4 }, () => fetch(`${a.url}${P}/assets?limit=1`, { headers: { authorization: 'Bearer t' } })),
    );
    for (const res of atOnce) expect(res.status).toBe(200);
    const limits = `${keyPrefix}:{test}:all:test:limits`;
    await until('the lowered rate in Redis', async () => Number(await r.hget(limits, 'rate')) < 50);
    const shared = Number(await r.hget(limits, 'rate'));

    // B's next decision brings it the lowered rate (and the burst that goes with it); after CDF's bucket of
    // one has refilled, so that B's call is not throttled itself.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await fetch(`${b.url}${P}/assets?limit=1`, { headers: { authorization: 'Bearer t' } })).status).toBe(200);
    await until('B to follow the shared limits', async () => atB.rate === Number(await r.hget(limits, 'rate')));
    expect(atB.rate).toBeLessThan(50);
    expect(atB.rate).toBeLessThanOrEqual(shared);
    expect(atB.burst).toBeLessThan(10);
    const atA = [...a.gateway.scheduler.allBuckets()][0];
    await until('A to hold the shared limits too', async () => atA.rate === Number(await r.hget(limits, 'rate')));
  });

  it("each replica knows its share of a shared bucket's calls (what it learns from is that share of CDF's answers)", async () => {
    const s = await sim({ project: { rate: 10_000, burst: 10_000, concurrency: 100 } });
    const conf = cluster(REDIS_URL, prefix(), { rate: 10_000, concurrency: 100 });
    const [a, b] = await Promise.all([gateway(s, conf), gateway(s, conf)]);
    const get = (url: string) => fetch(`${url}${P}/assets?limit=1`, { headers: { authorization: 'Bearer t' } });
    // Three calls through A for every one through B, one at a time.
    for (let i = 0; i < 40; i++) {
      for (const url of [a.url, a.url, a.url, b.url]) expect((await get(url)).status).toBe(200);
    }
    const [atA] = a.gateway.scheduler.allBuckets();
    const [atB] = b.gateway.scheduler.allBuckets();
    expect(atA.ownShare).toBeGreaterThan(0.65);
    expect(atA.ownShare).toBeLessThan(0.85);
    expect(atB.ownShare).toBeGreaterThan(0.15);
    expect(atB.ownShare).toBeLessThan(0.35);
  });
});

interface AppLoad {
  ok: number;
  failed: number;
  latenciesMs: number[];
}

/**
 * Apps through their own sidecars for `ms`: `loops` apps send their next call when the last is answered,
 * the others one call every `everyMs`. Calls answered after the window are not counted.
 */
async function apps(
  list: Array<{ name: string; url: string; loops?: number; everyMs?: number }>,
  ms: number,
): Promise<Map<string, AppLoad>> {
  const end = performance.now() + ms;
  const out = new Map<string, AppLoad>();
  const work: Promise<void>[] = [];
  for (const app of list) {
    const load: AppLoad = { ok: 0, failed: 0, latenciesMs: [] };
    out.set(app.name, load);
    const one = async () => {
      const t0 = performance.now();
      let ok = false;
      try {
        const res = await fetch(`${app.url}${P}/assets?limit=1`, {
          headers: { authorization: `Bearer ${app.name}`, 'x-cdf-gateway-client': app.name },
          signal: AbortSignal.timeout(20_000),
        });
        await res.arrayBuffer();
        ok = res.status === 200;
      } catch {}
      if (performance.now() > end) return;
      if (ok) {
        load.ok++;
        load.latenciesMs.push(performance.now() - t0);
      } else load.failed++;
    };
    if (app.loops) {
      for (let i = 0; i < app.loops; i++)
        work.push(
          (async () => {
            while (performance.now() < end) await one();
          })(),
        );
    } else {
      work.push(
        (async () => {
          const calls: Promise<void>[] = [];
          while (performance.now() < end) {
            calls.push(one());
            await sleep(app.everyMs!);
          }
          await Promise.all(calls);
        })(),
      );
    }
  }
  await Promise.all(work);
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

describe.skipIf(!redisUp)('cluster: one fair queue across sidecars', () => {
  const quota = { rate: 100, burst: 20, concurrency: 10 };

  /** One gateway per app, all with the same `clients`, sharing the quota in Redis. */
  async function sidecars(s: Simulator, names: string[], clients: Array<Record<string, unknown>>) {
    const keyPrefix = prefix();
    const conf = cluster(REDIS_URL, keyPrefix, quota, {
      clients,
      queue: { maxWaitMs: 30_000 },
      cluster: { expectedReplicas: names.length },
    });
    const gws = await Promise.all(names.map(() => gateway(s, conf)));
    return names.map((name, i) => ({ name, url: gws[i].url }));
  }

  it('weights and priority hold across sidecars: batch-a gets about 3x batch-b, the UI goes first', async () => {
    const s = await sim({ project: quota, chargeThrottled: true });
    const [ui, a, b] = await sidecars(
      s,
      ['ui', 'batch-a', 'batch-b'],
      [
        { name: 'ui', priority: 1 },
        { name: 'batch-a', weight: 3 },
        { name: 'batch-b', weight: 1 },
      ],
    );
    const load = await apps(
      [
        { ...ui, everyMs: 50 },
        { ...a, loops: 12 },
        { ...b, loops: 12 },
      ],
      3000,
    );
    const [lu, la, lb] = [load.get('ui')!, load.get('batch-a')!, load.get('batch-b')!];
    expect([lu.failed, la.failed, lb.failed]).toEqual([0, 0, 0]);
    // Through one gateway the weights give 3; replicas each queueing their own gave 0.87.
    expect(la.ok / lb.ok).toBeGreaterThan(2);
    expect(la.ok / lb.ok).toBeLessThan(4.5);
    // The UI is served ahead of the batch apps' queues, not behind them.
    expect(lu.ok).toBeGreaterThanOrEqual(40);
    expect(median(lu.latenciesMs)).toBeLessThan(median(la.latenciesMs));
    expect(median(lu.latenciesMs)).toBeLessThan(median(lb.latenciesMs) / 3);
  });

  it('a light app through its own sidecar is not queued behind busy ones; busy apps share evenly', async () => {
    const s = await sim({ project: quota, chargeThrottled: true });
    const [greedy, b1, b2, light] = await sidecars(s, ['greedy', 'busy-1', 'busy-2', 'light'], []);
    const load = await apps(
      [
        { ...greedy, loops: 24 },
        { ...b1, loops: 6 },
        { ...b2, loops: 6 },
        { ...light, everyMs: 100 },
      ],
      3000,
    );
    const busy = [load.get('greedy')!, load.get('busy-1')!, load.get('busy-2')!];
    for (const l of [...busy, load.get('light')!]) expect(l.failed).toBe(0);
    const shares = busy.map((l) => l.ok);
    // The greedy app's 24 loops do not buy it more than the others' 6.
    expect(Math.max(...shares) / Math.min(...shares)).toBeLessThan(1.3);
    // Its calls go through as they come (one every 100 ms), ahead of the busy apps' queues. Latency
    // itself is measured in bench/sidecars.mjs; here only the order, with room for a loaded machine.
    expect(load.get('light')!.ok).toBeGreaterThanOrEqual(20);
    expect(median(load.get('light')!.latenciesMs)).toBeLessThan(
      Math.min(...busy.map((l) => median(l.latenciesMs))) / 2,
    );
  });

  it('a dead replica waiting in the queue loses its place and never blocks the others', async () => {
    const s = await sim({});
    const keyPrefix = prefix();
    const conf = cluster(
      REDIS_URL,
      keyPrefix,
      { rate: 1000, burst: 1000, concurrency: 1 },
      {
        clients: [{ name: 'urgent', priority: 1 }],
        cluster: { leaseMs: 3000 },
        queue: { maxWaitMs: 20_000 },
      },
    );
    const [dying, other] = await Promise.all([spawnGateway(s, conf), gateway(s, conf)]);
    const headers = (app: string) => ({ authorization: `Bearer ${app}`, 'x-cdf-gateway-client': app });
    // The one slot is held at the surviving replica; the urgent app waits for it at the other.
    const holding = fetch(`${other.url}${P}/_sim/slow?ms=500`, { headers: headers('batch') });
    await until(
      'the batch app to hold the slot',
      () => other.gateway.scheduler.allBuckets().next().value?.inFlight === 1,
    );
    void fetch(`${dying.url}${P}/_sim/slow?ms=10`, { headers: headers('urgent') }).catch(() => null);
    const r = redis();
    await r.connect();
    const waiting = `${keyPrefix}:{test}:all:test:waiting`;
    await until('the urgent app to wait in Redis', async () => (await r.zcard(waiting)) === 1);
    dying.proc.kill('SIGKILL');
    expect((await holding).status).toBe(200);

    // The dead replica's place would go first (priority 1): it lapses, and the batch app is served.
    const t0 = performance.now();
    const next = await fetch(`${other.url}${P}/assets?limit=1`, { headers: headers('batch') });
    expect(next.status).toBe(200);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(await r.zcard(waiting)).toBe(0);
  });
});

describe('cluster: Redis unavailable', () => {
  it('starts anyway, serves with a local share of each limit, reports degraded, and never hangs', async () => {
    const s = await sim({ latencyMs: 50 });
    const port = await freePort();
    const limit = { rate: 1000, burst: 1000, concurrency: 4 };
    const g = await gateway(
      s,
      cluster(`redis://127.0.0.1:${port}`, 'cdfgw-test-nowhere', limit, { cluster: { expectedReplicas: 2 } }),
    );
    expect(await readyz(g.url)).toEqual({ status: 'degraded', store: 'redis' });

    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${g.url}${P}/assets?limit=1`, {
          headers: { authorization: 'Bearer t' },
          signal: AbortSignal.timeout(10_000),
        }),
      ),
    );
    for (const res of answers) expect(res.status).toBe(200);
    // Half of the 4 slots: the other replica is assumed to hold the other half.
    expect(s.stats().maxInFlight).toBe(2);
    expect(g.logs.lines.filter((l) => l.level === 40 && /degraded/.test(String(l.msg)))).toHaveLength(1);
  });
});

describe.skipIf(!hasRedisServer)('cluster: Redis stops and comes back under load', () => {
  it('falls back to local buckets without hanging a request, then returns to Redis (killed, then hung)', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    let server: ChildProcess | null = null;
    const startRedis = async () => {
      server = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      await until('the private redis-server', () => ping(url));
    };
    cleanups.push(() => server?.kill('SIGKILL'));
    await startRedis();

    const s = await sim({ latencyMs: 5 });
    const g = await gateway(s, cluster(url, 'cdfgw-test', { rate: 2000, burst: 200, concurrency: 20 }));
    expect(await readyz(g.url)).toEqual({ status: 'ready', store: 'redis' });
    const load = drive([{ url: g.url, auth: 'Bearer t' }], 4);
    const served = () => [...load.statuses.values()].reduce((a, n) => a + n, 0);
    const servedMore = async (what: string) => {
      const before = served();
      await until(what, () => served() > before + 20);
    };
    const mode = async (status: string) => {
      await until(`/readyz ${status}`, async () => (await readyz(g.url)).status === status, 15_000);
    };
    await servedMore('requests served through Redis');

    // Gone: the connection drops, decisions go to the local buckets at once.
    server!.kill('SIGKILL');
    await mode('degraded');
    await servedMore('requests served while Redis is away');
    await startRedis();
    await mode('ready');
    const r = redis(url);
    await r.connect();
    await until('buckets in the new Redis', async () => (await r.keys('cdfgw-test:*')).length > 0);

    // Hung: the connection stays, commands time out (commandTimeoutMs) and fall back to the local buckets.
    server!.kill('SIGSTOP');
    await mode('degraded');
    await servedMore('requests served while Redis hangs');
    server!.kill('SIGCONT');
    await mode('ready');
    await servedMore('requests served by Redis again');
    await load.stop();

    expect(load.errors).toEqual([]);
    expect([...load.statuses.keys()]).toEqual([200]);
    expect(g.logs.lines.filter((l) => l.level === 40 && /degraded/.test(String(l.msg)))).toHaveLength(2);
    expect(g.logs.lines.filter((l) => l.level === 30 && /redis is back/.test(String(l.msg)))).toHaveLength(2);
  });
});
