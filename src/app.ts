import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { createResponseCache, type ResponseCache } from './cache/index.js';
import { IdentityResolver, normalizeTarget, unsafeTargetReason, VersionPolicy } from './cdf/index.js';
import { createQuotaStore } from './cluster/index.js';
import { effectiveConfig, type GatewayConfig, restartOnlyChanges } from './config/index.js';
import { FastifyRefused, type GatewayError, GatewayErrors } from './errors.js';
import { HEAP_GROWING_FACTOR, type HeapPolicy } from './heap.js';
import { createLogger } from './log.js';
import { createMetrics, type Metrics, type MetricsSource, type Telemetry } from './metrics/index.js';
import { BufferBudget, Forwarder, IdleWatchdog, Pipeline, Upstream } from './proxy/index.js';
import { AppDirectory, type QuotaStore, QuotaTree, Scheduler, ShadowLedger, type TreeObserver } from './quota/index.js';
import { CircuitBreaker } from './retry/index.js';
import { SCHEMALESS } from './schemaless.js';
import { createTracing, type Tracing } from './tracing/index.js';

export interface GatewayOptions {
  /** Where log lines go (tests capture them); stdout by default. */
  logDestination?: NodeJS.WritableStream;
  logger?: Logger;
  /** The process's heap policy (src/heap.ts), fed by the idle watchdog's sweeps; the CLI passes one. */
  heapPolicy?: HeapPolicy | null;
}

/** The gateway's parts, for the admin endpoints (metrics, dashboard) and for tests. */
export interface GatewayParts {
  config: GatewayConfig;
  log: Logger;
  upstream: Upstream;
  store: QuotaStore;
  scheduler: Scheduler;
  /** The quota tree: configured and learned buckets; `reconfigure(limits)` keeps the state of surviving ones. */
  quota: QuotaTree;
  circuit: CircuitBreaker;
  cache: ResponseCache;
  telemetry: Telemetry;
  tracing: Tracing;
  /** Bodies buffered for retries (retry.maxBufferedBytes). */
  buffers: BufferBudget;
  /** Requests in flight, checked for progress (server.responseIdleTimeoutMs). */
  watchdog: IdleWatchdog;
}

export interface Gateway extends GatewayParts {
  app: FastifyInstance;
  /** The separate admin server (metrics.port), when there is one. */
  adminUrl(): string | null;
  /** Set once shutdown began: /readyz answers 503. */
  readonly draining: boolean;
  listen(): Promise<string>;
  /**
   * Applies a reloaded configuration in place: requests in flight and in the queue carry on. Returns the
   * restart-only keys that changed and were left as they run.
   */
  reconfigure(next: GatewayConfig): string[];
  /** Stops accepting, lets requests in flight finish (up to shutdownGraceMs), then closes. */
  close(): Promise<void>;
}

const RESERVED = ['/healthz', '/readyz'];

/** Sections a reload changes in place (the rest: restart-only, or lists replaced whole). */
const HOT_SECTIONS = ['cdfVersion', 'partitions', 'queue', 'retry', 'adaptive', 'circuit', 'cache', 'headers'] as const;

/** The request path's own parts, which only the gateway holds. */
interface RequestPath {
  pipeline: Pipeline;
  forwarder: Forwarder;
}

/**
 * Wires the gateway in steps, each a function below: the parts that own the state, the request path over
 * them, the heap policy fed by the watchdog, the HTTP server, the admin side (metrics.mount), then the
 * Gateway's reload and shutdown.
 */
