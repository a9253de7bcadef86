export interface ServerConfig {
  host: string;
  port: number;
  bodyLimitBytes: number;
  shutdownGraceMs: number;
  keepAliveTimeoutMs: number;
  /** An answer or a streamed request body that makes no progress this long is ended and its slot freed. */
  responseIdleTimeoutMs: number;
}

export interface UpstreamConfig {
  baseUrl: string;
  timeoutMs: number;
  connectTimeoutMs: number;
  connections: number;
  keepAliveTimeoutMs: number;
}

export interface LogConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  pretty: 'auto' | boolean;
}

export interface VersionRoute {
  match: string[];
  version: string;
  override: boolean;
}

export interface CdfVersionConfig {
  default: string | null;
  override: boolean;
  routes: VersionRoute[];
}

/** CDF's operation classes for rate limits (see src/cdf/routes.generated.ts). */
export type LimitClass = 'crud' | 'analytical' | 'aggregate' | 'other';

/**
 * Where a configured figure comes from: CDF publishes it (`documented`), the operator wrote it (`configured`),
 * or it is a conservative stand-in where CDF publishes none (`guessed`). Documented and configured figures are
 * ceilings (unless `probeAbove`); a guessed one is where learning starts.
 */
export type FigureOrigin = 'documented' | 'configured' | 'guessed';

/**
 * Where a bucket's effective figure stands now: still the table's, the figure a 429 named (`stated`), or one
 * the gateway found by itself (`learned`).
 */
export type Provenance = FigureOrigin | 'stated' | 'learned';

export interface FigureOrigins {
  rate: FigureOrigin;
  concurrency: FigureOrigin;
}

export interface LimitConfig {
  name: string;
  match: string[];
  /** Operation classes the bucket covers (aggregate calls count as analytical too); null: every class. */
  classes: LimitClass[] | null;
  methods: string[] | null;
  /** Per project (the default) or per project and identity. */
  per: 'project' | 'identity';
  rate: number;
  /** Defaults to the rate. */
  burst: number;
  concurrency: number;
  /** Applies only when no other entry matched. */
  fallback: boolean;
  /** `shadow`: counts what it would have queued or refused, never delays a call (default `enforce`). */
  mode?: 'enforce' | 'shadow';
  /** Where each figure comes from (config/default.yaml says so per bucket; a user's figure is `configured`). */
  source: FigureOrigins;
  /** May learning raise this bucket above its documented or configured figures? null: `adaptive.probeAbove`. */
  probeAbove: boolean | null;
  /** One bucket of this limit per API family (the fallback's guesses are not shared between APIs). */
  perFamily: boolean;
  /** Set on buckets the gateway learned from CDF's 429s rather than read from the config. */
  learned?: LearnedFigures;
}

/** What a learned bucket was learned for, and its figures (its `rate`/`concurrency` are the ceiling it may probe to). */
export interface LearnedFigures {
  /** "POST /assets/aggregate" (one operation), "assets analytical" (one class) or "assets *" (one API). */
  key: string;
  level: 'operation' | 'class' | 'api';
  /** The API family and operation class it was learned on. */
  family: string;
  cls: LimitClass;
  rate: number;
  concurrency: number;
  /** True when CDF's message stated the figure; false when estimated from the calls that got through. */
  stated: boolean;
  /** Where each learned figure stands: stated, learned, or still its parents' (a concurrency learned alone). */
  rateSource: Provenance;
  concurrencySource: Provenance;
  /** Per project, or per project and identity (CDF's message named the identity's budget). */
  per: 'project' | 'identity';
  /**
   * The lowest rate CDF's messages stated for this budget, if any. CDF enforces what it states: the bucket
   * is never probed past it, and a 429 that names no figure is not this budget's.
   */
  statedRate?: number;
  /** The lowest concurrency CDF's messages stated for this budget, if any: never probed past either. */
  statedConcurrency?: number;
  /** When it was first learned (the gateway's monotonic clock, ms): 429s to calls sent before say nothing new. */
  at: number;
  /** When CDF last refused a call charged to it: a learned bucket back at its ceiling long after is undone. */
  throttledAt: number;
}

