import type { IncomingHttpHeaders } from 'node:http';
import type { IdentityStats, RequestRecord, SimStats } from './types.js';

const MAX_KEYS = 1000;
const MAX_REQUESTS = 200;

export class Stats {
  calls = 0;
  ok = 0;
  throttled = 0;
  faults = 0;
  inFlight = 0;
  maxInFlight = 0;
  created = 0;
  private byIdentity = new Map<string, IdentityStats>();
  private throttledBy = new Map<string, number>();
  private byClass = new Map<string, IdentityStats>();
  private byPath = new Map<string, number>();
  private byOperation = new Map<string, IdentityStats>();
  // A ring buffer: recording a request is one store, not an array shift.
  private ring: RequestRecord[] = [];
  private ringNext = 0;

  /** Counts an arriving /api call. */
  begin(method: string, url: string, path: string, headers: IncomingHttpHeaders): void {
    this.calls++;
    if (++this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
    const key = `${method} ${path}`;
    const n = this.byPath.get(key);
    if (n !== undefined) this.byPath.set(key, n + 1);
    else if (this.byPath.size < MAX_KEYS) this.byPath.set(key, 1);
    const record: RequestRecord = { method, url, headers };
    if (this.ring.length < MAX_REQUESTS) this.ring.push(record);
    else this.ring[this.ringNext] = record;
    this.ringNext = (this.ringNext + 1) % MAX_REQUESTS;
  }

  end(): void {
    this.inFlight--;
  }

  /** The counters for an identity; a throwaway object once MAX_KEYS identities are tracked. */
  identity(id: string): IdentityStats {
    let s = this.byIdentity.get(id);
    if (!s) {
      s = { calls: 0, ok: 0, throttled: 0 };
      if (this.byIdentity.size < MAX_KEYS) this.byIdentity.set(id, s);
    }
    return s;
  }

  /** Counts a throttle 429 and the budget that gave it. */
  throttle(by: string): void {
    this.throttled++;
    this.throttledBy.set(by, (this.throttledBy.get(by) ?? 0) + 1);
  }

  /** The counters of an API's operation class ("assets/crud"); the key space is the simulator's own, small. */
  classOf(key: string): IdentityStats {
    return countersOf(this.byClass, key);
  }

  /** The counters of an operation ("POST /assets/byids"); a throwaway object past MAX_KEYS operations. */
  operation(method: string, segments: readonly string[]): IdentityStats {
    return countersOf(this.byOperation, operationKey(method, segments));
  }

  snapshot(withRequests = true): SimStats {
    const full = this.ring.length === MAX_REQUESTS;
    return {
      calls: this.calls,
      ok: this.ok,
      throttled: this.throttled,
      throttledBy: Object.fromEntries(this.throttledBy),
      byClass: Object.fromEntries([...this.byClass].map(([k, v]) => [k, { ...v }])),
      faults: this.faults,
      inFlight: this.inFlight,
      maxInFlight: this.maxInFlight,
      byIdentity: Object.fromEntries([...this.byIdentity].map(([k, v]) => [k, { ...v }])),
      byPath: Object.fromEntries(this.byPath),
      byOperation: Object.fromEntries([...this.byOperation].map(([k, v]) => [k, { ...v }])),
      created: this.created,
      requests: !withRequests
        ? []
        : full
          ? [...this.ring.slice(this.ringNext), ...this.ring.slice(0, this.ringNext)]
          : [...this.ring],
    };
  }

  /** inFlight is a live gauge, not a counter: calls still running will decrement it. */
  reset(): void {
    this.calls = 0;
    this.ok = 0;
    this.throttled = 0;
    this.faults = 0;
    this.maxInFlight = this.inFlight;
    this.created = 0;
    this.byIdentity = new Map();
    this.throttledBy = new Map();
    this.byClass = new Map();
    this.byPath = new Map();
    this.byOperation = new Map();
    this.ring = [];
    this.ringNext = 0;
  }
}

function countersOf(map: Map<string, IdentityStats>, key: string): IdentityStats {
  let s = map.get(key);
  if (!s) {
    s = { calls: 0, ok: 0, throttled: 0 };
    if (map.size < MAX_KEYS) map.set(key, s);
  }
  return s;
}

// Path words that name an operation or a sub-collection; every other segment is an id or a name.
const WORDS: ReadonlySet<string> = new Set([
  'aggregate',
  'byids',
  'call',
  'calls',
  'containers',
  'cursors',
  'data',
  'datamodels',
  'dbs',
  'delete',
  'filter',
  'inspect',
  'instances',
  'latest',
  'limits',
  'list',
  'logs',
  'query',
  'records',
  'response',
  'rows',
  'schedules',
  'search',
  'spaces',
  'statistics',
  'status',
  'subscriptions',
  'sync',
  'synthetic',
  'tables',
  'update',
  'upsert',
  'views',
]);

// Words followed by a name whatever it is (a RAW table may be called "rows").
const NAMED: ReadonlySet<string> = new Set(['dbs', 'tables']);

/** "POST /functions/{id}/call" for POST functions/42/call: `segments` is the path after the project. */
export function operationKey(method: string, segments: readonly string[]): string {
  let key = `${method} /${segments[0] ?? ''}`;
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i];
    if (s === '') continue;
    key += WORDS.has(s) && !NAMED.has(segments[i - 1]) ? `/${s}` : '/{id}';
  }
  return key;
}
