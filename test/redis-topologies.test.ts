import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGateway, type Gateway } from '../src/app.js';
import { parseRedisTarget } from '../src/cluster/redis-target.js';
import { loadConfig } from '../src/config/index.js';
import { type Simulator, startSimulator } from '../src/sim/index.js';
import { LogCapture } from './helpers.js';

// Redis Cluster and Sentinel, started here on high loopback ports as child processes of this test file
// (redis-server only: `redis-server --sentinel` is Sentinel), stopped afterwards whatever happened.
const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
const hasRedisCli = spawnSync('redis-cli', ['--version']).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'cdfgw-redis-topologies-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `count` consecutive free ports (and their cluster bus ports, +10000) in 40000-55000. */
async function freePorts(count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 40_000 + Math.floor(Math.random() * 15_000);
    const ports = Array.from({ length: count }, (_, i) => base + i);
    let free = true;
    for (const p of ports) if (!(await portFree(p)) || !(await portFree(p + 10_000))) free = false;
    if (free) return ports;
  }
  throw new Error('no free ports');
}

function redisServer(args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { cwd: dir, stdio: 'ignore' });
  children.push(child);
  return child;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function cmd(port: number, ...args: string[]): Promise<unknown> {
  const c = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  c.on('error', () => {});
  try {
    await c.connect();
    return await c.call(args[0], ...args.slice(1));
  } finally {
    c.disconnect();
  }
}

const base = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];

async function gatewayOn(
  s: Simulator,
  redisUrl: string,
  keyPrefix: string,
  leaseMs = 15_000,
): Promise<{ gw: Gateway; url: string; logs: LogCapture }> {
  const config = loadConfig({
    env: {},
    overrides: {
      server: { port: 0, shutdownGraceMs: 500 },
      upstream: { baseUrl: s.url },
      log: { pretty: false },
      limits: [{ name: 'all', match: ['/**'], per: 'project', rate: 40, burst: 10, concurrency: 4 }],
      // Generous: on a loaded machine a 250 ms timeout would degrade to local buckets and hide the topology.
      cluster: { redisUrl, keyPrefix, leaseMs, commandTimeoutMs: 2000, expectedReplicas: 2 },
    },
  });
  const logs = new LogCapture();
  const gw = await buildGateway(config, { logDestination: logs });
  return { gw, url: await gw.listen(), logs };
}

/** `loops` loops per (gateway, project) for `ms`: answers by status. */
async function load(urls: string[], projects: string[], loops: number, ms: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const end = Date.now() + ms;
  const work: Promise<void>[] = [];
  for (const url of urls)
    for (const project of projects)
      for (let i = 0; i < loops; i++)
        work.push(
          (async () => {
            while (Date.now() < end) {
              const res = await fetch(`${url}/api/v1/projects/${project}/assets?limit=1`, {
                headers: { authorization: `Bearer tok-${project}` },
                signal: AbortSignal.timeout(10_000),
              });
              await res.arrayBuffer();
              statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
            }
          })(),
        );
  await Promise.all(work);
  return statuses;
}

describe('cluster.redisUrl forms', () => {
  it('parses one Redis, a Redis Cluster and Sentinels', () => {
    expect(parseRedisTarget('redis://127.0.0.1:6379/2')).toEqual({ kind: 'single', url: 'redis://127.0.0.1:6379/2' });
    expect(parseRedisTarget('redis-cluster://:pw@10.0.0.1:7000,10.0.0.2')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 6379 },
      ],
      auth: { password: 'pw' },
      tls: false,
    });
    expect(parseRedisTarget('rediss-sentinel://u:p%40ss@s1:26380,s2/mymaster/3')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26380 },
        { host: 's2', port: 26379 },
      ],
      name: 'mymaster',
      db: 3,
      auth: { username: 'u', password: 'p@ss' },
      tls: true,
    });
    expect(() => parseRedisTarget('redis-sentinel://s1:26379')).toThrow(/names the master/);
  });
});