export interface QueueConfig {
  maxWaitMs: number;
  maxQueued: number;
}

export interface ClientConfig {
  name: string;
  weight: number;
  priority: number;
  /** Identities (token principals) allowed to use this name; others are treated as unlisted. null: anyone. */
  identities: string[] | null;
}

/** Verifying bearer tokens, so that their claims may key per-identity buckets and fairness. */
export interface JwksConfig {
  issuer: string;
  /** Where the signing keys are: a JWKS URL (fetched and cached) or a file; exactly one. */
  url: string | null;
  file: string | null;
  audience: string[] | null;
}

export interface IdentityConfig {
  jwks: JwksConfig | null;
  /** Verified tokens remembered (by hash) so that a token is verified once, not per request. */
  maxCachedTokens: number;
}

export interface RetryConfig {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxWaitMs: number;
  maxBodyBytes: number;
  /** All bodies buffered for retries together stay under this; past it, bodies stream and are not retried. */
  maxBufferedBytes: number;
  budgetRatio: number;
  budgetWindowMs: number;
}

export interface AdaptiveConfig {
  enabled: boolean;
  /** The deepest cut of a rate on 429s, as a share of it. */
  decrease: number;
  /** Probing past where CDF pushed back: this share of that figure per interval. */
  increase: number;
  intervalMs: number;
  /** Never below this share of a bucket's starting figure. */
  floor: number;
  /** After a cut, the climb back to just under where CDF pushed back takes about this long. */
  holdMs: number;
  /** Whether learning may raise documented and configured figures (a project whose limits Cognite raised). */
  probeAbove: boolean;
  /** A guessed (or probed) figure is raised to at most this many times itself. */
  maxRaise: number;
}

export interface CircuitConfig {
  enabled: boolean;
  windowMs: number;
  minCalls: number;
  failureRatio: number;
  openMs: number;
}

export interface CacheRule {
  match: string[];
  methods: string[];
  ttlMs: number;
}

export interface CacheConfig {
  maxBytes: number;
  maxEntryBytes: number;
  staleIfErrorMs: number;
  rules: CacheRule[];
}

export interface MetricsConfig {
  enabled: boolean;
  port: number | null;
  host: string | null;
  maxClients: number;
  /** When set, the admin routes require `Authorization: Bearer <token>`. */
  token: string | null;
}

export interface ClusterConfig {
  redisUrl: string | null;
  keyPrefix: string;
  leaseMs: number;
  expectedReplicas: number;
  commandTimeoutMs: number;
}

export interface TracingConfig {
  enabled: boolean;
  /** OTLP/HTTP traces URL; null: OTEL_EXPORTER_OTLP_* or the exporter's default. */
  endpoint: string | null;
  serviceName: string;
  sampleRatio: number;
}

export interface HeadersConfig {
  /** RateLimit-Policy and RateLimit on every answer. */
  rateLimit: boolean;
}

export interface GatewayConfig {
  server: ServerConfig;
  upstream: UpstreamConfig;
  log: LogConfig;
  cdfVersion: CdfVersionConfig;
  partitions: { max: number };
  /** When set, only these projects are served; others get 403. */
  projects: string[] | null;
  identity: IdentityConfig;
  limits: LimitConfig[];
  queue: QueueConfig;
  clients: ClientConfig[];
  retry: RetryConfig;
  adaptive: AdaptiveConfig;
  circuit: CircuitConfig;
  cache: CacheConfig;
  metrics: MetricsConfig;
  cluster: ClusterConfig;
  tracing: TracingConfig;
  headers: HeadersConfig;
  /** Start-up warnings found while reading the config (logged once by the gateway). */
  warnings?: string[];
}
