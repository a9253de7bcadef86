import { performance } from 'node:perf_hooks';
import type { Provenance } from '../quota/index.js';
import { GATEWAY_VERSION } from '../version.js';
import { type Cells, LATENCY_BOUNDS_MS, type Labels, REJECT_REASONS, type Recorder } from './recorder.js';
import type { MetricsSource } from './source.js';
import { type BucketView, bucketViews, type CacheStats, CIRCUIT_VALUE, cacheStats } from './state.js';

const CACHE_OUTCOMES = ['hit', 'miss', 'coalesced', 'bypass', 'stale'] as const;
type CacheKey = (typeof CACHE_OUTCOMES)[number];
/** Cache outcomes that spared a call to CDF. */
const SPARED: readonly CacheKey[] = ['hit', 'stale', 'coalesced'];
/** Quiet seconds in a row after which the sampler sleeps until the next request. */
const QUIET_SAMPLES = 2;
const noop = () => {};
/** Samples the cache hit ratio is computed over, so a quiet second does not read 0 % or 100 %. */
const RATIO_WINDOW = 10;

interface BucketSample {
  scopes: number;
  admitted: number;
  rejected: number;
  waitSumMs: number;
  waitMaxMs: number;
  queued: number;
  inFlight: number;
  rate: number;
  configuredRate: number;
  concurrency: number;
  configuredConcurrency: number;
  rateSource: Provenance;
  concurrencySource: Provenance;
}

/** One second of the gateway: counts are what happened during it (divided by `dt` for rates), gauges its end. */
interface Sample {
  /** Unix time in seconds. */
  t: number;
  /** Seconds covered. */
  dt: number;
  byStatus: Map<string, number>;
  byClient: Map<string, number>;
  upstream429: number;
  retried: number;
  passedOn: number;
  gateway429: number;
  cache: Record<CacheKey, number>;
  buckets: Map<string, BucketSample>;
  circuit: number;
  /** Upstream attempts in the second by latency slot (LATENCY_BOUNDS_MS). */
  latency: Float64Array;
  /** 5xx answers to apps, and upstream attempts that failed (no answer, or a 5xx from CDF). */
  errors5xx: number;
  upstreamFailures: number;
  /** Per client: requests answered in the second and their queue wait summed (ms). */
  appWait: Map<string, { requests: number; waitSumMs: number }>;
}

type Series = Array<number | null>;

export interface DashboardBucket {
  /** Learned from CDF's 429s (an operation, class or API without a configured bucket), not configured. */
  learned: boolean;
  /** Where its effective rate and concurrency stand now: documented, configured, guessed, stated or learned. */
  rateSource: Provenance | null;
  concurrencySource: Provenance | null;
  /** Projects (or project and identity pairs) the bucket is kept for. */
  scopes: Series;
  /** Attempts admitted through the bucket, per second. */
  admitted: Series;
  /** Requests refused by the queue (full, timeout, aborted), per second. */
  rejected: Series;
  /** Mean queue wait of the attempts admitted in the second, in ms (null: none admitted). */
  waitAvgMs: Series;
  waitMaxMs: Series;
  queued: Series;
  inFlight: Series;
  effectiveRate: Series;
  configuredRate: Series;
  effectiveConcurrency: Series;
  configuredConcurrency: Series;
}

