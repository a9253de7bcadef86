import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../src/sim/index.js';
import { TOKEN } from './helpers.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const P = '/api/v1/projects/p';
const MiB = 1024 * 1024;

interface Child {
  proc: ChildProcess;
  url: string;
  port: number;
  /** Parsed stdout log lines so far. */
  lines: Array<Record<string, unknown>>;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line `msg` names. */
  waitFor(msg: string): Promise<Record<string, unknown>>;
}

/** `node dist/main.js` in its own process, configured by the environment like an operator would. */
async function spawnGateway(
  upstream: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<Child> {
  const base = { ...process.env };
  for (const name of ['GATEWAY_CONFIG', 'CDF_BASE_URL', 'PORT', 'HOST', 'LOG_LEVEL']) delete base[name];
  const proc = spawn(process.execPath, [...nodeArgs, MAIN], {
    env: { ...base, CDF_BASE_URL: upstream, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ msg: string; resolve: (line: Record<string, unknown>) => void }> = [];
  let pending = '';
  let err = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (text: string) => {
    pending += text;
    let nl = pending.indexOf('\n');
    while (nl !== -1) {
      const raw = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
      try {
        const line = JSON.parse(raw) as Record<string, unknown>;
        lines.push(line);
        for (const w of waiters.filter((x) => x.msg === line.msg)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      } catch {
        // not a JSON line
      }
    }
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (text: string) => {
    err += text;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const waitFor = (msg: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const seen = lines.find((l) => l.msg === msg);
      if (seen) return resolve(seen);
      waiters.push({ msg, resolve });
      void exited.then(({ code }) => reject(new Error(`gateway exited (${code}) before "${msg}": ${err}`)));
    });
  const listening = await waitFor('cdf-gateway listening');
  const url = String(listening.url);
  return { proc, url, port: Number(new URL(url).port), lines, stderr: () => err, exited, waitFor };
}

interface Answer {
  status: number;
  body: string;
}

/** One request on a fresh connection (no keep-alive pool to confuse the drain). */
function call(url: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = get(`${url}${path}`, { agent: false, headers: { authorization: TOKEN } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** True when a new TCP connection to the port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

describe('gateway process lifecycle', () => {
  let sim: Simulator;
  let child: Child | undefined;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset());
  afterEach(async () => {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    child = undefined;
  });

  it('answers /readyz and /healthz with 200 once listening, and proxies', async () => {
    child = await spawnGateway(sim.url);
    const ready = await call(child.url, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body).status).toBe('ready');
    expect((await call(child.url, '/healthz')).status).toBe(200);
    const proxied = await call(child.url, `${P}/_sim/echo`);
    expect(proxied.status).toBe(200);
    expect(sim.stats().calls).toBe(1);
  });

  it('runs as it ships, without the modules an idle sidecar need not hold', async () => {
    // npm start's node flags, which the image's CMD and the bin repeat (test/docker.test.ts; docs/design.md,
    // "Idle footprint").
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8'));
    const start = (pkg as { scripts: { start: string } }).scripts.start.split(' ');
    expect(start).toEqual(['node', '--v8-pool-size=1', 'dist/main.js']);
    const probe = fileURLToPath(new URL('./fixtures/loaded-modules.cjs', import.meta.url));
    child = await spawnGateway(sim.url, {}, [...start.slice(1, -1), '--require', probe]);
    // A read and a write through the pool, a 404 from fastify and the admin routes: every path of a warm sidecar.
    expect((await call(child.url, `${P}/assets?limit=2`)).status).toBe(200);
    expect((await call(child.url, `${P}/_sim/echo`)).status).toBe(200);
    expect((await call(child.url, '/nowhere')).status).toBe(404);
    expect((await call(child.url, '/metrics')).status).toBe(200);
    const before = child.stderr().length;
    child.proc.kill('SIGUSR2');
    await until(() => child!.stderr().slice(before).includes('loadedModules'), 'the module list');
    const line = child
      .stderr()
      .slice(before)
      .split('\n')
      .find((l) => l.includes('loadedModules')) as string;
    const { loadedModules, bundledUndici } = JSON.parse(line) as { loadedModules: string[]; bundledUndici: boolean };
    const loaded = (prefix: string) => loadedModules.some((m) => m.startsWith(prefix));
    expect(loaded('undici/lib/dispatcher/pool.js')).toBe(true);
    expect(loaded('fastify/')).toBe(true);
    // undici's pool without its index, whose cookie helpers read globalThis.Headers and so load node's
    // bundled undici too (src/proxy/upstream.ts).
    expect(loadedModules).not.toContain('undici/index.js');
    expect(bundledUndici).toBe(false);
    // Not resident: fastify's schema compilers (no route has a schema); yaml (released once the settings are read).
    expect(loaded('ajv/')).toBe(false);
    expect(loaded('fast-json-stringify/index.js')).toBe(false);
    expect(loaded('yaml/')).toBe(false);
    // prom-client's parts without its index, whose default CPU metric loads @opentelemetry/api for exemplars
    // (src/metrics/prom.ts); /metrics was scraped above, so the process metrics were read.
    expect(loaded('prom-client/lib/registry.js')).toBe(true);
    expect(loaded('prom-client/index.js')).toBe(false);
    expect(loaded('@opentelemetry/')).toBe(false);
  });

  it('writes its log lines in batches while it runs, and what waits when it crashes', async () => {
    const crash = fileURLToPath(new URL('./fixtures/crash-on-signal.cjs', import.meta.url));
    child = await spawnGateway(sim.url, {}, ['--require', crash]);
    // Lines reach stdout while the process runs (within src/log.ts's LOG_FLUSH_MS), not only at exit.
    for (let i = 0; i < 3; i++) expect((await call(child.url, `${P}/assets?limit=1&i=${i}`)).status).toBe(200);
    await until(() => child!.lines.filter((l) => l.msg === 'request').length === 3, 'three request lines');
    expect(child.proc.exitCode).toBe(null);
    // A line still in the batch when the process crashes is written by the exit hook: the crash comes well
    // inside the flush window after the answer.
    expect((await call(child.url, `${P}/assets?limit=1&i=last`)).status).toBe(200);
    await sleep(10);
    child.proc.kill('SIGUSR2');
    const { code } = await child.exited;
    expect(code).toBe(1);
    expect(child.stderr()).toContain('crash requested by the test');
    const paths = child.lines.filter((l) => l.msg === 'request').map((l) => l.path);
    expect(paths).toHaveLength(4);
  });

  it('on SIGTERM finishes the request in flight, refuses new connections, and exits 0', async () => {
    child = await spawnGateway(sim.url);
    const port = child.port;
    const slow = call(child.url, `${P}/_sim/slow?ms=1500`);
    let slowDone = false;
    void slow.then(
      () => {
        slowDone = true;
      },
      () => {
        slowDone = true;
      },
    );
    await until(() => sim.stats().inFlight === 1, 'the slow call to reach the simulator');

    child.proc.kill('SIGTERM');
    await child.waitFor('draining: finishing requests in flight');
    let wasRefused = false;
    for (let i = 0; i < 50 && !wasRefused && !slowDone; i++) {
      wasRefused = await refused(port);
      if (!wasRefused) await sleep(20);
    }
    expect(wasRefused).toBe(true);
    // Refused while the slow call was still going.
    expect(slowDone).toBe(false);

    const answer = await slow;
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('{}');
    const { code, signal } = await child.exited;
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(child.stderr()).toBe('');
    const last = child.lines.filter((l) => l.msg === 'request').map((l) => `${l.path} ${l.status}`);
    expect(last).toEqual([`${P}/_sim/slow 200`]);
  });

  it('answers /readyz 503 on a connection that was open when SIGTERM came', async () => {
    child = await spawnGateway(sim.url);
    // A slow call keeps the connection busy, so the drain leaves it open; a pipelined /readyz follows it.
    const socket = connect(child.port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      received += c;
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    socket.write(`GET ${P}/_sim/slow?ms=1500 HTTP/1.1\r\nHost: gw\r\nAuthorization: ${TOKEN}\r\n\r\n`);
    await until(() => sim.stats().inFlight === 1, 'the slow call to reach the simulator');
    child.proc.kill('SIGTERM');
    await child.waitFor('draining: finishing requests in flight');
    socket.write('GET /readyz HTTP/1.1\r\nHost: gw\r\n\r\n');
    const { code } = await child.exited;
    await closed;
    expect(code).toBe(0);
    const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 503]);
    expect(received).toContain('"status":"draining"');
    expect(received).not.toContain('"status":"ready"');
  });

  it('on SIGINT finishes the request in flight and exits 0', async () => {
    child = await spawnGateway(sim.url);
    const slow = call(child.url, `${P}/_sim/slow?ms=1500`);
    await until(() => sim.stats().inFlight === 1, 'the slow call to reach the simulator');
    child.proc.kill('SIGINT');
    const answer = await slow;
    expect(answer.status).toBe(200);
    const { code, signal } = await child.exited;
    expect(signal).toBeNull();
    expect(code).toBe(0);
  });

  it('does not wait for an idle keep-alive connection on SIGTERM', async () => {
    // With a grace far beyond the test timeout, the process exits in time only if the idle connection is closed.
    const dir = mkdtempSync(join(tmpdir(), 'cdfgw-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, 'server:\n  shutdownGraceMs: 600000\n');
    child = await spawnGateway(sim.url, { GATEWAY_CONFIG: file });
    const socket = connect(child.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise<void>((resolve) => {
      let got = '';
      socket.on('data', (c: Buffer) => {
        got += c.toString();
        if (got.includes('\r\n\r\n') && got.includes('"status"')) resolve();
      });
      socket.write('GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n');
    });
    const serverClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    child.proc.kill('SIGTERM');
    await serverClosed;
    const { code } = await child.exited;
    expect(code).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams a 512 MiB download through with the gateway RSS under 300 MiB', async () => {
    child = await spawnGateway(sim.url);
    const pid = child.proc.pid!;
    const total = 512 * MiB;
    let maxRss = rssKiB(pid);
    let samples = 0;
    const sampler = setInterval(() => {
      try {
        maxRss = Math.max(maxRss, rssKiB(pid));
        samples++;
      } catch {
        // process gone
      }
    }, 200);
    let received = 0;
    let status = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        const req = request(
          `${child!.url}${P}/_sim/blob?bytes=${total}`,
          { agent: false, headers: { authorization: TOKEN } },
          (res) => {
            status = res.statusCode ?? 0;
            res.on('data', (c: Buffer) => {
              received += c.length;
            });
            res.on('end', resolve);
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end();
      });
    } finally {
      clearInterval(sampler);
    }
    maxRss = Math.max(maxRss, rssKiB(pid));
    expect(status).toBe(200);
    expect(received).toBe(total);
    expect(samples).toBeGreaterThan(0);
    expect(maxRss * 1024).toBeLessThan(300 * MiB);
  });
});
