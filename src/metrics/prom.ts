import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

/**
 * prom-client's registry, counter, gauge and process metrics, loaded from the files its index exports rather
 * than the index, which also loads the pushgateway, the cluster aggregator and `@opentelemetry/api` for
 * exemplars the gateway never records (3.0–3.6 MiB more resident: bench/RESULTS.md, round 4, fifth session).
 * The files hold for the exact version package.json pins; test/prom.test.ts fails when it moves.
 */
const requirePromClient = createRequire(import.meta.url);
const lib = (file: string): unknown => requirePromClient(`prom-client/lib/${file}.js`);

export const Registry = lib('registry') as typeof PromClient.Registry;
export type Registry = PromClient.Registry;
export const Counter = lib('counter') as typeof PromClient.Counter;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge = lib('gauge') as typeof PromClient.Gauge;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;

type DefaultMetric = (register: Registry, config: { eventLoopMonitoringPrecision: number }) => void;

/** prom-client's default metrics (`collectDefaultMetrics`), each from its own file, CPU from processCpu. */
const DEFAULT_METRICS = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
];

/** The process metrics prom-client's `collectDefaultMetrics` registers, under the same names. */
export function collectProcessMetrics(register: Registry, eventLoopMonitoringPrecision: number): void {
  processCpu(register);
  for (const name of DEFAULT_METRICS) {
    // As prom-client: resource counts only where node can list them.
    if (name === 'processResources' && typeof process.getActiveResourcesInfo !== 'function') continue;
    (lib(`metrics/${name}`) as DefaultMetric)(register, { eventLoopMonitoringPrecision });
  }
}

/** `process_cpu_*_seconds_total` as prom-client's processCpuTotal counts them, read at scrape time. */
function processCpu(register: Registry): void {
  let last = process.cpuUsage();
  const counter = (name: string, help: string, collect?: () => void) =>
    new Counter({ name, help, registers: [register], collect });
  const user = counter('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', () => {
    const now = process.cpuUsage();
    const userSeconds = (now.user - last.user) / 1e6;
    const systemSeconds = (now.system - last.system) / 1e6;
    last = now;
    user.inc(userSeconds);
    system.inc(systemSeconds);
    total.inc(userSeconds + systemSeconds);
  });
  const system = counter('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.');
  const total = counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.');
}
