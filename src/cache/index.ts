import type { Logger } from 'pino';
import type { CacheConfig, GatewayConfig } from '../config/index.js';
import { GatewayError, GatewayErrors } from '../errors.js';
import type { Telemetry } from '../metrics/telemetry.js';
import type { Exchange } from '../proxy/exchange.js';
import type { HeaderMap } from '../proxy/headers.js';
import type { CacheOutcome, CachePlan, UpstreamAnswer } from '../proxy/types.js';
import { type Collected, collect } from './body.js';
import { type Flight, Flights, waitFor } from './flight.js';
import { type ClientControl, cacheKey, clientControl } from './key.js';
import { type CompiledRule, RuleTable } from './rules.js';
import { type Entry, EntryStore, entrySize, scopeOf } from './store.js';
import type { ResponseCache } from './types.js';

export type { CachedAnswer, ResponseCache } from './types.js';

/** Counters of the response cache, for tests, benchmarks and the admin side. */
export interface CacheStats {
  /** Entries held now, and their bytes (bounded by maxBytes). */
  entries: number;
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
  coalesced: number;
  stale: number;
  bypassed: number;
  /** Answers written to the store. */
  stored: number;
  /** Complete-looking 200s not stored: larger than maxEntryBytes, broken off, or no-store upstream. */
  notStored: number;
  evictions: number;
  expired: number;
  /** Entries dropped because a write changed their family in their project. */
  invalidated: number;
  /** Distinct calls in flight that others may join. */
  inFlight: number;
}

const noop = () => {};

/** Cache-Control from CDF that forbids keeping the answer. */
function forbidsStoring(headers: HeaderMap): boolean {
  const cc = headers['cache-control'];
  if (cc === undefined) return false;
  return (Array.isArray(cc) ? cc.join(',') : cc).toLowerCase().includes('no-store');
}

function isGatewayFailure(err: unknown): boolean {
  return err instanceof GatewayError && (err.status === 502 || err.status === 503 || err.status === 504);
}

/** Gives back an answer that will not be sent: its quota slot, and its body if it streams. */
function discard(answer: UpstreamAnswer): void {
  if (!Buffer.isBuffer(answer.body)) answer.body.destroy();
  answer.release();
}

function tag(answer: UpstreamAnswer, outcome: CacheOutcome): UpstreamAnswer {
  // The forwarder builds a fresh header object per answer: tagging it in place is safe.
  answer.headers['x-cache'] = outcome;
  return answer;
}

/**
 * The in-memory response cache with single-flight coalescing. Opt-in by rules; keyed per credential; a
 * successful write drops its family's entries in its project.
 */
export class MemoryResponseCache implements ResponseCache {
  rules: RuleTable;
  store: EntryStore;
  readonly flights = new Flights();
  maxEntryBytes: number;
  staleIfErrorMs: number;
  readonly counts = { hits: 0, misses: 0, coalesced: 0, stale: 0, bypassed: 0, stored: 0, notStored: 0 };

  constructor(
    config: CacheConfig,
    private readonly telemetry: Telemetry,
  ) {
    this.rules = new RuleTable(config.rules);
    this.maxEntryBytes = config.maxEntryBytes;
    this.staleIfErrorMs = config.staleIfErrorMs;
    this.store = new EntryStore(config.maxBytes, config.staleIfErrorMs);
  }

  plan(ex: Exchange): CachePlan | null {
    if (this.rules.empty) return null;
    const target = ex.target;
    if (target === null) return null;
    const rule = this.rules.match(ex.method, target.rest);
    if (rule === undefined || !ex.route.read) return null;
    const control = clientControl(ex.req.headers['cache-control']);
    const key = control.noStore ? null : cacheKey(ex);
    return new Plan(this, ex, key, rule, control, scopeOf(target.project, ex.route.family));
  }

  /**
   * Reload: new rules and entry bound apply to the next request. A new memory bound or stale window
   * means a new store (the entries held are dropped); answers in flight finish against the old one.
   */
  reconfigure(config: CacheConfig): void {
    this.rules = new RuleTable(config.rules);
    this.maxEntryBytes = config.maxEntryBytes;
    if (config.maxBytes !== this.store.maxBytes || config.staleIfErrorMs !== this.staleIfErrorMs) {
      this.store.clear();
      this.store = new EntryStore(config.maxBytes, config.staleIfErrorMs);
    }
    this.staleIfErrorMs = config.staleIfErrorMs;
  }

