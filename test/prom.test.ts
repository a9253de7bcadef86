import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as promClient from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Counter, collectProcessMetrics, Registry } from '../src/metrics/prom.js';

const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

describe("prom-client's parts without its index", () => {
  it('are those of the exact version package.json pins', () => {
    expect(pkg.dependencies['prom-client']).toMatch(/^\d+\.\d+\.\d+$/);
    expect(require('prom-client/package.json').version).toBe(pkg.dependencies['prom-client']);
  });

  it('are the classes the package exports', () => {
    expect(Registry).toBe(promClient.Registry);
    expect(Counter).toBe(promClient.Counter);
  });

  it('register the process metrics collectDefaultMetrics registers, under the same names and types', async () => {
    const ours = new Registry();
    const theirs = new promClient.Registry();
    collectProcessMetrics(ours, 1000);
    promClient.collectDefaultMetrics({ register: theirs, eventLoopMonitoringPrecision: 1000 });
    const shape = async (r: Registry) => (await r.getMetricsAsJSON()).map((m) => `${m.name} ${m.type}`).sort();
    expect(await shape(ours)).toEqual(await shape(theirs));
  });

  it('count the CPU the process used between scrapes', async () => {
    const registry = new Registry();
    collectProcessMetrics(registry, 1000);
    const seconds = async (name: string) =>
      (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? Number.NaN;
    const first = await seconds('process_cpu_seconds_total');
    const until = process.cpuUsage().user + 20_000;
    while (process.cpuUsage().user < until) Math.sqrt(Math.random()); // 20 ms of user CPU
    const user = await seconds('process_cpu_user_seconds_total');
    const total = await seconds('process_cpu_seconds_total');
    expect(total - first).toBeGreaterThanOrEqual(0.02);
    expect(user).toBeGreaterThan(0);
    expect(total).toBeGreaterThanOrEqual(user);
  });
});
