/** Requests/s refill, bucket size, max in flight. `Infinity` in a field means that dimension is unlimited. */
export interface SimLimit {
  rate: number;
  burst: number;
  concurrency: number;
}

/**
 * Whether 429 messages name the figure of the budget that refused. `budget` (rate): as the budget does: the
 * flat limit's messages name it, the documented tree's and `tight` ones' do not (CDF's rate messages may
 * name none).
 */
export interface SimFigures {
  rate: 'budget' | 'always' | 'never';
  concurrency: 'always' | 'never';
}

/** How a budget counts calls per second; concurrency is counted the same way in all three. */
export type SimLimiter = 'token-bucket' | 'fixed-window' | 'sliding-window';

/** The words of a throttle 429's message: CDF's, or another service's that names the figure differently. */
export type SimWording = 'cdf' | 'alternate';

/** The body of a throttle 429: CDF's JSON, plain text, or CDF's JSON padded past 64 KiB. */
export type SimThrottleBody = 'json' | 'text' | 'large-json';

/** An answer delay for the calls a glob matches (the work of a function call, a slow API). */
export interface SimRouteLatency {
  /** Glob on the path after /api/v1/projects/{project}, as in `tight`. */
  match: string;
  /** HTTP method; omitted = every method. */
  method?: string;
  ms: number;
}

/** An undocumented budget of its own, e.g. `{ match: '/assets/byids', rate: 10, concurrency: 4 }`. */
export interface SimTight {
  /** Glob on the path after /api/v1/projects/{project}: `*` one segment, `**` any number. */
  match: string;
  /** HTTP method; omitted = every method. */
  method?: string;
  /** Requests per second; omitted = unlimited. */
  rate?: number;
  /** Default: the rate. */
  burst?: number;
  /** Omitted = unlimited. */
  concurrency?: number;
  /** Default project. */
  per?: 'project' | 'identity';
  /** This budget's own choice of naming its figures, over the global `figures` (and `statesFigures`). */
  figures?: { rate?: 'always' | 'never'; concurrency?: 'always' | 'never' };
}

export interface SimOptions {
  /** Default 127.0.0.1. */
  host: string;
  /** Default 0 (a random free port); after start it holds the bound port. */
  port: number;
  /** Added before answering each /api call (default 0). */
  latencyMs: number;
  /**
   * Per-route answer delays, first match wins, instead of `latencyMs` for the admitted calls they match;
   * 429s still answer after `latencyMs` (a refusal costs CDF no work).
   */
  latency: SimRouteLatency[];
  /**
   * A flat limit per project AND per API family (first path segment after the project); null = unlimited.
   * With the tree on, an extra outermost level checked after the tree's levels.
   */
  project: SimLimit | null;
  /** The same per identity (bearer token, or a JWT's oid/sub claim) AND per family; null = unlimited. */
  identity: SimLimit | null;
  /**
   * Enforce CDF's documented limit tree (API, CRUD, Analytical, Aggregation; per project and per identity;
   * src/sim/budgets.ts). Default true; false leaves only the flat limits and the tight endpoints.
   */
  tree: boolean;
  /**
   * The documented tree's figures times this (default 1): 2 stands in for a project whose limits Cognite
   * raised, 0.5 for one whose quota other consumers share. Concurrencies are rounded, at least 1.
   */
  treeScale: number;
  /** Extra budgets CDF does not publish (an endpoint tighter than its API); checked before everything else. */
  tight: SimTight[];
  /**
   * A 429 still spends the rate of the budgets checked up to the one that refused (CDF's docs warn throttled
   * calls may use budget): a token of a token bucket, a call of the window's count in the windowed shapes.
   */
  chargeThrottled: boolean;
  /** How every budget counts its rate (default token-bucket: burst = one second of rate unless set). */
  limiter: SimLimiter;
  /** Which 429 messages name their figure (default: rate as each budget does, concurrency always). */
  figures: SimFigures;
  /**
   * false: no message names any number, whatever `figures` says (a stand-in that states none; the kind
   * words stay); `tight` budgets' own `figures` still apply. Default true.
   */
  statesFigures: boolean;
  /** The words of throttle 429 messages (default cdf). */
  wording: SimWording;
  /** The body of throttle 429s (default json, CDF's). */
  throttleBody: SimThrottleBody;
  /** When set, throttle 429s carry `Retry-After: N`. */
  retryAfterSeconds: number | null;
  /** Items per resource type (assets, events, timeseries), default 1000. */
  items: number;
}

export interface Fault {
  /** Affects the next `count` matching calls. */
  count: number;
  /** Substring of the path without query (default: every /api call). */
  match?: string;
  method?: string;
  /** Answer with this status and CDF's error body. */
  status?: number;
  /** Destroy the socket without answering (connection reset). */
  reset?: boolean;
  /** Wait this long before answering normally (or before the status / reset). */
  delayMs?: number;
  /** Retry-After header on the injected answer. */
  retryAfter?: string;
  /** Adds `cdf-is-auto-retryable: true` and `"isAutoRetryable": true` in the body. */
  autoRetryable?: boolean;
  /** With reset: send headers and part of the body first, then destroy. */
  afterHeaders?: boolean;
}

export interface IdentityStats {
  calls: number;
  ok: number;
  throttled: number;
}

export interface RequestRecord {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface SimStats {
  /** /api calls received (including throttled and faulted). */
  calls: number;
  /** Answered 2xx. */
  ok: number;
  /** Answered 429 by the throttle (not by faults). */
  throttled: number;
  /** 429s by the budget that refused them: "assets/aggregate identity concurrency" -> count. */
  throttledBy: Record<string, number>;
  /**
   * Calls by the API and operation class the simulator gave them ("assets/crud", "assets/analytical",
   * "assets/aggregate"; aggregate calls are not also counted as analytical here), for calls with a class.
   */
  byClass: Record<string, IdentityStats>;
  faults: number;
  inFlight: number;
  maxInFlight: number;
  byIdentity: Record<string, IdentityStats>;
  /** "METHOD /path/without/query" -> count, first 1000 distinct keys. */
  byPath: Record<string, number>;
  /**
   * Calls by operation, "METHOD /family/op" with ids and names replaced by {id} ("POST /assets/byids",
   * "GET /assets/{id}", "POST /functions/{id}/call"), first 1000 distinct keys; counted from the throttle's
   * check on (authenticated, routed calls).
   */
  byOperation: Record<string, IdentityStats>;
  /** Items created via create calls. */
  created: number;
  /** The last 200 requests seen, oldest first. */
  requests: RequestRecord[];
}

export interface Simulator {
  /** E.g. http://127.0.0.1:41234 */
  url: string;
  /** Live: update(...) changes this object in place. */
  options: SimOptions;
  /** Buckets keep their state; new rate/burst/concurrency apply from now. host/port are ignored. */
  update(options: Partial<SimOptions>): void;
  stats(): SimStats;
  /** Zeroes the counters, refills buckets, drops queued faults and created items. */
  reset(): void;
  inject(fault: Fault): void;
  /** Closes the server and all sockets. */
  close(): Promise<void>;
}