export async function buildGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const log = options.logger ?? createLogger(config.log, options.logDestination);
  const metrics = createMetrics(config);
  const parts = await createParts(config, log, metrics.telemetry);
  const path = requestPath(parts);
  const heapPolicy = options.heapPolicy ?? null;
  followTraffic(parts, heapPolicy);
  let draining = false;
  const app = mainServer(parts, path.pipeline, () => draining);
  await metrics.mount(app, metricsSource(parts));

  return {
    ...parts,
    app,
    adminUrl: () => metrics.adminUrl(),
    reconfigure: (next) => reconfigure(parts, path, next),
    get draining() {
      return draining;
    },
    async listen() {
      await app.listen({ host: config.server.host, port: config.server.port });
      const address = app.server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${host}:${address.port}`;
    },
    async close() {
      if (draining) return;
      draining = true;
      await shutdown(app, parts, metrics, heapPolicy);
    },
  };
}

/**
 * Stops accepting, lets requests in flight finish (up to server.shutdownGraceMs; then their connections go),
 * then stops every part's timers and closes its connections.
 */
async function shutdown(app: FastifyInstance, parts: GatewayParts, metrics: Metrics, heapPolicy: HeapPolicy | null) {
  const grace = setTimeout(() => app.server.closeAllConnections(), parts.config.server.shutdownGraceMs);
  grace.unref();
  try {
    await app.close();
  } finally {
    clearTimeout(grace);
    parts.scheduler.close();
    parts.watchdog.stop();
    parts.buffers.close();
    heapPolicy?.close();
    parts.cache.close();
    await Promise.allSettled([parts.upstream.close(), parts.store.close(), metrics.close(), parts.tracing.shutdown()]);
  }
}

/** The parts that own the gateway's state, each created once; a reload changes them in place. */
async function createParts(config: GatewayConfig, log: Logger, telemetry: Telemetry): Promise<GatewayParts> {
  const upstream = new Upstream(config.upstream);
  const store: QuotaStore = await createQuotaStore(config, log);
  const scheduler = new Scheduler(store, config.queue, telemetry);
  for (const warning of config.warnings ?? []) log.warn(warning);
  const quota = new QuotaTree(config.limits, scheduler, config.adaptive, treeObserver(telemetry, log));
  const circuit = new CircuitBreaker(config.circuit, (state) => {
    telemetry.circuitChanged(state);
    log.warn({ upstream: upstream.origin, state }, 'circuit breaker changed state');
  });
  const cache: ResponseCache = createResponseCache(config, telemetry, log);
  const tracing = await createTracing(config);
  if (tracing.enabled) log.info({ endpoint: config.tracing.endpoint ?? 'OTEL_EXPORTER_OTLP_*' }, 'tracing on');
  const buffers = new BufferBudget(config.retry.maxBufferedBytes);
  const watchdog = new IdleWatchdog(config.server.responseIdleTimeoutMs);
  return { config, log, upstream, store, scheduler, quota, circuit, cache, telemetry, tracing, buffers, watchdog };
}

/** The quota tree's changes of figures, for the metrics and the log. */
function treeObserver(telemetry: Telemetry, log: Logger): TreeObserver {
  return {
    limitChanged(change) {
      telemetry.limitChanged(change);
      log.info(
        {
          bucket: change.bucket.key,
          direction: change.direction,
          kind: change.kind,
          rate: Math.round(change.rate * 100) / 100,
          concurrency: change.concurrency,
        },
        'effective limit changed',
      );
    },
    learned(limit) {
      const f = limit.learned!;
      log.warn(
        {
          bucket: limit.name,
          for: f.key,
          level: f.level,
          rate: Math.round(f.rate * 100) / 100,
          concurrency: f.concurrency,
          stated: f.stated,
        },
        'learned a limit CDF enforces without a bucket of its own',
      );
    },
  };
}

/**
 * What the pipeline derives from the config: who the apps are, which cdf-version. Which buckets a path
 * takes is the quota tree's (QuotaTree.reconfigure keeps the state of buckets whose name survives).
 */
function routeKnowledge(config: GatewayConfig) {
  return {
    apps: new AppDirectory(config.clients),
    versions: new VersionPolicy(config.cdfVersion),
  };
}

/** The request path over the parts: the pipeline, and the forwarder it hands each request to upstream. */
function requestPath(parts: GatewayParts): RequestPath {
  const { config, telemetry } = parts;
  const shadow = new ShadowLedger(
    config.queue,
    (bucket, outcome, waitMs) => telemetry.shadowDecision(bucket, outcome, waitMs),
    parts.scheduler,
  );
  const forwarder = new Forwarder({ ...parts, shadow });
  const pipeline = new Pipeline({
    ...parts,
    ...routeKnowledge(config),
    identities: new IdentityResolver(config.identity),
    forwarder,
  });
  return { pipeline, forwarder };
}

/**
 * The watchdog's sweeps feed the heap policy (src/heap.ts) and the upload buffers: spare buffers serve the
 * next uploads of a busy stretch, and an idle gateway keeps none and gives its heap back.
 */
function followTraffic(parts: GatewayParts, heapPolicy: HeapPolicy | null): void {
  const { watchdog, buffers, log } = parts;
  watchdog.onQuiet = () => {
    buffers.quiet();
    heapPolicy?.quiet(performance.now());
  };
  if (heapPolicy === null) return;
  watchdog.onThroughput = (bytesPerSecond, now) => {
    const was = heapPolicy.factorRaised;
    heapPolicy.observe(bytesPerSecond, now);
    if (heapPolicy.factorRaised === was) return;
    log.info(
      {
        heapGrowingFactor: heapPolicy.factorRaised ? HEAP_GROWING_FACTOR : 'v8',
        mibPerSecond: Math.round(bytesPerSecond / 2 ** 20),
      },
      heapPolicy.factorRaised
        ? 'large bodies: old generation given room for their buffers'
        : "heap back to V8's own growing factor",
    );
  };
}

/** The main server: fastify without parsing, every CDF path handed to the pipeline, the gateway's own few. */
function mainServer(parts: GatewayParts, pipeline: Pipeline, draining: () => boolean): FastifyInstance {
  const { config, log } = parts;
  const idPrefix = randomBytes(4).toString('hex');
  let idCounter = 0;
  const app: FastifyInstance = Fastify({
    ...SCHEMALESS,
    loggerInstance: log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // One log line per request, written by the pipeline: no child logger per request.
    childLoggerFactory: (logger) => logger,
    genReqId: (req) => {
      const sent = req.headers['x-request-id'];
      return typeof sent === 'string' && sent.length > 0 && sent.length <= 200 ? sent : `gw-${idPrefix}-${++idCounter}`;
    },
    routerOptions: { maxParamLength: 65_535 },
    forceCloseConnections: 'idle',
    clientErrorHandler: malformedRequestHandler(log),
    return503OnClosing: false,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    serverFactory: (handler) => guardedServer(config, log, handler),
  });
  // Bodies are the pipeline's business: fastify must leave the stream unread.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));
  addRoutes(app, pipeline, parts.store, draining);
  answerErrors(app, log);
  return app;
}

/** Malformed HTTP (a bad header, an overflow, a timeout) answered in CDF's shape, like every other error. */
function malformedRequestHandler(log: Logger) {
  return (err: NodeJS.ErrnoException, socket: Duplex): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const refused: GatewayError =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new GatewayErrors.REQUEST_TIMEOUT()
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? new GatewayErrors.HEADERS_TOO_LARGE()
          : new GatewayErrors.MALFORMED_REQUEST(err.code ?? 'parse error');
    const body = refused.body();
    const status = refused.status;
    log.info({ status, err: refused.message, errCode: refused.code }, 'request');
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(err);
  };
}

/**
 * node's server, refusing before routing a target that could steer the gateway to another host or path,
 * and putting every other one in the one form used for routing, classification, buckets, cache keys and
 * the upstream call.
 */
function guardedServer(
  config: GatewayConfig,
  log: Logger,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Server {
  return createServer({ keepAliveTimeout: config.server.keepAliveTimeoutMs }, (req, res) => {
    const reason = unsafeTargetReason(req.url ?? '');
    if (reason === null) {
      req.url = normalizeTarget(req.url as string);
      return handler(req, res);
    }
    const refused = new GatewayErrors.BAD_TARGET(reason);
    const body = refused.body();
    res.writeHead(refused.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...refused.headers,
    });
    res.end(body);
    log.info({ method: req.method, status: refused.status, err: reason, errCode: refused.code }, 'request');
  });
}

/** /healthz and /readyz, and every other path and method to the pipeline (the request is hijacked). */
function addRoutes(app: FastifyInstance, pipeline: Pipeline, store: QuotaStore, draining: () => boolean): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const s = store.status();
    if (draining()) return reply.code(503).send({ status: 'draining', store: s.mode });
    return { status: s.healthy ? 'ready' : 'degraded', store: s.mode };
  });
  const forward = (request: { raw: IncomingMessage; id: string }, reply: { hijack(): void; raw: ServerResponse }) => {
    reply.hijack();
    pipeline.handle(request.raw, reply.raw, request.id);
  };
  app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url: '/*', handler: forward });
  for (const path of RESERVED) {
    // The gateway's own paths answer only their own method; others still go to CDF.
    app.route({ method: ['POST', 'PUT', 'PATCH', 'DELETE'], url: path, handler: forward });
  }
}

/** What fastify itself refuses or fails at, in CDF's shape with the gateway's codes. */
function answerErrors(app: FastifyInstance, log: Logger): void {
  app.setNotFoundHandler((_req, reply) => {
    const missing = new GatewayErrors.NOT_FOUND();
    reply.code(missing.status).type('application/json').send(missing.body());
  });
  app.setErrorHandler((err, _req, reply) => {
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) log.error({ err }, 'gateway error');
    const answer = status >= 500 ? new GatewayErrors.INTERNAL() : new FastifyRefused(status, (err as Error).message);
    reply.code(answer.status).type('application/json').send(answer.body());
  });
}

/** What the metrics and the dashboard read: the parts' figures, not the parts. */
function metricsSource(parts: GatewayParts): MetricsSource {
  const { quota, scheduler } = parts;
  return {
    quota: {
      buckets: () => scheduler.allBuckets(),
      queuedAt: (bucket) => scheduler.queuedAt(bucket),
      get limits() {
        return quota.limits;
      },
      learned: () => quota.learned(),
    },
    circuit: parts.circuit,
    store: parts.store,
    cache: parts.cache,
    upstream: parts.config.upstream.baseUrl,
    log: parts.log,
  };
}

/**
 * Applies a reloaded configuration in place: the sections each part holds are updated, so every part sees
 * the new values on its next read. Returns the restart-only keys that changed and were left as they run.
 */
function reconfigure(parts: GatewayParts, path: RequestPath, next: GatewayConfig): string[] {
  const { config, log } = parts;
  for (const warning of next.warnings ?? []) log.warn(warning);
  const restart = restartOnlyChanges(config, next);
  const applied = effectiveConfig(config, next);
  // A new identity setup (JWKS) gets a new resolver; an unchanged one keeps its verified tokens.
  const identityChanged = JSON.stringify(config.identity) !== JSON.stringify(applied.identity);
  log.level = applied.log.level;
  Object.assign(config.server, applied.server);
  Object.assign(config.log, applied.log);
  for (const key of HOT_SECTIONS) Object.assign(config[key], applied[key]);
  config.limits = applied.limits;
  config.clients = applied.clients;
  config.projects = applied.projects;
  config.identity = applied.identity;
  parts.quota.reconfigure(config.limits);
  path.pipeline.reconfigure({
    ...routeKnowledge(config),
    identities: identityChanged ? new IdentityResolver(config.identity) : undefined,
  });
  path.forwarder.reconfigure();
  parts.circuit.reconfigure();
  parts.cache.reconfigure?.(config.cache);
  return restart;
}
