import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildGateway, type Gateway } from '../src/app.js';
import { ConfigReloader, loadConfig, restartOnlyChanges } from '../src/config/index.js';
import { type Simulator, startSimulator } from '../src/sim/index.js';
import { auth, LogCapture } from './helpers.js';

const P = '/api/v1/projects/reload';
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface FileStack {
  gateway: Gateway;
  url: string;
  logs: LogCapture;
  reloader: ConfigReloader;
  close(): Promise<void>;
}

/** A gateway configured by a YAML file like an operator's, with the reloader main.ts sets up. */
async function startFromFile(sim: Simulator, file: string): Promise<FileStack> {
  const load = () =>
    loadConfig({
      env: {},
      file,
      overrides: { server: { port: 0 }, upstream: { baseUrl: sim.url }, log: { pretty: false } },
    });
  const logs = new LogCapture();
  const gateway = await buildGateway(load(), { logDestination: logs });
  const url = await gateway.listen();
  const reloader = new ConfigReloader({
    load,
    apply: (next) => gateway.reconfigure(next),
    onResult: (r) => gateway.telemetry.configReload(r),
    log: gateway.log,
    file,
    debounceMs: 50,
  });
  reloader.watch();
  return {
    gateway,
    url,
    logs,
    reloader,
    async close() {
      reloader.close();
      await gateway.close();
    },
  };
}

const get = (s: FileStack, path: string, headers: Record<string, string> = {}) =>
  fetch(s.url + path, { headers: { ...auth(), ...headers } });

const BASE = {
  limits: [{ name: 'all', match: '/**', per: 'project', rate: 100, burst: 100, concurrency: 10 }],
};

