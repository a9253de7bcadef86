// Child processes for the benchmarks: spawn (pinned to a core with taskset), wait until they answer HTTP,
// read their CPU time and memory from /proc, and stop them. Only processes started here are ever killed,
// and only by their own pid.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const NODE = process.execPath;
/** The core the proxy under test runs on; the upstream and the load generator share the other one. */
export const PROXY_CORE = 1;
export const LOAD_CORE = 0;
export const PINNING = `proxy under test pinned to core ${PROXY_CORE}; upstream (simulator) and load generator pinned to core ${LOAD_CORE} (taskset -c)`;

const CLK_TCK = 100; // getconf CLK_TCK on Linux
const children = new Set();
const HAS_TASKSET = existsSync('/usr/bin/taskset') || existsSync('/bin/taskset');

/**
 * Starts `cmd args` pinned to `core` (null: not pinned). stdout: 'ignore', 'inherit', 'pipe' or a file path
 * (the output of a proxy goes to a file or /dev/null, never to a pipe this process has to read).
 * `nofile`: raise the open-files limit first (bash -c 'ulimit -n N; exec ...'); exec keeps the pid.
 */
export function start(name, cmd, args, { core = null, env = {}, stdout = 'ignore', nofile = 0, cwd = ROOT } = {}) {
  let argv = [cmd, ...args];
  if (core !== null && HAS_TASKSET) argv = ['taskset', '-c', String(core), ...argv];
  if (nofile > 0)
    argv = ['bash', '-c', `ulimit -n ${nofile} 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$0" "$@"`, ...argv];
  let out = stdout;
  let fd = null;
  if (stdout !== 'ignore' && stdout !== 'inherit' && stdout !== 'pipe') {
    fd = openSync(stdout, 'w');
    out = fd;
  }
  const child = spawn(argv[0], argv.slice(1), { cwd, env: { ...process.env, ...env }, stdio: ['ignore', out, 'pipe'] });
  if (fd !== null) closeSync(fd);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s) => {
    stderr = (stderr + s).slice(-4000);
  });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    });
  });
  const proc = {
    name,
    child,
    pid: child.pid,
    exited,
    stderr: () => stderr,
    alive: () => child.exitCode === null && child.signalCode === null,
  };
  children.add(proc);
  return proc;
}

/** Starts a node script (ESM) pinned to a core. */
export function startNode(name, script, args = [], opts = {}) {
  return start(name, NODE, [script, ...args], opts);
}

/** A free TCP port on loopback (bound then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Waits until `url` answers over HTTP (any status), or throws with the process's stderr. */
export async function waitForHttp(proc, url, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (proc && !proc.alive()) throw new Error(`${proc.name} exited before answering ${url}: ${proc.stderr()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return;
    } catch {
      if (Date.now() > until)
        throw new Error(`${proc?.name ?? url} did not answer ${url} in ${timeoutMs} ms: ${proc?.stderr() ?? ''}`);
      await sleep(50);
    }
  }
}

/** utime+stime of a process in µs (from /proc/PID/stat). */
export function cpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}

/** CPU time of this process and of its children it has waited for (cutime/cstime), in µs. */
export function selfAndReapedMicros() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1e6) / CLK_TCK;
}

/** Busy CPU time of the whole machine (all cores, from /proc/stat), in µs. */
export function machineBusyMicros() {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const n = v.slice(0, 8).map(Number); // user nice system idle iowait irq softirq steal
  return ((n[0] + n[1] + n[2] + n[5] + n[6] + n[7]) * 1e6) / CLK_TCK;
}

/**
 * Measures CPU used on this machine by anything that is not this process or its children (other people's
 * builds and tests): a run that overlaps with such work gives figures that are not comparable.
 * `pids()`: this process's live children (their CPU is not yet in cutime).
 */
export function backgroundMeter(pids = livePids) {
  const cores = Math.max(1, availableParallelism());
  const sample = () => {
    let ours = selfAndReapedMicros();
    for (const pid of pids()) {
      try {
        ours += cpuMicros(pid);
      } catch {}
    }
    return { busy: machineBusyMicros(), ours, t: performance.now() };
  };
  const a = sample();
  return {
    /** Share of the whole machine (0..1) used by others since the meter was made. */
    share() {
      const b = sample();
      const wall = (b.t - a.t) * 1000 * cores;
      return wall > 0 ? Math.max(0, (b.busy - a.busy - (b.ours - a.ours)) / wall) : 0;
    },
  };
}

/** Resident memory now and at its peak (VmHWM), in MiB. */
export function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
}

/** SIGTERM, then SIGKILL after `graceMs`; by pid, this process's own children only. */
export async function stop(proc, graceMs = 3000) {
  if (!proc?.alive()) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (proc.alive()) proc.child.kill('SIGKILL');
  }, graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/** Pids of the children started here that are still running. */
export function livePids() {
  return [...children].filter((p) => p.alive()).map((p) => p.pid);
}

export async function stopAll() {
  await Promise.all([...children].map((p) => stop(p, 1000)));
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const p of children) if (p.alive()) p.child.kill('SIGKILL');
    process.exit(130);
  });
}
process.once('exit', () => {
  for (const p of children) if (p.alive()) p.child.kill('SIGKILL');
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs a child to completion and returns its stdout (for short-lived tools such as autocannon). */
export async function run(name, cmd, args, opts = {}) {
  const proc = start(name, cmd, args, { ...opts, stdout: 'pipe' });
  let out = '';
  proc.child.stdout.setEncoding('utf8');
  proc.child.stdout.on('data', (s) => {
    out += s;
  });
  const ended = new Promise((resolve) => proc.child.stdout.once('close', resolve));
  const [{ code, signal }] = await Promise.all([proc.exited, ended]);
  if (code !== 0) throw new Error(`${name} failed (${code ?? signal}): ${proc.stderr()}`);
  return out;
}
