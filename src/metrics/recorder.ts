import type { LimitConfig } from '../config/index.js';
import type { Exchange } from '../proxy/exchange.js';
import type { Bucket, LimitChange, QueueRejected, ShadowOutcome } from '../quota/index.js';
import type { CircuitState } from '../retry/index.js';
import { LabelledHistogram } from './histogram.js';
import type { Registry } from './prom.js';
import type { Telemetry } from './telemetry.js';

const noop = () => {};

/** The label value for clients past `metrics.maxClients`. */
const OTHER_CLIENT = 'other';

export type Labels = Record<string, string>;

/** One labelled count. The request path bumps `n`; Prometheus and the dashboard read it. */
export interface Cell<L extends Labels = Labels> {
  readonly labels: L;
  n: number;
}

/**
 * Counts keyed by a joined label string, each made once: the request path does one Map lookup and `n++`
 * (`get`, then `add` the first time; no closure or label object per call).
 */
export class Cells<L extends Labels> {
  readonly all = new Map<string, Cell<L>>();

  get(key: string): Cell<L> | undefined {
    return this.all.get(key);
  }

  add(key: string, labels: L): Cell<L> {
    const c = { labels, n: 0 };
    this.all.set(key, c);
    return c;
  }

  values(): IterableIterator<Cell<L>> {
    return this.all.values();
  }
}

export type RejectReason = QueueRejected['reason'];
export const REJECT_REASONS: readonly RejectReason[] = ['full', 'timeout', 'aborted'];

/** What the scheduler reported for one limit (every scope of it together). */
export interface LimitTally {
  readonly name: string;
  admitted: number;
  /** Queue wait of admitted calls, summed, in ms. */
  waitSumMs: number;
  /** Longest wait since the dashboard's last sample, in ms (the sampler resets it). */
  waitMaxMs: number;
  readonly rejected: Record<RejectReason, number>;
  readonly observeWait: (seconds: number) => void;
}

/** Upper bounds (ms) of the upstream latency counts the dashboard reads its percentiles from. */
export const LATENCY_BOUNDS_MS = [
  5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000,
];

/** Running totals of one client's requests and their queue wait, for the dashboard's wait per app. */
export interface AppWait {
  requests: number;
  waitSumMs: number;
}

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Caps the number of client label values: the first `max` clients seen keep their name, later ones are `other`. */
export class ClientLabels {
  private readonly known = new Map<string, string>();
  private readonly max: number;

  constructor(max: number, configured: readonly string[]) {
    // Configured names always keep their label; app names share the rest up to `max`.
    for (const name of configured) this.known.set(name, name);
    this.max = max + this.known.size;
  }

  label(id: string): string {
    if (id === OTHER_CLIENT) return OTHER_CLIENT;
    const known = this.known.get(id);
    if (known !== undefined) return known;
    if (this.known.size < this.max) {
      this.known.set(id, id);
      return id;
    }
    return OTHER_CLIENT;
  }
}

/**
 * The Telemetry the request path calls: plain counts in cells (exported to Prometheus at scrape time and
 * sampled by the dashboard), and the three histograms, whose children are made once per label value.
 */
export class Recorder implements Telemetry {
  readonly requests = new Cells<{ method: string; family: string; status: string; client: string }>();
  readonly attempts = new Cells<{ family: string; status: string }>();
  readonly throttled = new Cells<{ family: string; outcome: string }>();
  readonly retries = new Cells<{ family: string; reason: string }>();
  readonly budgetExhausted = new Cells<{ family: string }>();
  readonly cache = new Cells<{ family: string; outcome: string }>();
  readonly limitChanges = new Cells<{ bucket: string; direction: string }>();
  readonly circuitTransitions = new Cells<{ state: string }>();
  readonly configReloads = new Cells<{ result: string }>();
  /** Decisions of buckets in `mode: shadow`, by bucket and outcome; and the waits they would have had (ms). */
  readonly shadow = new Cells<{ bucket: string; outcome: string }>();
  readonly shadowWaitMs = new Cells<{ bucket: string }>();
  /** Unix seconds of the last reload applied; 0 before any. */
  lastReloadSuccess = 0;
  /** Upstream attempts by latency: counts per LATENCY_BOUNDS_MS slot (the last slot: above them all). */
  readonly upstreamLatency = new Float64Array(LATENCY_BOUNDS_MS.length + 1);
  /** Per client label (bounded like every client label). */
  readonly appWaits = new Map<string, AppWait>();
  /** Per limit name, in config order first. */
  readonly limits = new Map<string, LimitTally>();

  readonly requestSeconds: LabelledHistogram;
  readonly upstreamSeconds: LabelledHistogram;
  readonly queueWaitSeconds: LabelledHistogram;

  private readonly clients: ClientLabels;
  private readonly byLimit = new WeakMap<LimitConfig, LimitTally>();

  constructor(
    registry: Registry,
    limits: readonly LimitConfig[],
    maxClients: number,
    configuredClients: readonly string[],
  ) {
    this.clients = new ClientLabels(maxClients, configuredClients);
    // Both results exist from the start, at 0, so an alert on failures has a series to watch.
    this.configReloads.add('success', { result: 'success' });
    this.configReloads.add('failure', { result: 'failure' });
    this.requestSeconds = new LabelledHistogram(
      'cdf_gateway_request_duration_seconds',
      'Time from the request reaching the gateway to the answer sent to the app (queue, retries and upstream included), by API family.',
      'family',
      DURATION_BUCKETS,
      registry,
    );
    this.upstreamSeconds = new LabelledHistogram(
      'cdf_gateway_upstream_duration_seconds',
      'Time of one upstream attempt to CDF, until the response headers (or the failure), by API family.',
      'family',
      DURATION_BUCKETS,
      registry,
    );
    this.queueWaitSeconds = new LabelledHistogram(
      'cdf_gateway_queue_wait_seconds',
      "Time an attempt waited in the gateway's queue for a token and a slot, by bucket (limit name).",
      'bucket',
      WAIT_BUCKETS,
      registry,
    );
    for (const limit of limits) this.tallyOf(limit);
  }

