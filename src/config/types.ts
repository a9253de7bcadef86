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
  /**
   * The lowest rate CDF's messages stated for this budget, if any. CDF enforces what it states: the bucket
   * is never probed past it, and a 429 that names no figure is not this budget's.
   */
  statedRate?: number;
  /** The lowest concurrency CDF's messages stated for this budget, if any: never probed past either. */
  statedConcurrency?: number;
  /** When it was first learned (the gateway's monotonic clock, ms): 429s to calls sent before say nothing new. */
  at: number;
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
  decrease: number;
  increase: number;
  intervalMs: number;
  floor: number;
  holdMs: number;
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
