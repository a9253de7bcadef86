// Child process of the quota benchmark: runs the demo's scenario (dist/demo/scenario.js) and prints one
// JSON line with what each app saw.
// Every HTTP attempt the SDK makes (its retries included) is timed by wrapping BasicHttpClient.rawRequest.
// Usage: node bench/lib/apps.mjs '{"baseUrl":...,"statsUrl":"http://sim/_sim/stats","project":"p","apps":4,"partitions":10,"durationMs":15000,"pageLimit":100}'
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BasicHttpClient } from '@cognite/sdk-core';
import { ROOT } from './proc.mjs';

const options = JSON.parse(process.argv[2]);
const attempts = new Map();
const raw = BasicHttpClient.prototype.rawRequest;
BasicHttpClient.prototype.rawRequest = async function timed(request) {
  const app = this.defaultHeaders?.['x-cdp-app'] ?? 'unknown';
  let a = attempts.get(app);
  if (!a) {
    a = { latenciesMs: [], byStatus: {} };
    attempts.set(app, a);
  }
  const t0 = performance.now();
  let status = 'error';
  try {
    const response = await raw.call(this, request);
    status = String(response.status);
    return response;
  } finally {
    a.latenciesMs.push(performance.now() - t0);
    a.byStatus[status] = (a.byStatus[status] ?? 0) + 1;
  }
};

// At the close of the window the simulator's counters are read (calls still in flight are not in them).
const atStop = () => {
  const t = performance.now();
  return fetch(options.statsUrl)
    .then((r) => r.json())
    .then((stats) => ({ stats, readMs: performance.now() - t }));
};

// Where app i sends its calls: one base URL, or gateway replicas in turn.
const urls = options.baseUrls ?? [options.baseUrl];
const scenarioOptions = { ...options, baseUrl: (i) => urls[i % urls.length] };
delete scenarioOptions.baseUrls;
delete scenarioOptions.statsUrl;

const source = 'dist/demo/scenario.js';
const { runScenario } = await import(join(ROOT, 'dist', 'demo', 'scenario.js'));
const result = await runScenario(scenarioOptions, atStop);
result.atStop = await result.atStop;
const note = null;
const out = {
  source,
  note,
  stats: result.atStop?.stats ?? null,
  apps: result.apps.map((a) => ({
    app: a.app,
    ok: a.ok,
    failed: a.failed ?? 0,
    latenciesMs: a.latenciesMs,
    attempts: attempts.get(a.app) ?? null,
  })),
};
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