  clientLabel(id: string): string {
    return this.clients.label(id);
  }

  // --- Telemetry -------------------------------------------------------------------------------------

  /** Called on every admission and answer: wakes the dashboard's sampler, which sleeps while nothing happens. */
  onActivity: () => void = noop;

  requestDone(ex: Exchange, durationMs: number): void {
    this.onActivity();
    const client = this.clients.label(ex.app.label);
    const method = ex.method;
    const family = ex.family;
    const status = ex.status;
    const key = `${method} ${family} ${status} ${client}`;
    (this.requests.get(key) ?? this.requests.add(key, { method, family, status: String(status), client })).n++;
    this.requestSeconds.of(family).observe(durationMs / 1000);
    let wait = this.appWaits.get(client);
    if (wait === undefined) {
      wait = { requests: 0, waitSumMs: 0 };
      this.appWaits.set(client, wait);
    }
    wait.requests++;
    wait.waitSumMs += ex.queuedMs;
  }

  upstreamAttempt(ex: Exchange, status: number, durationMs: number): void {
    const family = ex.family;
    const key = `${family} ${status}`;
    (this.attempts.get(key) ?? this.attempts.add(key, { family, status: status === 0 ? 'error' : String(status) })).n++;
    this.upstreamSeconds.of(family).observe(durationMs / 1000);
    let slot = 0;
    while (slot < LATENCY_BOUNDS_MS.length && durationMs > LATENCY_BOUNDS_MS[slot]) slot++;
    this.upstreamLatency[slot]++;
  }

  upstreamThrottled(ex: Exchange, retried: boolean): void {
    const family = ex.family;
    const outcome = retried ? 'retried' : 'passed_on';
    const key = `${family} ${outcome}`;
    (this.throttled.get(key) ?? this.throttled.add(key, { family, outcome })).n++;
  }

  retried(ex: Exchange, reason: string): void {
    const family = ex.family;
    const key = `${family} ${reason}`;
    (this.retries.get(key) ?? this.retries.add(key, { family, reason })).n++;
  }

  retryBudgetExhausted(ex: Exchange): void {
    const family = ex.family;
    (this.budgetExhausted.get(family) ?? this.budgetExhausted.add(family, { family })).n++;
  }

  limitChanged(change: LimitChange): void {
    const bucket = change.bucket.limit.name;
    const direction = change.direction;
    const key = `${bucket} ${direction}`;
    (this.limitChanges.get(key) ?? this.limitChanges.add(key, { bucket, direction })).n++;
  }

  shadowDecision(bucket: Bucket, outcome: ShadowOutcome, waitMs: number): void {
    const name = bucket.limit.name;
    const key = `${name} ${outcome}`;
    (this.shadow.get(key) ?? this.shadow.add(key, { bucket: name, outcome })).n++;
    if (waitMs > 0) (this.shadowWaitMs.get(name) ?? this.shadowWaitMs.add(name, { bucket: name })).n += waitMs;
  }

  configReload(result: 'success' | 'failure'): void {
    (this.configReloads.get(result) ?? this.configReloads.add(result, { result })).n++;
    if (result === 'success') this.lastReloadSuccess = Date.now() / 1000;
  }

  circuitChanged(state: CircuitState): void {
    (this.circuitTransitions.get(state) ?? this.circuitTransitions.add(state, { state })).n++;
  }

  cacheOutcome(ex: Exchange): void {
    if (ex.cache === null) return;
    const family = ex.family;
    const outcome = ex.cache;
    const key = `${family} ${outcome}`;
    (this.cache.get(key) ?? this.cache.add(key, { family, outcome: outcome.toLowerCase() })).n++;
  }

  onAdmitted(buckets: readonly Bucket[], waitedMs: number): void {
    this.onActivity();
    const seconds = waitedMs / 1000;
    for (let i = 0; i < buckets.length; i++) {
      const t = this.tallyOf(buckets[i].limit);
      t.admitted++;
      t.waitSumMs += waitedMs;
      if (waitedMs > t.waitMaxMs) t.waitMaxMs = waitedMs;
      t.observeWait(seconds);
    }
  }

  onRejected(bucket: Bucket, reason: RejectReason): void {
    this.tallyOf(bucket.limit).rejected[reason]++;
  }

  private tallyOf(limit: LimitConfig): LimitTally {
    let t = this.byLimit.get(limit);
    if (t !== undefined) return t;
    t = this.limits.get(limit.name);
    if (t === undefined) {
      const waits = this.queueWaitSeconds;
      const name = limit.name;
      t = {
        name: limit.name,
        admitted: 0,
        waitSumMs: 0,
        waitMaxMs: 0,
        rejected: { full: 0, timeout: 0, aborted: 0 },
        // Looked up per call rather than kept, so a reset of the histogram leaves nothing detached.
        observeWait: (s) => waits.of(name).observe(s),
      };
      this.limits.set(limit.name, t);
    }
    this.byLimit.set(limit, t);
    return t;
  }
}
