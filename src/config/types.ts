export interface ServerConfig {
  host: string;
  port: number;
  bodyLimitBytes: number;
  shutdownGraceMs: number;
  keepAliveTimeoutMs: number;
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

export interface LimitConfig {
  name: string;
  match: string[];
  methods: string[] | null;
  per: 'project' | 'identity';
  rate: number;
  burst: number;
  concurrency: number;
  /** Applies only when no other entry matched. */
  fallback: boolean;
}

export interface QueueConfig {
  maxWaitMs: number;
  maxQueued: number;
}

export interface ClientConfig {
  name: string;
  weight: number;
  priority: number;
}

export interface RetryConfig {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxWaitMs: number;
  maxBodyBytes: number;
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
}
