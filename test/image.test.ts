/**
 * Issue #28: the image, built from the Dockerfile by scripts/build-image.sh (Debian's buildah, no daemon),
 * run as it ships against the simulator on the host: its own entrypoint and CMD, as its own user, in its
 * own filesystem (`buildah run --isolation chroot --network host`). Needs buildah and root: skipped with a
 * hint without them, required under CI.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../src/sim/index.js';
import { args, cmd, envOf, healthcheckCommand, runStage } from './dockerfile.js';
import { httpGet } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '..');
const exec = promisify(execFile);
const inCi = Boolean(process.env.CI);
const haveBuildah = spawnSync('buildah', ['--version']).status === 0;
const isRoot = process.getuid?.() === 0;
const HOW_TO = 'as root, apt-get install buildah debootstrap (scripts/build-image.sh builds the image)';
if (!(haveBuildah && isRoot) && !inCi) {
  console.warn(`image.test.ts skipped: ${haveBuildah ? 'not root' : 'no buildah'}; ${HOW_TO}`);
}

/** The image's configuration as `buildah inspect` gives it (Docker's format, which keeps HEALTHCHECK). */
interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[] | null;
  Cmd: string[];
  WorkingDir: string;
  ExposedPorts?: Record<string, unknown>;
  Healthcheck?: { Test: string[]; Interval: number; Timeout: number; Retries: number };
}

const buildah = (...argv: string[]) => exec('buildah', argv, { maxBuffer: 64 * 1024 * 1024 });

/** `buildah run` argv: COMMAND in the container's filesystem as USER, on the host's network (loopback). */
const runArgv = (container: string, user: string, env: Record<string, string>, command: string[]) => [
  'run',
  '--isolation',
  'chroot',
  '--network',
  'host',
  '--user',
  user,
  ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
  container,
  '--',
  ...command,
];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The processes below `pid`, from /proc (chroot isolation shares the host's PID namespace). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const found: number[] = [];
  for (let queue = [pid]; queue.length > 0; ) {
    const next = children.get(queue.shift()!) ?? [];
    found.push(...next);
    queue.push(...next);
  }
  return found;
}

const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);

