import { performance } from 'node:perf_hooks';
import type { FigureOrigins } from '../config/index.js';
import { GATEWAY_VERSION } from '../version.js';
import { Counter, collectProcessMetrics, Gauge, Registry } from './prom.js';
import { type Cells, type Labels, REJECT_REASONS, type Recorder } from './recorder.js';
import type { MetricsSource } from './source.js';
import { type BucketView, bucketViews, type CacheStats, CIRCUIT_VALUE, cacheStats } from './state.js';

let processRegistry: Registry | null = null;
const EVENT_LOOP_RESOLUTION_MS = 1000;

/**
 * Process metrics (CPU, memory, event loop, GC) are one per process, however many gateways it runs
 * (tests start several): one registry for them, made on first use and merged into every scrape. Made
 * per gateway, each would keep its own event-loop monitor and GC observer alive for good.
 */
function sharedProcessRegistry(): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry();
    // The event-loop delay is sampled once a second rather than every 10 ms (prom-client's default), so that
    // an idle sidecar does not wake 100 times a second for it; a stall still shows, as the delay of the
    // one-second timer it held up.
    collectProcessMetrics(processRegistry, EVENT_LOOP_RESOLUTION_MS);
  }
  return processRegistry;
}

/** What a scrape reads from the gateway, once per scrape. */
interface ScrapeView {
  buckets: Map<string, BucketView>;
  cache: CacheStats | null;
}

/** Reads of the gateway for the gauges, at scrape time; null before the gateway is attached. */
interface Reads {
  source(): MetricsSource | null;
  view(): ScrapeView;
  /** The table's origin of each configured limit's figures, by name. */
  origins(): Map<string, FigureOrigins>;
}

/**
 * The gateway's Prometheus registry. Counters are the recorder's cells, copied in at scrape time; gauges
 * are read from the gateway at scrape time; histograms are fed directly by the recorder. Each family of
 * series is registered by a function of its own below.
 */
export class PrometheusExport {
  private source: MetricsSource | null = null;
  private view: ScrapeView | null = null;
  private viewAt = 0;

  constructor(
    recorder: Recorder,
    readonly registry: Registry,
  ) {
    sharedProcessRegistry(); // from start-up, so GC and event-loop figures cover the whole run
    const reads: Reads = {
      source: () => this.source,
      view: () => this.scrapeView(),
      origins: () => new Map((this.source?.quota.limits ?? []).map((l) => [l.name, l.source])),
    };
    requestSeries(registry, recorder);
    bucketSeries(registry, recorder, reads);
    quotaTreeSeries(registry, recorder, reads);
    shadowSeries(registry, recorder);
    circuitAndStoreSeries(registry, recorder, reads);
    cacheSeries(registry, recorder, reads);
    configAndBuildSeries(registry, recorder);
  }