/** The body of GET /dashboard/data.json: columns aligned with `t`, as uPlot takes them. */
export interface DashboardData {
  intervalMs: number;
  windowSec: number;
  /** Unix seconds. */
  now: number;
  startedAt: number;
  t: number[];
  requests: {
    /** Requests answered per second, all of them. */
    total: Series;
    byStatus: Record<string, Series>;
    /** Per client label (capped by metrics.maxClients), busiest first. */
    byClient: Record<string, Series>;
  };
  throttling: {
    /** 429s from CDF per second, and what the gateway did with them. */
    upstream429: Series;
    retried: Series;
    passedOn: Series;
    /** 429s the gateway's own queue answered (full or timed out), per second. */
    gateway429: Series;
  };
  cache: Record<CacheKey, Series> & {
    /** Share of cacheable requests answered without a call to CDF over the last 10 s, 0..1 (null: none). */
    hitRatio: Series;
  };
  buckets: Record<string, DashboardBucket>;
  /** 0 closed, 1 half-open, 2 open. */
  circuit: Series;
  /** Latency of the upstream attempts that ended in each second, in ms (null: none), from fixed slots. */
  upstream: { attempts: Series; p50: Series; p95: Series; p99: Series };
  errors: {
    /** 5xx answers the apps got (CDF's passed on, and the gateway's own), per second. */
    answers5xx: Series;
    /** Upstream attempts that got no answer or a 5xx, per second (retried ones included). */
    upstreamFailures: Series;
  };
  /** Mean queue wait of each client's requests answered in the second, in ms (null: none answered). */
  appWait: Record<string, Series>;
  /** `reloadedAt`: Unix seconds of the last configuration reload applied, null before any. */
  build: { version: string; node: string; upstream: string; reloadedAt: number | null };
  current: {
    circuit: string;
    store: { mode: string; healthy: boolean };
    cache: CacheStats | null;
    totals: {
      requests: number;
      upstream429: number;
      retried: number;
      passedOn: number;
      gateway429: number;
      cacheSpared: number;
      cacheable: number;
      errors5xx: number;
      upstreamFailures: number;
    };
  };
}

/**
 * The dashboard's memory: the recorder's counts and the buckets' state, sampled once per interval into a
 * ring of the last `windowSec` seconds. Sampling reads the same cells Prometheus exports, so the request
 * path pays nothing for it.
 */
export class History {
  private readonly samples: Sample[] = [];
  private readonly capacity: number;
  private readonly prev = new Map<string, number>();
  private lastAt = performance.now();
  private timer: NodeJS.Timeout | null = null;
  private quiet = 0;
  private stopped = false;
  private source: MetricsSource | null = null;
  readonly startedAt = Date.now() / 1000;

  constructor(
    private readonly recorder: Recorder,
    readonly intervalMs = 1000,
    readonly windowSec = 600,
  ) {
    this.capacity = Math.max(1, Math.ceil((windowSec * 1000) / intervalMs));
  }

  /**
   * Starts sampling: one unref'd interval while anything happens. After QUIET_SAMPLES seconds with no
   * request answered or admitted and nothing queued or in flight it stops (an idle sidecar runs no timer),
   * and the recorder's next admission or answer starts it again.
   */
  start(source: MetricsSource): void {
    this.source = source;
    this.stopped = false;
    this.recorder.onActivity = () => this.wake();
    this.wake();
  }

  stop(): void {
    this.stopped = true;
    this.recorder.onActivity = noop;
    this.sleep();
  }

  /** Whether the sampler is asleep (nothing happened lately), for tests. */
  get asleep(): boolean {
    return this.timer === null;
  }

  private wake(): void {
    if (this.timer !== null || this.stopped || this.source === null) return;
    const now = performance.now();
    // The quiet stretch shows as zeros up to now; the first sample after it covers one interval, not the gap.
    if (this.samples.length > 0) this.push(this.quietSample());
    this.lastAt = now;
    this.quiet = 0;
    const log = this.source.log;
    this.timer = setInterval(() => {
      try {
        this.sample();
        this.quiet = this.isQuiet(this.samples[this.samples.length - 1]) ? this.quiet + 1 : 0;
        if (this.quiet >= QUIET_SAMPLES) this.sleep();
      } catch (err) {
        log.warn({ err }, 'dashboard sampling failed');
      }
    }, this.intervalMs);
    this.timer.unref();
  }