describe('config reload', () => {
  let sim: Simulator;
  let dir: string;
  let stack: FileStack | null = null;
  beforeAll(async () => {
    sim = await startSimulator({ project: { rate: 1000, burst: 1000, concurrency: 100 } });
  });
  afterAll(async () => {
    await sim.close();
  });
  afterEach(async () => {
    await stack?.close();
    stack = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a bad file with one error line naming the key and keeps serving the running config', async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-reload-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, stringify({ ...BASE, cdfVersion: { default: '20230101' } }));
    stack = await startFromFile(sim, file);
    const s = stack;
    writeFileSync(file, stringify({ ...BASE, cdfVersion: { default: '20230101' }, queue: { maxWaitMs: 'soon' } }));
    expect(s.reloader.reload('test')).toBe('failure');
    const refused = s.logs.lines.filter((l) => String(l.msg).startsWith('config reload refused'));
    expect(refused).toHaveLength(1);
    expect(refused[0].level).toBe(50);
    expect(String(refused[0].msg)).toContain('queue.maxWaitMs');
    // Still the old config: the configured cdf-version goes upstream, and the request succeeds.
    expect((await get(s, `${P}/assets`)).status).toBe(200);
    expect(sim.stats().requests.at(-1)?.headers['cdf-version']).toBe('20230101');
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/cdf_gateway_config_reloads_total\{result="failure"\} 1/);
    expect(metrics).toMatch(/cdf_gateway_config_reloads_total\{result="success"\} 0/);
    expect(metrics).toMatch(/cdf_gateway_build_info\{version="\d+\.\d+\.\d+",node="v\d+/);
  });

  it('applies a changed file in place (cache rules, cdf-version) and names the keys that need a restart', async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-reload-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, stringify(BASE));
    stack = await startFromFile(sim, file);
    const s = stack;
    expect((await get(s, `${P}/assets`)).headers.get('x-cache')).toBeNull();

    // Written in place: the directory watch sees it, no signal needed.
    writeFileSync(
      file,
      stringify({
        ...BASE,
        cdfVersion: { default: '20230101' },
        cache: { rules: [{ match: '/assets', ttlMs: 60_000 }] },
        upstream: { timeoutMs: 1234 },
        cluster: { keyPrefix: 'other' },
        circuit: { openMs: 777 },
        retry: { maxAttempts: 2 },
      }),
    );
    await until('the reload', () => s.logs.lines.some((l) => String(l.msg).startsWith('config reloaded')));
    const line = s.logs.lines.find((l) => String(l.msg).startsWith('config reloaded'));
    expect(line?.keys).toEqual(['upstream.timeoutMs', 'cluster.keyPrefix']);
    expect(line?.level).toBe(40);
    expect(s.gateway.config.upstream.timeoutMs).toBe(60000); // restart-only: still what runs
    // Changed in place: the circuit breaker and the forwarder hold these very objects.
    const circuitConfig = s.gateway.config.circuit;
    expect(circuitConfig.openMs).toBe(777);
    expect((s.gateway.circuit as unknown as { config: unknown }).config).toBe(circuitConfig);
    expect(s.gateway.config.retry.maxAttempts).toBe(2);
    sim.inject({ status: 503, count: 2, match: '/assets' });
    expect((await get(s, `${P}/assets`)).status).toBe(503);
    expect(s.logs.requests().at(-1)?.attempts).toBe(2);

    expect((await get(s, `${P}/assets`)).headers.get('x-cache')).toBe('MISS');
    expect((await get(s, `${P}/assets`)).headers.get('x-cache')).toBe('HIT');
    expect(sim.stats().requests.at(-1)?.headers['cdf-version']).toBe('20230101');
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/cdf_gateway_config_reloads_total\{result="success"\} 1/);
    const at = Number(/^cdf_gateway_config_last_reload_success_timestamp_seconds (\S+)$/m.exec(metrics)?.[1]);
    expect(Math.abs(at - Date.now() / 1000)).toBeLessThan(60);
    // The dashboard's header names it too.
    const data = (await (await fetch(`${s.url}/dashboard/data.json`)).json()) as { build: { reloadedAt: number } };
    expect(data.build.reloadedAt).toBe(at);
  });

  it('follows a Kubernetes ConfigMap update (the ..data symlink swapped atomically)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-reload-'));
    const version = (name: string, config: unknown) => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'config.yaml'), stringify(config));
    };
    version('..2026_01', BASE);
    symlinkSync('..2026_01', join(dir, '..data'));
    symlinkSync('..data/config.yaml', join(dir, 'config.yaml'));
    stack = await startFromFile(sim, join(dir, 'config.yaml'));
    const s = stack;

    version('..2026_02', { ...BASE, cdfVersion: { default: '20240101' } });
    symlinkSync('..2026_02', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await until('the reload', () => s.logs.lines.some((l) => l.msg === 'config reloaded'));
    expect((await get(s, `${P}/assets`)).status).toBe(200);
    expect(sim.stats().requests.at(-1)?.headers['cdf-version']).toBe('20240101');
  });

  it('a raised limit takes effect in the same process: queued requests stay queued and go through', async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-reload-'));
    const file = join(dir, 'gateway.yaml');
    const slow = { limits: [{ name: 'all', match: '/**', rate: 1, burst: 1, concurrency: 1 }] };
    // At 1/s the last of five queued would wait 5 s: past maxWaitMs, they would get 429s.
    writeFileSync(file, stringify({ ...slow, queue: { maxWaitMs: 2500, maxQueued: 100 } }));
    stack = await startFromFile(sim, file);
    const s = stack;
    sim.inject({ delayMs: 400, count: 1, match: '/assets' });
    const calls = Array.from({ length: 6 }, () => get(s, `${P}/assets`).then((r) => r.status));
    await until('five queued', () => s.gateway.scheduler.queuedCount() === 5);
    const before = [...s.gateway.scheduler.allBuckets()].filter((b) => b.limit.name === 'all');
    expect(before).toHaveLength(1);
    expect(before[0].inFlight).toBe(1);

    const fast = { limits: [{ name: 'all', match: '/**', rate: 100, burst: 100, concurrency: 10 }] };
    writeFileSync(file, stringify({ ...fast, queue: { maxWaitMs: 2500, maxQueued: 100 } }));
    expect(s.reloader.reload('test')).toBe('success');
    // The same bucket, its slot in use kept, now at the new figures.
    const after = [...s.gateway.scheduler.allBuckets()].filter((b) => b.limit.name === 'all');
    expect(after).toEqual(before);
    expect(after[0]).toBe(before[0]);
    expect(after[0].rate).toBe(100);
    expect(await Promise.all(calls)).toEqual(Array(6).fill(200));
    expect(s.gateway.scheduler.queuedCount()).toBe(0);
    expect(after[0].inFlight).toBe(0);
    // None refused, every request answered once.
    const lines = s.logs.requests();
    expect(lines).toHaveLength(6);
    expect(lines.filter((l) => Number(l.queuedMs) > 0).length).toBeGreaterThanOrEqual(5);
  });

  it('lists restart-only changes down to the key', () => {
    const a = loadConfig({ env: {} });
    const b = loadConfig({ env: { PORT: '9999' }, overrides: { metrics: { port: 9100 }, queue: { maxWaitMs: 5 } } });
    expect(restartOnlyChanges(a, b)).toEqual(['server.port', 'metrics.port']);
  });
});

describe('SIGHUP', () => {
  let proc: ChildProcess | null = null;
  let dir: string;
  afterEach(() => {
    proc?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('reloads the file named by GATEWAY_CONFIG instead of ending the process', async () => {
    const sim = await startSimulator();
    dir = mkdtempSync(join(tmpdir(), 'gw-sighup-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, stringify(BASE));
    const lines: Array<Record<string, unknown>> = [];
    proc = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, CDF_BASE_URL: sim.url, PORT: '0', HOST: '127.0.0.1', GATEWAY_CONFIG: file },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let pending = '';
    proc.stdout!.setEncoding('utf8').on('data', (t: string) => {
      pending += t;
      for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
        lines.push(JSON.parse(pending.slice(0, nl)));
        pending = pending.slice(nl + 1);
      }
    });
    try {
      await until('listening', () => lines.some((l) => l.msg === 'cdf-gateway listening'));
      const url = String(lines.find((l) => l.msg === 'cdf-gateway listening')?.url);
      proc.kill('SIGHUP');
      await until('the reload', () => lines.some((l) => l.msg === 'config reloaded'));
      expect(lines.find((l) => l.msg === 'config reloaded')?.reason).toBe('SIGHUP');
      expect((await fetch(`${url}${P}/assets`, { headers: auth() })).status).toBe(200);
      expect(proc.exitCode).toBeNull();
    } finally {
      await sim.close();
    }
  });
});
