import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as sdk from '@cognite/sdk';

/**
 * The part of @cognite/sdk the scenario uses. Its published typings use extensionless relative
 * re-exports that NodeNext resolution cannot follow, so the shape is declared here.
 */
interface SdkClient {
  authenticate(): Promise<unknown>;
  assets: {
    list(scope: {
      partition: string;
      limit: number;
      cursor?: string;
    }): Promise<{ items: unknown[]; nextCursor?: string }>;
  };
}
const CogniteClient = (sdk as unknown as { CogniteClient: new (options: Record<string, unknown>) => SdkClient })
  .CogniteClient;

/**
 * The shared-quota scenario: several apps, each the official JS SDK doing a parallel retrieval over
 * `partitions` partitions, again and again, for a fixed time. What each app saw is counted per call as
 * the app sees it (the SDK's own retries included).
 */
export interface ScenarioOptions {
  /** Where app `i` (0-based) points its SDK: the simulator itself, or a gateway (replica) in front of it. */
  baseUrl: (app: number) => string;
  project: string;
  apps: number;
  partitions: number;
  durationMs: number;
  /** Items per page. */
  pageLimit: number;
}

export interface AppResult {
  app: string;
  baseUrl: string;
  ok: number;
  failed: number;
  latenciesMs: number[];
}

export interface ScenarioResult<T> {
  apps: AppResult[];
  /** What `atStop` returned when the window closed (calls still in flight then are not in it). */
  atStop: T;
}

/** Runs the apps for `durationMs`; `atStop` reads the upstream's counters the moment the window closes. */
export async function runScenario<T>(options: ScenarioOptions, atStop: () => T): Promise<ScenarioResult<T>> {
  const stopAt = performance.now() + options.durationMs;
  let stopped: T | undefined;
  const window = setTimeout(() => {
    stopped = atStop();
  }, options.durationMs);
  const apps = await Promise.all(
    Array.from({ length: options.apps }, (_, i) =>
      runApp(`app-${i + 1}`, `token-app-${i + 1}`, options.baseUrl(i), options, stopAt),
    ),
  );
  clearTimeout(window);
  return { apps, atStop: stopped ?? atStop() };
}

async function runApp(
  app: string,
  token: string,
  baseUrl: string,
  options: ScenarioOptions,
  stopAt: number,
): Promise<AppResult> {
  const client = new CogniteClient({
    appId: app,
    project: options.project,
    baseUrl,
    oidcTokenProvider: async () => token,
  });
  // No authenticate(): like most apps, the SDK's first calls go out without a token, get 401 and fetch one
  // (see ../shared/cdf-facts.md); the gateway answers those 401s itself, at no quota cost.
  const result: AppResult = { app, baseUrl, ok: 0, failed: 0, latenciesMs: [] };
  const loops = Array.from({ length: options.partitions }, async (_, p) => {
    const partition = `${p + 1}/${options.partitions}`;
    let cursor: string | undefined;
    while (performance.now() < stopAt) {
      const t0 = performance.now();
      try {
        const page = await client.assets.list({ partition, limit: options.pageLimit, cursor });
        result.ok++;
        cursor = page.nextCursor;
      } catch {
        // The SDK gave up after its own retries: the app's call failed. A real app would not spin on a
        // dead gateway either.
        result.failed++;
        cursor = undefined;
        await sleep(100);
      }
      result.latenciesMs.push(performance.now() - t0);
    }
  });
  await Promise.all(loops);
  return result;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Jain's fairness index: 1 when every app got the same, 1/n when one app got everything. */
export function jainIndex(values: readonly number[]): number {
  const sum = values.reduce((a, b) => a + b, 0);
  const squares = values.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 1 : (sum * sum) / (values.length * squares);
}
