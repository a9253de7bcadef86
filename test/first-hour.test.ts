/**
 * The first hour of a newcomer: the README's quick start on a fresh clone, `--help` on every entry point,
 * and an upstream failure that an operator can see in the log.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { startStack } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const temp = mkdtempSync(join(tmpdir(), 'cdfgw-first-hour-'));

afterAll(() => {
  rmSync(temp, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** A shell command as a user types it; killed when it outlives `limitMs`. */
function sh(command: string, cwd: string, limitMs: number, env: Record<string, string> = {}): Promise<Run> {
  const base = { ...process.env };
  for (const name of ['GATEWAY_CONFIG', 'CDF_BASE_URL', 'PORT', 'HOST', 'LOG_LEVEL']) delete base[name];
  // npm sets these for `npm test`; a user's shell has none of them.
  for (const name of Object.keys(base)) if (name.startsWith('npm_')) delete base[name];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], {
      cwd,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c;
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c;
    });
    const guard = setTimeout(() => {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    }, limitMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

describe('--help', () => {
  it.each([
    ['npm start -- --help', ['--config', 'GATEWAY_CONFIG', 'CDF_BASE_URL', 'config/default.yaml']],
    ['npm run demo -- --help', ['--seconds', '--page-limit', '--stay', '--oversubscribe', '--scenario']],
    ['npm run sim -- --help', ['--port', 'default 4000', 'Covers:', 'RAW']],
  ])('%s answers with the options and exit 0', async (command, words) => {
    const run = await sh(command, ROOT, 30_000);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);
    for (const word of words) expect(run.stdout).toContain(word);
  });
});

describe('an upstream failure', () => {
  it('is logged at warn with its attempts', async () => {
    const stack = await startStack({ retry: { maxAttempts: 2, baseDelayMs: 0, maxDelayMs: 0 } });
    try {
      stack.sim.inject({ status: 502, count: 10, match: '/assets' });
      const res = await fetch(`${stack.url}/api/v1/projects/p/assets?limit=1`, {
        headers: { authorization: 'Bearer first-hour' },
      });
      expect(res.status).toBe(502);
      await res.arrayBuffer();
      const ok = await fetch(`${stack.url}/api/v1/projects/p/events?limit=1`, {
        headers: { authorization: 'Bearer first-hour' },
      });
      expect(ok.status).toBe(200);
      await ok.arrayBuffer();
      // A request's line is written once its answer has gone: wait for both instead of a fixed pause.
      await vi.waitFor(() => expect(stack.logs.requests()).toHaveLength(2), { timeout: 10_000 });
      const lines = stack.logs.requests();
      const failed = lines.find((l) => l.path === '/api/v1/projects/p/assets');
      expect(failed).toMatchObject({ level: 40, status: 502, attempts: 2 });
      expect(lines.find((l) => l.path === '/api/v1/projects/p/events')).toMatchObject({ level: 30, status: 200 });
    } finally {
      await stack.close();
    }
  });
});

describe("the README's quick start", () => {
  it('runs as written on a fresh clone and ends by itself with 0 in under two minutes', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const quickStart = /## Quick start\s+```sh\n([^\n]*)\n/.exec(readme);
    expect(quickStart, 'README has a Quick start with a sh block').not.toBeNull();
    const command = (quickStart as RegExpExecArray)[1].replace(/\s+#.*$/, '').trim();
    expect(command).toBe('npm ci && npm run demo');

    const clone = join(temp, 'clone');
    const cloned = await sh(`git clone --quiet --no-hardlinks "${ROOT}" "${clone}"`, temp, 60_000);
    expect(cloned.code, cloned.stderr).toBe(0);
    // npm's own cache stands in for the network (CI ran npm ci just before); the command is the README's.
    const run = await sh(command, clone, 150_000, {
      npm_config_prefer_offline: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
    });
    expect(run.code, `${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}`).toBe(0);
    expect(run.ms).toBeLessThan(120_000);
    expect(run.stderr).not.toContain('EBADENGINE');
    expect(run.stdout).toContain('straight to CDF');
    expect(run.stdout).toContain('through the gateway');
    expect(run.stdout).toMatch(/dashboard was at http:\/\/127\.0\.0\.1:\d+\/dashboard/);
  }, 240_000);
});