  answered(ex: Exchange): void {
    if (this.rules.empty) return;
    const target = ex.target;
    if (target === null || ex.route.read || ex.status < 200 || ex.status >= 300) return;
    const method = ex.method;
    if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return;
    this.store.invalidate(scopeOf(target.project, ex.route.family));
  }

  close(): void {
    this.flights.clear();
    this.store.clear();
  }

  stats(): CacheStats {
    const { evictions, expired, invalidated } = this.store.counters;
    return {
      entries: this.store.entries,
      bytes: this.store.bytes,
      maxBytes: this.store.maxBytes,
      ...this.counts,
      evictions,
      expired,
      invalidated,
      inFlight: this.flights.size,
    };
  }

  /** Sets the request's outcome and reports it: once per request. */
  outcome(ex: Exchange, outcome: CacheOutcome): void {
    ex.cache = outcome;
    switch (outcome) {
      case 'HIT':
        this.counts.hits++;
        break;
      case 'MISS':
        this.counts.misses++;
        break;
      case 'COALESCED':
        this.counts.coalesced++;
        break;
      case 'STALE':
        this.counts.stale++;
        break;
      case 'BYPASS':
        this.counts.bypassed++;
        break;
    }
    this.telemetry.cacheOutcome(ex);
  }
}

/** How one cacheable request is served. `key` null means BYPASS (no-store, or a body that cannot be keyed). */
class Plan implements CachePlan {
  private reported = false;

  constructor(
    private readonly cache: MemoryResponseCache,
    private readonly ex: Exchange,
    private readonly key: string | null,
    private readonly rule: CompiledRule,
    private readonly control: ClientControl,
    private readonly scope: string,
  ) {}

  async run(fetch: () => Promise<UpstreamAnswer>): Promise<UpstreamAnswer> {
    const key = this.key;
    if (key === null) {
      this.report('BYPASS');
      return tag(await fetch(), 'BYPASS');
    }
    const { store, flights } = this.cache;
    const now = Date.now();
    const entry = store.get(key);
    if (entry !== undefined && !this.control.noCache && this.acceptable(entry, now)) {
      this.report('HIT');
      return this.fromEntry(entry, 'HIT', now);
    }
    // Kept for stale-if-error: an entry expired less than staleIfErrorMs ago (or one the app refused).
    const staleMs = this.cache.staleIfErrorMs;
    const stale = entry !== undefined && staleMs > 0 && now < entry.freshUntil + staleMs ? entry : undefined;
    const generation = store.generation(this.scope);
    const flight = flights.joinable(key, generation);
    if (flight === undefined) return this.fetchAndStore(fetch, key, generation, stale, flights.start(key, generation));

    let shared: Entry | null;
    try {
      shared = await waitFor(flight, this.ex.abort.signal);
    } catch (err) {
      this.report('COALESCED');
      throw err;
    }
    if (shared !== null) {
      this.report('COALESCED');
      return this.fromEntry(shared, 'COALESCED', Date.now());
    }
    // The leader got nothing to share: this request makes its own call (and may store its answer).
    return this.fetchAndStore(fetch, key, store.generation(this.scope), stale, null);
  }

  /** Fresh, and no older than the app's max-age. */
  private acceptable(entry: Entry, now: number): boolean {
    if (now >= entry.freshUntil) return false;
    const maxAge = this.control.maxAgeMs;
    return maxAge === null || now - entry.storedAt <= maxAge;
  }

  /**
   * Makes the call and keeps a complete 200 for the key (and for the requests waiting on `flight`). A failure
   * is answered from `stale` when there is one; anything else goes to the app as CDF sent it.
   */
  private async fetchAndStore(
    fetch: () => Promise<UpstreamAnswer>,
    key: string,
    generation: number,
    stale: Entry | undefined,
    flight: Flight | null,
  ): Promise<UpstreamAnswer> {
    let answer: UpstreamAnswer;
    try {
      answer = await fetch();
    } catch (err) {
      this.share(key, flight, null);
      if (stale !== undefined && isGatewayFailure(err)) return this.serveStale(stale);
      this.report('MISS');
      throw err;
    }
    if (answer.status !== 200) {
      this.share(key, flight, null);
      return this.notOk(answer, stale);
    }
    const collected = await collect(answer.body, this.cache.maxEntryBytes);
    if (collected.kind !== 'whole') {
      if (collected.kind === 'error') answer.release();
      this.share(key, flight, null);
      return this.notCollected(answer, collected, stale);
    }
    // Read whole: the quota slot can go back now (the pipeline's release later is a no-op).
    answer.release();
    const entry = this.store(key, generation, answer.headers, collected.body);
    this.share(key, flight, entry);
    this.report('MISS');
    answer.headers['content-length'] = entry.headers['content-length'];
    return tag({ status: 200, headers: answer.headers, body: collected.body, release: answer.release }, 'MISS');
  }