describe.skipIf(!hasRedisServer || !hasRedisCli)('Redis Cluster', () => {
  let ports: number[] = [];
  beforeAll(async () => {
    ports = await freePorts(3);
    for (const port of ports)
      redisServer([
        ...base,
        '--port',
        String(port),
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        '2000',
      ]);
    for (const port of ports) await until(`redis on ${port}`, async () => (await cmd(port, 'PING')) === 'PONG');
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8' },
    );
    expect(create.status, create.stdout + create.stderr).toBe(0);
    await until('the cluster to be ok', async () =>
      ports.every(Boolean) ? String(await cmd(ports[0], 'CLUSTER', 'INFO')).includes('cluster_state:ok') : false,
    );
  }, 30_000);

  it('replicas share the quota of each project; one project per slot, leases renewed on every node', async () => {
    const s = await startSimulator({
      tree: false,
      project: { rate: 40, burst: 10, concurrency: 4 },
      chargeThrottled: true,
    });
    const url = `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
    const keyPrefix = `cdfgw-test-${process.pid}`;
    const gws = await Promise.all([1, 2].map(() => gatewayOn(s, url, keyPrefix, 600)));
    try {
      for (const { gw } of gws) expect(gw.store.status()).toEqual({ mode: 'redis', healthy: true });
      // Several projects, so that their keys land on different nodes.
      const projects = ['alpha', 'bravo', 'charlie', 'delta'];
      const seconds = 2;
      const urls = gws.map((g) => g.url);
      const statuses = await load(urls, projects, 3, seconds * 1000);
      expect([...statuses.keys()]).toEqual([200]);
      // Every decision was taken in the cluster: never degraded to local buckets.
      for (const { logs } of gws) expect(logs.raw.filter((l) => l.includes('degraded'))).toEqual([]);
      const stats = s.stats();
      for (const p of projects) {
        // Each project's quota once, however many replicas.
        expect(stats.byIdentity[`tok-${p}`].ok).toBeLessThanOrEqual(1.3 * 40 * seconds + 10);
        expect(stats.byIdentity[`tok-${p}`].ok).toBeGreaterThanOrEqual(0.5 * 40 * seconds);
      }

      const cluster = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })));
      try {
        await new Promise((resolve) => cluster.once('ready', resolve));
        const keys: string[] = [];
        let nodesWithKeys = 0;
        for (const node of cluster.nodes('master')) {
          const here = await node.keys(`${keyPrefix}:*`);
          keys.push(...here);
          if (here.length > 0) nodesWithKeys++;
        }
        const slots = new Map<string, Set<number>>();
        for (const key of keys) {
          const project = /\{(\w+)\}/.exec(key)![1];
          const slot = Number(await cluster.cluster('KEYSLOT', key));
          slots.set(project, (slots.get(project) ?? new Set()).add(slot));
        }
        expect([...slots.keys()].sort()).toEqual(projects);
        for (const set of slots.values()) expect(set.size).toBe(1);
        // The projects are not all on one node.
        expect(nodesWithKeys).toBeGreaterThan(1);

        // Calls outliving leaseMs (600 ms) keep their leases: renewal reaches every node.
        const slow = projects.map((p) =>
          fetch(`${urls[0]}/api/v1/projects/${p}/_sim/slow?ms=1500`, { headers: { authorization: `Bearer tok-${p}` } }),
        );
        // An expired lease stays in its set until a take removes it, so a count alone proves nothing: wait, on
        // Redis's clock, past each lease's first expiry until none is still at or before it (renewed on its node).
        const leaseKey = (p: string) => `${keyPrefix}:{${p}}:all:${p}:leases`;
        const first = new Map<string, number>();
        await until('every slow call to hold its lease', async () => {
          for (const p of projects) {
            const score = await cluster.zrange(leaseKey(p), 0, -1, 'WITHSCORES');
            if (score.length !== 2) return false;
            first.set(p, Number(score[1]));
          }
          return true;
        });
        const latest = Math.max(...first.values());
        await until('the leases renewed past their first expiry', async () => {
          const [sec, usec] = await cluster.time();
          if (Number(sec) * 1000 + Number(usec) / 1000 <= latest) return false;
          for (const p of projects) if ((await cluster.zcount(leaseKey(p), '-inf', first.get(p)!)) > 0) return false;
          return true;
        });
        for (const p of projects) expect(await cluster.zcard(leaseKey(p))).toBe(1);
        for (const res of await Promise.all(slow)) expect(res.status).toBe(200);
        for (const key of keys) await cluster.del(key);
      } finally {
        cluster.disconnect();
      }
    } finally {
      for (const { gw } of gws) await gw.close();
      await s.close();
    }
  });
});

describe.skipIf(!hasRedisServer)('Redis Sentinel', () => {
  it('follows the master the Sentinel names, and a failover to the replica', async () => {
    const [master, replica, sentinel] = await freePorts(3);
    redisServer([...base, '--port', String(master)]);
    redisServer([...base, '--port', String(replica), '--replicaof', '127.0.0.1', String(master)]);
    const conf = join(dir, `sentinel-${sentinel}.conf`);
    writeFileSync(
      conf,
      [
        `port ${sentinel}`,
        'bind 127.0.0.1',
        `sentinel monitor cdfgw 127.0.0.1 ${master} 1`,
        'sentinel down-after-milliseconds cdfgw 500',
        'sentinel failover-timeout cdfgw 2000',
        '',
      ].join('\n'),
    );
    const sentinelProcess = spawn('redis-server', [conf, '--sentinel'], { cwd: dir, stdio: 'ignore' });
    children.push(sentinelProcess);
    await until('the replica to sync', async () =>
      String(await cmd(replica, 'INFO', 'replication')).includes('master_link_status:up'),
    );
    await until('the sentinel to see the replica', async () => {
      const replicas = (await cmd(sentinel, 'SENTINEL', 'REPLICAS', 'cdfgw')) as unknown[];
      return replicas.length === 1;
    });

    const s = await startSimulator({
      tree: false,
      project: { rate: 40, burst: 10, concurrency: 4 },
      chargeThrottled: true,
    });
    const { gw, url } = await gatewayOn(s, `redis-sentinel://127.0.0.1:${sentinel}/cdfgw`, `cdfgw-test-${process.pid}`);
    try {
      expect(gw.store.status()).toEqual({ mode: 'redis', healthy: true });
      expect([...(await load([url], ['test'], 2, 500)).keys()]).toEqual([200]);
      expect(((await cmd(master, 'KEYS', 'cdfgw-test-*')) as string[]).length).toBeGreaterThan(0);

      // The master dies: the Sentinel promotes the replica, and the store follows it there.
      const masterProcess = children[children.length - 3];
      masterProcess.kill('SIGKILL');
      await until(
        'the failover',
        async () => String(await cmd(replica, 'INFO', 'replication')).includes('role:master'),
        15_000,
      );
      // Calls never fail meanwhile (local share while degraded), and the store is shared again after.
      const during = await load([url], ['test'], 2, 500);
      expect([...during.keys()]).toEqual([200]);
      await until('the store to be healthy on the new master', async () => {
        await load([url], ['test'], 1, 100);
        return gw.store.status().healthy;
      });
      await until(
        'keys on the new master',
        async () => ((await cmd(replica, 'KEYS', 'cdfgw-test-*:tokens')) as string[]).length > 0,
      );
    } finally {
      await gw.close();
      await s.close();
    }
  }, 40_000);
});