  attach(source: MetricsSource): void {
    this.source = source;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition: this gateway's series and the process's. */
  async scrape(): Promise<string> {
    this.view = null;
    try {
      return await Registry.merge([this.registry, sharedProcessRegistry()]).metrics();
    } finally {
      this.view = null;
    }
  }

  private scrapeView(): ScrapeView {
    const now = performance.now();
    // One read of the gateway per scrape; the age check covers a registry read without scrape().
    if (this.view === null || now - this.viewAt > 50) {
      const p = this.source;
      this.viewAt = now;
      this.view = { buckets: p ? bucketViews(p.quota) : new Map(), cache: p ? cacheStats(p.cache) : null };
    }
    return this.view;
  }
}

/** Requests answered to apps, and the attempts sent to CDF: what CDF answered, retried, passed back. */
function requestSeries(r: Registry, rec: Recorder): void {
  counter(
    r,
    'cdf_gateway_requests_total',
    'Requests answered to apps, by method, API family, status and client.',
    ['method', 'family', 'status', 'client'],
    rec.requests,
  );
  counter(
    r,
    'cdf_gateway_upstream_attempts_total',
    'Attempts sent to CDF, by API family and status ("error": no answer).',
    ['family', 'status'],
    rec.attempts,
  );
  counter(
    r,
    'cdf_gateway_upstream_throttled_total',
    '429 answers from CDF, by API family and whether the gateway retried the call or passed the 429 on to the app.',
    ['family', 'outcome'],
    rec.throttled,
  );
  counter(
    r,
    'cdf_gateway_retries_total',
    'Upstream attempts repeated by the gateway, by API family and reason.',
    ['family', 'reason'],
    rec.retries,
  );
  counter(
    r,
    'cdf_gateway_retry_budget_exhausted_total',
    "Failures passed back to the app because the bucket's retry budget was used up, by API family.",
    ['family'],
    rec.budgetExhausted,
  );
}

/** The buckets now and what they admitted and refused, by bucket (limit name), scopes summed. */
function bucketSeries(r: Registry, rec: Recorder, reads: Reads): void {
  new Counter({
    name: 'cdf_gateway_bucket_admitted_total',
    help: 'Attempts admitted through a bucket (first attempts and retries), by bucket (limit name).',
    labelNames: ['bucket'],
    registers: [r],
    collect() {
      this.reset();
      for (const t of rec.limits.values()) this.inc({ bucket: t.name }, t.admitted);
    },
  });
  new Counter({
    name: 'cdf_gateway_queue_rejected_total',
    help: "Requests the gateway's queue answered with 429 itself, by bucket and reason (full, timeout, aborted).",
    labelNames: ['bucket', 'reason'],
    registers: [r],
    collect() {
      this.reset();
      for (const t of rec.limits.values()) {
        for (const reason of REJECT_REASONS) this.inc({ bucket: t.name, reason }, t.rejected[reason]);
      }
    },
  });
  const buckets = () => reads.view().buckets;
  bucketGauge(r, 'cdf_gateway_queue_length', 'Requests waiting in the queue now, by bucket.', buckets, (v) => v.queued);
  bucketGauge(
    r,
    'cdf_gateway_bucket_in_flight',
    'Calls holding a slot (in flight to CDF) now, by bucket.',
    buckets,
    (v) => v.inFlight,
  );
  bucketGauge(
    r,
    'cdf_gateway_bucket_tokens',
    'Tokens available now (calls that may start at once), by bucket.',
    buckets,
    (v) => v.tokens,
  );
  bucketGauge(
    r,
    'cdf_gateway_bucket_scopes',
    'Scopes (projects, or project and identity) a bucket is kept for.',
    buckets,
    (v) => v.scopes,
  );
  figureGauge(
    r,
    'cdf_gateway_bucket_rate_per_second',
    "Rate limit of a bucket in calls per second: configured (the table's), and effective (where learning has it); scopes summed. provenance: documented, configured, guessed, stated (a 429 named it) or learned.",
    buckets,
    reads.origins,
    (v) => [v.configuredRate, v.rate, v.rateSource],
    (o) => o?.rate,
  );
  figureGauge(
    r,
    'cdf_gateway_bucket_concurrency',
    "Concurrency limit of a bucket: configured (the table's), and effective (where learning has it); scopes summed. provenance as for the rate.",
    buckets,
    reads.origins,
    (v) => [v.configuredConcurrency, v.concurrency, v.concurrencySource],
    (o) => o?.concurrency,
  );
}

/**
 * The quota tree's figures per bucket, not per scope: configured ones from the config, learned ones from
 * CDF's 429s (operations and classes that had no bucket of their own), and how they changed. Bounded by the
 * table and MAX_LEARNED.
 */
function quotaTreeSeries(r: Registry, rec: Recorder, reads: Reads): void {
  counter(
    r,
    'cdf_gateway_limit_changes_total',
    'Changes of effective limits by the adaptive limits, by bucket and direction.',
    ['bucket', 'direction'],
    rec.limitChanges,
  );
  const treeFigure = (
    name: string,
    what: string,
    figure: 'rate' | 'concurrency',
    ceiling: 'ceilingRate' | 'ceilingConcurrency',
  ) =>
    new Gauge({
      name,
      help: `${what} of each bucket of the quota tree, per scope: configured, or learned from CDF (with the ceiling it may climb to); provenance: documented, configured or guessed for the table's, stated or learned for a learned one.`,
      labelNames: ['bucket', 'source', 'provenance'],
      registers: [r],
      collect() {
        this.reset();
        const quota = reads.source()?.quota;
        if (!quota) return;
        for (const l of quota.limits)
          this.set({ bucket: l.name, source: 'configured', provenance: l.source[figure] }, l[figure]);
        for (const l of quota.learned()) {
          const provenance = figure === 'rate' ? l.rateSource : l.concurrencySource;
          this.set({ bucket: l.name, source: 'learned', provenance }, l[figure]);
          this.set({ bucket: l.name, source: 'ceiling', provenance }, l[ceiling]);
        }
      },
    });
  treeFigure('cdf_gateway_limit_rate_per_second', 'Rate', 'rate', 'ceilingRate');
  treeFigure('cdf_gateway_limit_concurrency', 'Concurrency', 'concurrency', 'ceilingConcurrency');
  new Gauge({
    name: 'cdf_gateway_learned_buckets',
    help: "Buckets learned from CDF's 429s, by level (operation, class or api).",
    labelNames: ['level'],
    registers: [r],
    collect() {
      this.reset();
      const learned = reads.source()?.quota.learned() ?? [];
      for (const level of ['operation', 'class', 'api'] as const)
        this.set({ level }, learned.filter((l) => l.level === level).length);
    },
  });
}

/** What buckets in `mode: shadow` would have done; they never delay a call. */
function shadowSeries(r: Registry, rec: Recorder): void {
  counter(
    r,
    'cdf_gateway_shadow_decisions_total',
    'What buckets in mode: shadow would have done to each attempt (admitted, queued, refused); they never delay a call.',
    ['bucket', 'outcome'],
    rec.shadow,
  );
  new Counter({
    name: 'cdf_gateway_shadow_wait_seconds_total',
    help: 'Queue wait that buckets in mode: shadow would have imposed, summed, in seconds.',
    labelNames: ['bucket'],
    registers: [r],
    collect() {
      this.reset();
      for (const c of rec.shadowWaitMs.values()) this.inc(c.labels, c.n / 1000);
    },
  });
}

/** The circuit breaker towards CDF, and the quota store. */
function circuitAndStoreSeries(r: Registry, rec: Recorder, reads: Reads): void {
  counter(
    r,
    'cdf_gateway_circuit_transitions_total',
    'Circuit breaker state changes, by the state entered.',
    ['state'],
    rec.circuitTransitions,
  );
  new Gauge({
    name: 'cdf_gateway_circuit_state',
    help: 'Circuit breaker towards CDF: 0 closed (calls flow), 1 half-open (one probe), 2 open (failing fast).',
    registers: [r],
    collect() {
      const p = reads.source();
      this.set(p ? CIRCUIT_VALUE[p.circuit.state] : 0);
    },
  });
  new Gauge({
    name: 'cdf_gateway_store_healthy',
    help: 'Whether the quota store answers (1) or not (0), by mode (memory, or a shared store).',
    labelNames: ['mode'],
    registers: [r],
    collect() {
      this.reset();
      const p = reads.source();
      if (!p) return;
      const s = p.store.status();
      this.set({ mode: s.mode }, s.healthy ? 1 : 0);
    },
  });
}

/** The response cache: outcomes per request, and what it holds. */
function cacheSeries(r: Registry, rec: Recorder, reads: Reads): void {
  counter(
    r,
    'cdf_gateway_cache_requests_total',
    'Cacheable requests by API family and outcome (hit, miss, coalesced, bypass, stale).',
    ['family', 'outcome'],
    rec.cache,
  );
  const cache = () => reads.view().cache;
  new Gauge({
    name: 'cdf_gateway_cache_entries',
    help: 'Answers held in the response cache.',
    registers: [r],
    collect() {
      this.set(cache()?.entries ?? 0);
    },
  });
  new Gauge({
    name: 'cdf_gateway_cache_bytes',
    help: 'Memory used by the answers in the response cache, in bytes.',
    registers: [r],
    collect() {
      this.set(cache()?.bytes ?? 0);
    },
  });
  // The cache counts its evictions since it started; the counter adds what is new since the last scrape.
  let evictionsSeen = 0;
  new Counter({
    name: 'cdf_gateway_cache_evictions_total',
    help: 'Answers dropped from the response cache to make room.',
    registers: [r],
    collect() {
      const seen = cache()?.evictions ?? 0;
      if (seen > evictionsSeen) this.inc(seen - evictionsSeen);
      evictionsSeen = seen;
    },
  });
}

/** Configuration reloads, and the build. */
function configAndBuildSeries(r: Registry, rec: Recorder): void {
  counter(
    r,
    'cdf_gateway_config_reloads_total',
    'Configuration reloads (SIGHUP or a change of the file), by result: success (applied) or failure (refused, the running configuration kept).',
    ['result'],
    rec.configReloads,
  );
  new Gauge({
    name: 'cdf_gateway_config_last_reload_success_timestamp_seconds',
    help: 'Unix time of the last configuration reload applied (0: none since start).',
    registers: [r],
    collect() {
      this.set(rec.lastReloadSuccess);
    },
  });
  new Gauge({
    name: 'cdf_gateway_build_info',
    help: "The gateway's version and the Node.js it runs on (always 1).",
    labelNames: ['version', 'node'],
    registers: [r],
  }).set({ version: GATEWAY_VERSION, node: process.version }, 1);
}

function counter<L extends Labels>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  cells: Cells<L>,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const c of cells.values()) this.inc(c.labels, c.n);
    },
  });
}

/** A figure per bucket: the configured one with the table's provenance, the effective one with its own. */
function figureGauge(
  registry: Registry,
  name: string,
  help: string,
  buckets: () => Map<string, BucketView>,
  origins: () => Map<string, FigureOrigins>,
  figures: (v: BucketView) => [configured: number, effective: number, provenance: string],
  tableOrigin: (o: FigureOrigins | undefined) => string | undefined,
): void {
  new Gauge({
    name,
    help,
    labelNames: ['bucket', 'kind', 'provenance'],
    registers: [registry],
    collect() {
      this.reset();
      const table = origins();
      for (const v of buckets().values()) {
        const [configured, effective, provenance] = figures(v);
        this.set(
          { bucket: v.name, kind: 'configured', provenance: tableOrigin(table.get(v.name)) ?? provenance },
          configured,
        );
        this.set({ bucket: v.name, kind: 'effective', provenance }, effective);
      }
    },
  });
}

function bucketGauge(
  registry: Registry,
  name: string,
  help: string,
  buckets: () => Map<string, BucketView>,
  value: (v: BucketView) => number,
): void {
  new Gauge({
    name,
    help,
    labelNames: ['bucket'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of buckets().values()) this.set({ bucket: v.name }, value(v));
    },
  });
}