  /** The requests waiting on this call get `entry`, or make their own calls (null). */
  private share(key: string, flight: Flight | null, entry: Entry | null): void {
    if (flight !== null) this.cache.flights.end(key, flight, entry);
  }

  /** Not a 200: CDF failing is answered from a stale entry when there is one, anything else passed on. */
  private notOk(answer: UpstreamAnswer, stale: Entry | undefined): UpstreamAnswer {
    if (stale !== undefined && answer.status >= 500) {
      discard(answer);
      return this.serveStale(stale);
    }
    this.report('MISS');
    return tag(answer, 'MISS');
  }

  /** A 200 not read whole: too large to keep (it streams on), or it broke off (its slot given back: stale, else 499 or 502). */
  private notCollected(
    answer: UpstreamAnswer,
    collected: Exclude<Collected, { kind: 'whole' }>,
    stale: Entry | undefined,
  ) {
    this.cache.counts.notStored++;
    if (collected.kind === 'over') {
      this.report('MISS');
      return tag({ ...answer, body: collected.stream }, 'MISS');
    }
    if (this.ex.abort.signal.aborted) {
      this.report('MISS');
      throw new GatewayErrors.CLIENT_GONE();
    }
    if (stale !== undefined) return this.serveStale(stale);
    this.report('MISS');
    throw new GatewayErrors.UPSTREAM_BROKEN(collected.error.message);
  }

  /** The entry for a complete 200 (its cookies left out), stored unless CDF said no-store or it does not fit. */
  private store(key: string, generation: number, answerHeaders: HeaderMap, body: Buffer): Entry {
    const cache = this.cache;
    const headers: HeaderMap = {};
    for (const name in answerHeaders) if (name !== 'set-cookie') headers[name] = answerHeaders[name];
    headers['content-length'] = String(body.length);
    const storedAt = Date.now();
    const entry: Entry = {
      status: 200,
      headers,
      body,
      storedAt,
      freshUntil: storedAt + this.rule.ttlMs,
      scope: this.scope,
      size: entrySize(key, headers, body),
    };
    if (!forbidsStoring(answerHeaders) && cache.store.set(key, entry, this.rule.ttlMs, generation)) {
      cache.counts.stored++;
    } else {
      cache.counts.notStored++;
    }
    return entry;
  }

  private serveStale(entry: Entry): UpstreamAnswer {
    this.report('STALE');
    return this.fromEntry(entry, 'STALE', Date.now());
  }

  private fromEntry(entry: Entry, outcome: CacheOutcome, now: number): UpstreamAnswer {
    const headers: HeaderMap = { ...entry.headers, 'x-cache': outcome };
    if (outcome === 'HIT' || outcome === 'STALE')
      headers.age = String(Math.max(0, Math.floor((now - entry.storedAt) / 1000)));
    return { status: entry.status, headers, body: entry.body, release: noop };
  }

  private report(outcome: CacheOutcome): void {
    if (this.reported) return;
    this.reported = true;
    this.cache.outcome(this.ex, outcome);
  }
}

/**
 * The gateway's response cache: off (a no-op) unless `cache.rules` has rules. Throws ConfigError at
 * start-up for a rule that could cache a write.
 */
export function createResponseCache(config: GatewayConfig, telemetry: Telemetry, log: Logger): ResponseCache {
  const cache = new MemoryResponseCache(config.cache, telemetry);
  if (cache.rules.empty) return cache;
  log.info(
    {
      rules: config.cache.rules.length,
      maxBytes: config.cache.maxBytes,
      maxEntryBytes: config.cache.maxEntryBytes,
      staleIfErrorMs: config.cache.staleIfErrorMs,
    },
    'response cache on',
  );
  return cache;
}