  private sleep(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private isQuiet(s: Sample | undefined): boolean {
    if (s === undefined) return true;
    for (const n of s.byStatus.values()) if (n > 0) return false;
    for (const b of s.buckets.values())
      if (b.admitted > 0 || b.rejected > 0 || b.queued > 0 || b.inFlight > 0) return false;
    return true;
  }

  /** A second in which nothing happened: counts zero, gauges as last seen (nothing queued or in flight). */
  private quietSample(): Sample {
    const last = this.samples[this.samples.length - 1];
    const buckets = new Map<string, BucketSample>();
    if (last)
      for (const [name, b] of last.buckets)
        buckets.set(name, { ...b, admitted: 0, rejected: 0, waitSumMs: 0, waitMaxMs: 0, queued: 0, inFlight: 0 });
    return {
      t: Date.now() / 1000,
      dt: this.intervalMs / 1000,
      byStatus: new Map(),
      byClient: new Map(),
      upstream429: 0,
      retried: 0,
      passedOn: 0,
      gateway429: 0,
      cache: { hit: 0, miss: 0, coalesced: 0, bypass: 0, stale: 0 },
      buckets,
      circuit: last?.circuit ?? 0,
      latency: new Float64Array(last?.latency.length ?? 0),
      errors5xx: 0,
      upstreamFailures: 0,
      appWait: new Map(),
    };
  }

  private push(sample: Sample): void {
    this.samples.push(sample);
    if (this.samples.length > this.capacity) this.samples.splice(0, this.samples.length - this.capacity);
  }

  /** Takes one sample now (the interval calls this; tests may too). */
  sample(): void {
    const now = performance.now();
    const dt = Math.max(0.001, (now - this.lastAt) / 1000);
    this.lastAt = now;
    const rec = this.recorder;
    const totalsByStatus = statusTotals(rec);
    const { gateway429, buckets } = this.bucketCounts();
    this.push({
      t: Date.now() / 1000,
      dt,
      byStatus: this.deltas('status', totalsByStatus),
      byClient: this.deltas('client', clientTotals(rec)),
      upstream429: this.delta('upstream429', sumWhere(rec.attempts, 'status', '429')),
      retried: this.delta('retried', sumWhere(rec.throttled, 'outcome', 'retried')),
      passedOn: this.delta('passed_on', sumWhere(rec.throttled, 'outcome', 'passed_on')),
      gateway429,
      cache: this.cacheCounts(),
      buckets,
      circuit: this.source ? CIRCUIT_VALUE[this.source.circuit.state] : 0,
      latency: this.latencyCounts(),
      errors5xx: this.delta('errors5xx', count5xx(totalsByStatus)),
      upstreamFailures: this.delta('upstreamFailures', upstreamFailuresOf(rec)),
      appWait: this.appWaitCounts(),
    });
  }

  /** Each total's growth since the last sample, under `kind` and its key. */
  private deltas(kind: string, totals: Map<string, number>): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, n] of totals) out.set(key, this.delta(`${kind} ${key}`, n));
    return out;
  }

  private cacheCounts(): Record<CacheKey, number> {
    const cache = cacheTotals(this.recorder);
    for (const key of CACHE_OUTCOMES) cache[key] = this.delta(`cache ${key}`, cache[key]);
    return cache;
  }

  /** Each bucket's admissions, refusals and waits in the second, and its figures at its end. */
  private bucketCounts(): { gateway429: number; buckets: Map<string, BucketSample> } {
    const views = this.source ? bucketViews(this.source.quota) : new Map<string, BucketView>();
    const buckets = new Map<string, BucketSample>();
    let gateway429 = 0;
    for (const t of this.recorder.limits.values()) {
      const refused = t.rejected.full + t.rejected.timeout;
      gateway429 += this.delta(`refused ${t.name}`, refused);
      const admitted = this.delta(`admitted ${t.name}`, t.admitted);
      const rejected = this.delta(
        `rejected ${t.name}`,
        REJECT_REASONS.reduce((s, r) => s + t.rejected[r], 0),
      );
      const waitSumMs = this.delta(`wait ${t.name}`, t.waitSumMs);
      const waitMaxMs = t.waitMaxMs;
      t.waitMaxMs = 0;
      const v = views.get(t.name);
      if (!v && admitted === 0 && rejected === 0) continue;
      buckets.set(t.name, {
        scopes: v?.scopes ?? 0,
        admitted,
        rejected,
        waitSumMs,
        waitMaxMs,
        queued: v?.queued ?? 0,
        inFlight: v?.inFlight ?? 0,
        rate: v?.rate ?? 0,
        configuredRate: v?.configuredRate ?? 0,
        concurrency: v?.concurrency ?? 0,
        configuredConcurrency: v?.configuredConcurrency ?? 0,
        rateSource: v?.rateSource ?? 'configured',
        concurrencySource: v?.concurrencySource ?? 'configured',
      });
    }
    return { gateway429, buckets };
  }

  private latencyCounts(): Float64Array {
    const totals = this.recorder.upstreamLatency;
    const latency = new Float64Array(totals.length);
    for (let i = 0; i < latency.length; i++) latency[i] = this.delta(`latency ${i}`, totals[i]);
    return latency;
  }

  private appWaitCounts(): Map<string, { requests: number; waitSumMs: number }> {
    const appWait = new Map<string, { requests: number; waitSumMs: number }>();
    for (const [client, w] of this.recorder.appWaits) {
      const requests = this.delta(`appreq ${client}`, w.requests);
      const waitSumMs = this.delta(`appwait ${client}`, w.waitSumMs);
      if (requests > 0) appWait.set(client, { requests, waitSumMs });
    }
    return appWait;
  }

  /** The dashboard's data: each family of series from its own function below, over the same columns. */
  toJSON(): DashboardData {
    // Asleep: the quiet stretch since the last sample reads as zeros up to now.
    const s = this.timer === null && this.samples.length > 0 ? [...this.samples, this.quietSample()] : this.samples;
    const cols = new Columns(s);
    const p = this.source;
    return {
      intervalMs: this.intervalMs,
      windowSec: this.windowSec,
      now: Date.now() / 1000,
      startedAt: this.startedAt,
      t: s.map((x) => Math.round(x.t * 1000) / 1000),
      requests: requestColumns(cols),
      throttling: throttlingColumns(cols),
      cache: cacheColumns(cols),
      buckets: bucketColumns(cols),
      circuit: cols.column((x) => x.circuit),
      upstream: upstreamColumns(cols),
      errors: {
        answers5xx: cols.rates((x) => x.errors5xx),
        upstreamFailures: cols.rates((x) => x.upstreamFailures),
      },
      appWait: appWaitColumns(cols),
      build: {
        version: GATEWAY_VERSION,
        node: process.version,
        upstream: p ? p.upstream : '',
        reloadedAt: this.recorder.lastReloadSuccess > 0 ? this.recorder.lastReloadSuccess : null,
      },
      current: {
        circuit: p ? p.circuit.state : 'closed',
        store: p ? p.store.status() : { mode: 'memory', healthy: true },
        cache: p ? cacheStats(p.cache) : null,
        totals: this.totals(),
      },
    };
  }

  /** Counts since start, straight from the recorder. */
  private totals(): DashboardData['current']['totals'] {
    const rec = this.recorder;
    let requests = 0;
    for (const c of rec.requests.values()) requests += c.n;
    let gateway429 = 0;
    for (const t of rec.limits.values()) gateway429 += t.rejected.full + t.rejected.timeout;
    const cache = cacheTotals(rec);
    return {
      requests,
      upstream429: sumWhere(rec.attempts, 'status', '429'),
      retried: sumWhere(rec.throttled, 'outcome', 'retried'),
      passedOn: sumWhere(rec.throttled, 'outcome', 'passed_on'),
      gateway429,
      cacheSpared: sparedOf(cache),
      cacheable: cacheableOf(cache),
      errors5xx: count5xx(statusTotals(rec)),
      upstreamFailures: upstreamFailuresOf(rec),
    };
  }

  /** How much a running total grew since the last sample. */
  private delta(key: string, total: number): number {
    const before = this.prev.get(key) ?? 0;
    this.prev.set(key, total);
    return total >= before ? total - before : total;
  }
}