/** What a write changes, for every path of a root filesystem: its kind, mode, owner and size, and its mtime. */
function snapshot(rootfs: string): Map<string, { stat: string; mtimeMs: number }> {
  const out = new Map<string, { stat: string; mtimeMs: number }>();
  for (const entry of readdirSync(rootfs, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    const s = lstatSync(path);
    out.set(relative(rootfs, path), { stat: `${s.mode} ${s.uid}:${s.gid} ${s.size}`, mtimeMs: s.mtimeMs });
  }
  return out;
}

/** The gateway's JSON log lines from the container's stdout, and its stderr. */
function watch(child: ChildProcess) {
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) {
      try {
        lines.push(JSON.parse(line));
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const line = async (msg: string) => {
    await until(`"${msg}" (stderr: ${stderr})`, () => lines.some((l) => l.msg === msg) || child.exitCode !== null);
    const found = lines.find((l) => l.msg === msg);
    if (!found) throw new Error(`exited with ${child.exitCode} before "${msg}"; stderr: ${stderr}`);
    return found;
  };
  return { lines, exited, line, stderr: () => stderr };
}

describe.runIf(inCi)('image: CI', () => {
  it('has buildah and root', () => {
    expect(haveBuildah && isRoot, `the image test is required in CI: ${HOW_TO}`).toBe(true);
  });
});

describe.skipIf(!(haveBuildah && isRoot))('the image, built and run', () => {
  const container = `cdf-gateway-image-test-${process.pid}`;
  let config: ImageConfig;
  let rootfs: string;
  let before: ReturnType<typeof snapshot>;
  let sim: Simulator;
  let env: Record<string, string>;
  let gateway: ChildProcess | undefined;
  let gatewayPid = 0;
  let watched: ReturnType<typeof watch>;
  let url: string;
  let adminUrl: string;

  /** The Dockerfile's HEALTHCHECK, as Docker runs it: in the container, as its user, with its environment. */
  const healthcheck = () => exec('buildah', runArgv(container, config.User, env, healthcheckCommand()));

  // A build from nothing (the stand-in and every layer) takes a few minutes; an up-to-date image, a second.
  beforeAll(async () => {
    const { stdout } = await exec('bash', [join(ROOT, 'scripts/build-image.sh')], {
      cwd: ROOT,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 900_000,
    });
    const imageId = stdout.trim().split('\n').at(-1)!;
    expect(imageId).toMatch(/^[0-9a-f]{64}$/);
    const inspected = JSON.parse((await buildah('inspect', '--type', 'image', imageId)).stdout);
    config = (inspected as { Docker: { config: ImageConfig } }).Docker.config;
    await buildah('from', '--pull=never', '--name', container, imageId);
    rootfs = (await buildah('mount', container)).stdout.trim();
    // buildah's own bookkeeping in the container (mount points under /run) is made by a first run.
    await exec('buildah', runArgv(container, config.User, {}, ['true']));
    before = snapshot(rootfs);
    sim = await startSimulator({ port: 0 });
    env = {
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      METRICS_PORT: String(await freePort()),
      CDF_BASE_URL: sim.url,
    };
  }, 900_000);

  afterAll(async () => {
    if (gateway && gateway.exitCode === null) {
      if (gatewayPid) process.kill(gatewayPid, 'SIGKILL');
      gateway.kill('SIGKILL');
    }
    await sim?.close();
    await buildah('rm', container).catch(() => undefined);
  });

  it('is the image the Dockerfile describes, without the build secret or the dev dependencies', () => {
    expect(config.User).toBe(args('USER')[0]);
    expect(config.WorkingDir).toBe(args('WORKDIR').at(-1));
    expect(config.Cmd).toEqual(cmd());
    expect(Object.keys(config.ExposedPorts ?? {})).toEqual(args('EXPOSE').map((p) => `${p}/tcp`));
    const imageEnv = Object.fromEntries(
      config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
    expect(imageEnv).toMatchObject(envOf(runStage));
    expect(imageEnv.METRICS_PORT).toBe('9464');
    // The npm_ca secret and its build argument stayed in the build.
    expect(Object.keys(imageEnv).filter((k) => /cafile|_CA_/i.test(k))).toEqual([]);
    expect(existsSync(join(rootfs, 'run/secrets/npm_ca'))).toBe(false);
    // HEALTHCHECK survived the build (OCI's format would have dropped it) with the Dockerfile's options.
    const options = Object.fromEntries(
      [...args('HEALTHCHECK')[0].matchAll(/--([a-z-]+)=(\S+)/g)].map((m) => [m[1], m[2]]),
    );
    expect(config.Healthcheck?.Test).toEqual(['CMD', ...healthcheckCommand()]);
    expect(`${(config.Healthcheck?.Interval ?? 0) / 1e9}s`).toBe(options.interval);
    expect(`${(config.Healthcheck?.Timeout ?? 0) / 1e9}s`).toBe(options.timeout);
    expect(String(config.Healthcheck?.Retries)).toBe(options.retries);
    // dist/, config/ and the production dependencies, root's and read-only for the gateway.
    const app = join(rootfs, config.WorkingDir);
    expect(existsSync(join(app, 'dist/main.js'))).toBe(true);
    expect(existsSync(join(app, 'config/default.yaml'))).toBe(true);
    expect(existsSync(join(app, 'node_modules/fastify'))).toBe(true);
    expect(existsSync(join(app, 'node_modules/vitest'))).toBe(false);
    expect(existsSync(join(app, 'src'))).toBe(false);
    const main = lstatSync(join(app, 'dist/main.js'));
    expect(main.uid).toBe(0);
    expect(main.mode & 0o022).toBe(0);
  });

  it('runs its CMD as uid 1000: /healthz, a forwarded call, /metrics on the admin port only, a passing HEALTHCHECK', {
    timeout: 60_000,
  }, async () => {
    const command = [...(config.Entrypoint ?? []), ...config.Cmd];
    gateway = spawn('buildah', runArgv(container, config.User, env, command), { stdio: ['ignore', 'pipe', 'pipe'] });
    watched = watch(gateway);
    url = String((await watched.line('cdf-gateway listening')).url);
    adminUrl = String((await watched.line('admin server listening (/metrics, /dashboard)')).url);
    expect(url).toBe(`http://127.0.0.1:${env.PORT}`);
    expect(adminUrl).toBe(`http://127.0.0.1:${env.METRICS_PORT}`);

    // The entrypoint has exec'd the CMD: one node process, the image's user's, chrooted in the image at /app.
    const [pid, ...others] = descendants(gateway.pid!).filter((p) => cmdline(p).join(' ') === config.Cmd.join(' '));
    expect(others).toEqual([]);
    gatewayPid = pid;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(/^Uid:\s+(.*)$/m.exec(status)?.[1].split(/\s+/)).toEqual(['1000', '1000', '1000', '1000']);
    expect(/^Gid:\s+(.*)$/m.exec(status)?.[1].split(/\s+/)).toEqual(['1000', '1000', '1000', '1000']);
    const chroot = readlinkSync(`/proc/${pid}/root`);
    expect(chroot).not.toBe('/');
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(join(chroot, config.WorkingDir));

    expect((await httpGet(`${url}/healthz`)).status).toBe(200);
    const callsBefore = sim.stats().calls;
    const proxied = await httpGet(`${url}/api/v1/projects/image-test/assets?limit=1`, { authorization: 'Bearer t' });
    expect(proxied.status).toBe(200);
    expect(JSON.parse(proxied.body).items).toHaveLength(1);
    expect(sim.stats().calls).toBe(callsBefore + 1);

    expect((await httpGet(`${url}/metrics`)).status).toBe(404);
    const metrics = await httpGet(`${adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^cdf_gateway_requests_total\{[^}]*family="assets"[^}]*\} 1$/m);

    await expect(healthcheck()).resolves.toBeDefined();
  });

  it('drains on SIGTERM: the call in flight completes and it exits 0; its HEALTHCHECK then fails', {
    timeout: 60_000,
  }, async () => {
    expect(gatewayPid, 'the gateway runs (previous test)').toBeGreaterThan(0);
    const slow = httpGet(`${url}/api/v1/projects/image-test/_sim/slow?ms=1500`, { authorization: 'Bearer t' });
    await until('the slow call to reach the simulator', () => sim.stats().inFlight === 1);
    // What `docker stop` does: SIGTERM to the container's main process.
    process.kill(gatewayPid, 'SIGTERM');
    await watched.line('draining: finishing requests in flight');
    const answer = await slow;
    expect(answer.status).toBe(200);
    expect(await watched.exited).toBe(0);
    expect(watched.lines.at(-1)?.msg).toBe('stopped');

    await expect(healthcheck()).rejects.toMatchObject({ code: 1 });
  });

  it('wrote nothing outside /tmp', () => {
    expect(gateway?.exitCode, 'the gateway ran (previous tests)').toBe(0);
    const after = snapshot(rootfs);
    expect(after.size, 'the snapshot sees the whole image').toBeGreaterThan(10_000);
    // Each buildah run, as root, touches the mtime of /run itself (its mount points there); nothing else.
    const outside = [...new Set([...before.keys(), ...after.keys()])].filter((path) => {
      if (path === 'tmp' || path.startsWith('tmp/')) return false;
      const [was, is] = [before.get(path), after.get(path)];
      return was?.stat !== is?.stat || (was?.mtimeMs !== is?.mtimeMs && path !== 'run');
    });
    expect(outside).toEqual([]);
  });
});
