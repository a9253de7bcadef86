// The shared-quota scenario in plain JS (the same shape as src/demo/scenario.ts, for when dist/demo is
// absent): `apps` apps, each the official @cognite/sdk doing a parallel retrieval of the assets over
// `partitions` partitions (one loop per partition, page by page with the cursor), again and again until
// `durationMs` is up. Each app counts its SDK calls as it sees them: ok, failed (the SDK gave up after its
// own retries), and the latency of each call (the SDK's retries and backoff included).
// `baseUrl` is a function of the app's index (0-based) giving where that app sends its calls (a gateway
// replica, or the simulator), as in src/demo/scenario.ts; a plain string is accepted too.
import { performance } from 'node:perf_hooks';
import { CogniteClient } from '@cognite/sdk';

/**
 * Runs the apps for `durationMs`; `atStop` is called the moment the window closes (to read the upstream's
 * counters then: calls still in flight are not in them) and its value is returned as `atStop`.
 * @template T
 * @param {{ baseUrl: ((app: number) => string) | string, project: string, apps: number, partitions: number, durationMs: number, pageLimit: number }} options
 * @param {() => T} [atStop]
 * @returns {Promise<{ apps: { app: string, ok: number, failed: number, latenciesMs: number[] }[], atStop: T | undefined }>}
 */
export async function runScenario(options, atStop = () => undefined) {
  const stopAt = performance.now() + options.durationMs;
  let stopped;
  let fired = false;
  const window = setTimeout(() => {
    fired = true;
    stopped = atStop();
  }, options.durationMs);
  const apps = await Promise.all(
    Array.from({ length: options.apps }, (_, i) => runApp(`app-${i + 1}`, `token-app-${i + 1}`, options, stopAt)),
  );
  clearTimeout(window);
  return { apps, atStop: fired ? stopped : atStop() };
}

async function runApp(app, token, options, stopAt) {
  const i = Number(app.slice(4)) - 1;
  const baseUrl = typeof options.baseUrl === 'function' ? options.baseUrl(i) : options.baseUrl;
  const client = new CogniteClient({
    appId: app,
    project: options.project,
    baseUrl,
    oidcTokenProvider: async () => token,
  });
  await client.authenticate();
  const result = { app, ok: 0, failed: 0, latenciesMs: [] };
  const loops = Array.from({ length: options.partitions }, async (_, p) => {
    const partition = `${p + 1}/${options.partitions}`;
    let cursor;
    while (performance.now() < stopAt) {
      const t0 = performance.now();
      try {
        const page = await client.assets.list({ partition, limit: options.pageLimit, cursor });
        result.ok++;
        cursor = page.nextCursor;
      } catch {
        result.failed++;
        cursor = undefined;
      }
      result.latenciesMs.push(performance.now() - t0);
    }
  });
  await Promise.all(loops);
  return result;
}
