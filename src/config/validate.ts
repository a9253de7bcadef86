import { ConfigError, collectIssues } from './error.js';
import { limitsCheck, limitWarnings } from './limits.js';
import { pathPattern } from './path-pattern.js';
import { bool, list, nullable, num, obj, oneOf, oneOrMany, optional, str } from './schema.js';
import type { GatewayConfig } from './types.js';

const CDF_VERSION = /^(\d{4})(\d{2})(\d{2})(-beta|-alpha)?$/;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** `YYYYMMDD[-beta|-alpha]` naming a real calendar date. */
export function isCdfVersion(value: string): boolean {
  const m = CDF_VERSION.exec(value);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

const version = (value: unknown, path: string) => {
  if (typeof value === 'number')
    throw new ConfigError(
      `${path}: expected a cdf-version string such as "20230101"; YAML reads ${value} unquoted as a number: write it in quotes, "${value}"`,
    );
  const s = str({ describe: 'a cdf-version YYYYMMDD with optional -beta or -alpha' })(value, path) as string;
  if (!isCdfVersion(s))
    throw new ConfigError(
      `${path}: expected a cdf-version YYYYMMDD with optional -beta or -alpha, got ${JSON.stringify(value)}`,
    );
  return s;
};
const pattern = pathPattern;
const method = (value: unknown, path: string) =>
  oneOf(...METHODS)(typeof value === 'string' ? value.toUpperCase() : value, path);
const positiveInt = num({ int: true, min: 1 });
const ms = num({ int: true, min: 0 });
const share = num({ gt: 0, max: 1 });

const schema = obj({
  server: obj({
    host: str({ nonEmpty: true }),
    port: num({ int: true, min: 0, max: 65535 }),
    bodyLimitBytes: positiveInt,
    shutdownGraceMs: ms,
    keepAliveTimeoutMs: ms,
    responseIdleTimeoutMs: positiveInt,
  }),
  upstream: obj({
    baseUrl: (value, path) => {
      const s = str({ nonEmpty: true })(value, path) as string;
      let url: URL;
      try {
        url = new URL(s);
      } catch {
        throw new ConfigError(
          `${path}: expected an http(s) URL such as https://api.cognitedata.com, got ${JSON.stringify(value)}`,
        );
      }
      if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.search || url.hash) {
        throw new ConfigError(
          `${path}: expected an http(s) origin without credentials, query or fragment, got ${JSON.stringify(value)}`,
        );
      }
      // Keep a base path if one is given (a CDF behind another prefix), without a trailing slash.
      return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    },
    timeoutMs: positiveInt,
    connectTimeoutMs: positiveInt,
    connections: positiveInt,
    keepAliveTimeoutMs: positiveInt,
  }),
  log: obj({
    level: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    pretty: oneOf('auto', true, false),
  }),
  cdfVersion: obj({
    default: nullable(version),
    override: bool,
    routes: list(obj({ match: oneOrMany(pattern), version, override: optional(bool, false) })),
  }),
  partitions: obj({ max: num({ int: true, min: 0 }) }),
  projects: nullable(list(str({ pattern: /^[A-Za-z0-9_.~-]+$/, describe: 'a project name' }), { nonEmpty: true })),
  identity: obj({
    jwks: nullable(
      obj({
        issuer: str({ nonEmpty: true }),
        url: optional(nullable(str({ pattern: /^https?:\/\//, describe: 'an http(s) URL of a JWKS' })), null),
        file: optional(nullable(str({ nonEmpty: true })), null),
        audience: optional(nullable(oneOrMany(str({ nonEmpty: true }))), null),
      }),
    ),
    maxCachedTokens: positiveInt,
  }),
  limits: limitsCheck,
  queue: obj({ maxWaitMs: ms, maxQueued: num({ int: true, min: 0 }) }),
  clients: list(
    obj({
      name: str({ nonEmpty: true }),
      weight: optional(num({ gt: 0 }), 1),
      priority: optional(num({ int: true }), 0),
      identities: optional(nullable(list(str({ nonEmpty: true }), { nonEmpty: true })), null),
    }),
  ),
  retry: obj({
    maxAttempts: positiveInt,
    baseDelayMs: ms,
    maxDelayMs: ms,
    maxWaitMs: ms,
    maxBodyBytes: num({ int: true, min: 0 }),
    maxBufferedBytes: num({ int: true, min: 0 }),
    budgetRatio: num({ min: 0 }),
    budgetWindowMs: positiveInt,
  }),
  adaptive: obj({
    enabled: bool,
    decrease: share,
    increase: share,
    intervalMs: positiveInt,
    floor: share,
    holdMs: ms,
    probeAbove: bool,
    maxRaise: num({ min: 1 }),
  }),
  circuit: obj({
    enabled: bool,
    windowMs: positiveInt,
    minCalls: positiveInt,
    failureRatio: share,
    openMs: positiveInt,
  }),
  cache: obj({
    maxBytes: num({ int: true, min: 0 }),
    maxEntryBytes: num({ int: true, min: 0 }),
    staleIfErrorMs: ms,
    rules: list(
      obj({
        match: oneOrMany(pattern),
        methods: optional(list(method, { nonEmpty: true }), ['GET']),
        ttlMs: positiveInt,
      }),
    ),
  }),
  metrics: obj({
    enabled: bool,
    port: nullable(num({ int: true, min: 0, max: 65535 })),
    host: nullable(str({ nonEmpty: true })),
    maxClients: positiveInt,
    token: nullable(str({ nonEmpty: true })),
  }),
  cluster: obj({
    redisUrl: nullable(
      str({
        pattern: /^(rediss?|rediss?-cluster|rediss?-sentinel):\/\//,
        describe: 'a redis://, rediss://, redis-cluster://host:port,... or redis-sentinel://host:port,.../master URL',
      }),
    ),
    keyPrefix: str({ nonEmpty: true }),
    leaseMs: positiveInt,
    expectedReplicas: positiveInt,
    commandTimeoutMs: positiveInt,
  }),
  tracing: obj({
    enabled: bool,
    endpoint: nullable(str({ pattern: /^https?:\/\/\S+$/, describe: 'an http(s) URL' })),
    serviceName: str({ nonEmpty: true }),
    sampleRatio: num({ min: 0, max: 1 }),
  }),
  headers: obj({ rateLimit: bool }),
});

/**
 * Checks across keys, run after the schema on what it could validate (so their problems are reported
 * together with the schema's). Each throws a ConfigError; one that trips over a part the schema already
 * refused is ignored.
 */
const crossChecks: Array<(config: GatewayConfig) => void> = [
  (config) => {
    const seen = new Set<string>();
    const issues: string[] = [];
    config.limits.forEach((limit, i) => {
      if (seen.has(limit?.name))
        issues.push(`limits[${i}].name: expected a unique name, got ${JSON.stringify(limit.name)} twice`);
      seen.add(limit?.name);
    });
    if (issues.length > 0) throw new ConfigError(issues);
  },
  (config) => {
    const { baseDelayMs, maxDelayMs } = config.retry;
    if (typeof baseDelayMs === 'number' && typeof maxDelayMs === 'number' && maxDelayMs < baseDelayMs)
      throw new ConfigError(
        `retry.maxDelayMs: expected a number >= retry.baseDelayMs (${baseDelayMs}), got ${maxDelayMs}`,
      );
  },
  (config) => {
    const jwks = config.identity?.jwks;
    if (jwks && (jwks.url == null) === (jwks.file == null))
      throw new ConfigError('identity.jwks: expected exactly one of url or file');
  },
];

/** The validated configuration, or one ConfigError listing every problem found. */
export function validateConfig(raw: unknown): GatewayConfig {
  let config = {} as GatewayConfig;
  collectIssues([
    () => {
      try {
        config = schema(raw, '') as GatewayConfig;
      } catch (err) {
        if (err instanceof ConfigError) config = (err.partial ?? {}) as GatewayConfig;
        throw err;
      }
    },
    ...crossChecks.map((check) => () => check(config)),
  ]);
  config.warnings = limitWarnings((raw as { limits?: unknown } | null)?.limits, config.limits);
  return config;
}