function sumWhere<L extends Labels>(cells: Cells<L>, label: keyof L, value: string): number {
  let sum = 0;
  for (const c of cells.values()) if (c.labels[label] === value) sum += c.n;
  return sum;
}

/** The samples as columns aligned with `t`, as uPlot takes them. */
class Columns {
  constructor(readonly samples: readonly Sample[]) {}

  column(f: (x: Sample, i: number) => number | null): Series {
    return this.samples.map(f);
  }

  /** A count of each sample, per second of it. */
  rates(count: (x: Sample) => number): Series {
    return this.samples.map((x) => round(count(x) / x.dt));
  }

  /** A count of sample i, per second of it. */
  rate(count: number, i: number): number {
    return round(count / this.samples[i].dt);
  }
}

/** Requests answered per second: all, by status, and by client (busiest first). */
function requestColumns(cols: Columns): DashboardData['requests'] {
  const statusKeys = new Set<string>();
  const clientTotals = new Map<string, number>();
  for (const x of cols.samples) {
    for (const k of x.byStatus.keys()) statusKeys.add(k);
    for (const [k, v] of x.byClient) clientTotals.set(k, (clientTotals.get(k) ?? 0) + v);
  }
  const byStatus: Record<string, Series> = {};
  for (const k of [...statusKeys].sort()) byStatus[k] = cols.rates((x) => x.byStatus.get(k) ?? 0);
  const byClient: Record<string, Series> = {};
  for (const [k] of [...clientTotals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) {
    byClient[k] = cols.rates((x) => x.byClient.get(k) ?? 0);
  }
  return { total: cols.rates((x) => sumValues(x.byStatus)), byStatus, byClient };
}

function throttlingColumns(cols: Columns): DashboardData['throttling'] {
  return {
    upstream429: cols.rates((x) => x.upstream429),
    retried: cols.rates((x) => x.retried),
    passedOn: cols.rates((x) => x.passedOn),
    gateway429: cols.rates((x) => x.gateway429),
  };
}

/** Cache outcomes per second, and the share that spared a call to CDF over the last RATIO_WINDOW samples. */
function cacheColumns(cols: Columns): DashboardData['cache'] {
  const s = cols.samples;
  const hitRatio: Series = new Array(s.length).fill(null);
  let spared = 0;
  let cacheable = 0;
  for (let i = 0; i < s.length; i++) {
    spared += sparedOf(s[i].cache);
    cacheable += cacheableOf(s[i].cache);
    if (i >= RATIO_WINDOW) {
      spared -= sparedOf(s[i - RATIO_WINDOW].cache);
      cacheable -= cacheableOf(s[i - RATIO_WINDOW].cache);
    }
    hitRatio[i] = cacheable > 0 ? round(spared / cacheable) : null;
  }
  const series = {} as Record<CacheKey, Series>;
  for (const k of CACHE_OUTCOMES) series[k] = cols.rates((x) => x.cache[k]);
  return { ...series, hitRatio };
}

/** Each bucket's series; null where a sample did not have the bucket. */
function bucketColumns(cols: Columns): Record<string, DashboardBucket> {
  const names = new Set<string>();
  for (const x of cols.samples) for (const k of x.buckets.keys()) names.add(k);
  const buckets: Record<string, DashboardBucket> = {};
  for (const name of names) {
    const g = (f: (b: BucketSample, i: number) => number | null) =>
      cols.column((x, i) => {
        const b = x.buckets.get(name);
        return b === undefined ? null : f(b, i);
      });
    const latest = cols.samples.findLast((x) => x.buckets.has(name))?.buckets.get(name);
    buckets[name] = {
      learned: name.startsWith('learned.'),
      rateSource: latest?.rateSource ?? null,
      concurrencySource: latest?.concurrencySource ?? null,
      scopes: g((b) => b.scopes),
      admitted: g((b, i) => cols.rate(b.admitted, i)),
      rejected: g((b, i) => cols.rate(b.rejected, i)),
      waitAvgMs: g((b) => (b.admitted > 0 ? round(b.waitSumMs / b.admitted) : null)),
      waitMaxMs: g((b) => round(b.waitMaxMs)),
      queued: g((b) => b.queued),
      inFlight: g((b) => b.inFlight),
      effectiveRate: g((b) => round(b.rate)),
      configuredRate: g((b) => round(b.configuredRate)),
      effectiveConcurrency: g((b) => b.concurrency),
      configuredConcurrency: g((b) => b.configuredConcurrency),
    };
  }
  return buckets;
}

/** Upstream attempts per second and their latency percentiles, from the fixed slots. */
function upstreamColumns(cols: Columns): DashboardData['upstream'] {
  return {
    attempts: cols.rates((x) => sumArray(x.latency)),
    p50: cols.column((x) => percentileMs(x.latency, 0.5)),
    p95: cols.column((x) => percentileMs(x.latency, 0.95)),
    p99: cols.column((x) => percentileMs(x.latency, 0.99)),
  };
}

/** Each client's mean queue wait, in ms; null where it had no request answered. */
function appWaitColumns(cols: Columns): Record<string, Series> {
  const names = new Set<string>();
  for (const x of cols.samples) for (const k of x.appWait.keys()) names.add(k);
  const appWait: Record<string, Series> = {};
  for (const name of [...names].sort()) {
    appWait[name] = cols.column((x) => {
      const w = x.appWait.get(name);
      return w === undefined ? null : round(w.waitSumMs / w.requests);
    });
  }
  return appWait;
}

function statusTotals(rec: Recorder): Map<string, number> {
  const totals = new Map<string, number>();
  for (const c of rec.requests.values()) totals.set(c.labels.status, (totals.get(c.labels.status) ?? 0) + c.n);
  return totals;
}

function clientTotals(rec: Recorder): Map<string, number> {
  const totals = new Map<string, number>();
  for (const c of rec.requests.values()) totals.set(c.labels.client, (totals.get(c.labels.client) ?? 0) + c.n);
  return totals;
}

function cacheTotals(rec: Recorder): Record<CacheKey, number> {
  const cache = { hit: 0, miss: 0, coalesced: 0, bypass: 0, stale: 0 } as Record<CacheKey, number>;
  for (const c of rec.cache.values()) {
    const key = c.labels.outcome as CacheKey;
    if (key in cache) cache[key] += c.n;
  }
  return cache;
}

function count5xx(byStatus: Map<string, number>): number {
  let sum = 0;
  for (const [status, n] of byStatus) if (Number(status) >= 500) sum += n;
  return sum;
}

function upstreamFailuresOf(rec: Recorder): number {
  let sum = 0;
  for (const c of rec.attempts.values()) if (c.labels.status === 'error' || Number(c.labels.status) >= 500) sum += c.n;
  return sum;
}

function sumArray(a: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i];
  return sum;
}

/** The p-th latency from slot counts, interpolated inside its slot; null when nothing ended. */
function percentileMs(slots: Float64Array, p: number): number | null {
  const total = sumArray(slots);
  if (total === 0) return null;
  const want = p * total;
  let seen = 0;
  for (let i = 0; i < slots.length; i++) {
    if (slots[i] === 0) continue;
    if (seen + slots[i] >= want) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1];
      const upper = i < LATENCY_BOUNDS_MS.length ? LATENCY_BOUNDS_MS[i] : lower;
      return round(lower + ((upper - lower) * (want - seen)) / slots[i]);
    }
    seen += slots[i];
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1];
}

function sumValues(m: Map<string, number>): number {
  let sum = 0;
  for (const v of m.values()) sum += v;
  return sum;
}

function sparedOf(c: Record<CacheKey, number>): number {
  let sum = 0;
  for (const k of SPARED) sum += c[k];
  return sum;
}

function cacheableOf(c: Record<CacheKey, number>): number {
  let sum = 0;
  for (const k of CACHE_OUTCOMES) sum += c[k];
  return sum;
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
