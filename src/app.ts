import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { createResponseCache, type ResponseCache } from './cache/index.js';
import { IdentityResolver, normalizeTarget, unsafeTargetReason, VersionPolicy } from './cdf/index.js';
import { createQuotaStore } from './cluster/index.js';
import { effectiveConfig, type GatewayConfig, restartOnlyChanges } from './config/index.js';
import { FastifyRefused, type GatewayError, GatewayErrors } from './errors.js';
import { HEAP_GROWING_FACTOR, type HeapPolicy } from './heap.js';
import { createLogger } from './log.js';
import { createMetrics, type MetricsSource, type Telemetry } from './metrics/index.js';
import { BufferBudget, Forwarder, IdleWatchdog, Pipeline, Upstream } from './proxy/index.js';
import { AppDirectory, type QuotaStore, QuotaTree, Scheduler, ShadowLedger } from './quota/index.js';
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

/** What the metrics and the dashboard read: the parts' figures, not the parts. */
function metricsSource(parts: GatewayParts): MetricsSource {
  const { quota, scheduler } = parts;
  return {
    quota: {
      buckets: () => scheduler.allBuckets(),
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

export async function buildGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const log = options.logger ?? createLogger(config.log, options.logDestination);
  const metrics = createMetrics(config);
  const telemetry: Telemetry = metrics.telemetry;
  const upstream = new Upstream(config.upstream);
  const store: QuotaStore = await createQuotaStore(config, log);
  const scheduler = new Scheduler(store, config.queue, telemetry);
  for (const warning of config.warnings ?? []) log.warn(warning);
  const quota = new QuotaTree(config.limits, scheduler, config.adaptive, {
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
  });
  const circuit = new CircuitBreaker(config.circuit, (state) => {
    telemetry.circuitChanged(state);
    log.warn({ upstream: upstream.origin, state }, 'circuit breaker changed state');
  });
  const cache: ResponseCache = createResponseCache(config, telemetry, log);
  const tracing = await createTracing(config);
  if (tracing.enabled) log.info({ endpoint: config.tracing.endpoint ?? 'OTEL_EXPORTER_OTLP_*' }, 'tracing on');
  const shadow = new ShadowLedger(config.queue, (bucket, outcome, waitMs) =>
    telemetry.shadowDecision(bucket, outcome, waitMs),
  );
  const forwarder = new Forwarder({ config, upstream, scheduler, quota, circuit, telemetry, shadow, log });
  const buffers = new BufferBudget(config.retry.maxBufferedBytes);
  const watchdog = new IdleWatchdog(config.server.responseIdleTimeoutMs);
  const heapPolicy = options.heapPolicy;
  // Spare upload buffers serve the next uploads of a busy stretch; an idle gateway keeps none, and gives its
  // heap back.
  watchdog.onQuiet = () => {
    buffers.quiet();
    heapPolicy?.quiet(performance.now());
  };
  if (heapPolicy)
    watchdog.onThroughput = (bytesPerSecond, now) => {
      const was = heapPolicy.factorRaised;
      heapPolicy.observe(bytesPerSecond, now);
      if (heapPolicy.factorRaised !== was)
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
  const pipeline = new Pipeline({
    config,
    ...routeKnowledge(config),
    quota,
    scheduler,
    identities: new IdentityResolver(config.identity),
    buffers,
    watchdog,
    forwarder,
    cache,
    telemetry,
    tracing,
    log,
  });

  let draining = false;
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
    // Malformed HTTP (a bad header, an overflow, a timeout) answered in CDF's shape, like every other error.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
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
    },
    return503OnClosing: false,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    serverFactory: (handler) =>
      createServer(
        { keepAliveTimeout: config.server.keepAliveTimeoutMs },
        (req: IncomingMessage, res: ServerResponse) => {
          // Refused before routing: nothing in a request may steer the gateway to another host or path.
          const reason = unsafeTargetReason(req.url ?? '');
          if (reason === null) {
            // One form for routing, classification, buckets, cache keys and the upstream call.
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
        },
      ),
  });

  // Bodies are the pipeline's business: fastify must leave the stream unread.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const s = store.status();
    if (draining) return reply.code(503).send({ status: 'draining', store: s.mode });
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

  const parts: GatewayParts = {
    config,
    log,
    upstream,
    store,
    scheduler,
    quota,
    circuit,
    cache,
    telemetry,
    tracing,
    buffers,
    watchdog,
  };
  await metrics.mount(app, metricsSource(parts));

  let url = '';
  return {
    ...parts,
    app,
    adminUrl: () => metrics.adminUrl(),
    reconfigure(next) {
      for (const warning of next.warnings ?? []) log.warn(warning);
      const restart = restartOnlyChanges(config, next);
      const applied = effectiveConfig(config, next);
      // A new identity setup (JWKS) gets a new resolver; an unchanged one keeps its verified tokens.
      const identityChanged = JSON.stringify(config.identity) !== JSON.stringify(applied.identity);
      // Sections are updated in place: every part holding one sees the new values on its next read.
      log.level = applied.log.level;
      Object.assign(config.server, applied.server);
      Object.assign(config.log, applied.log);
      for (const key of HOT_SECTIONS) Object.assign(config[key], applied[key]);
      config.limits = applied.limits;
      config.clients = applied.clients;
      config.projects = applied.projects;
      config.identity = applied.identity;
      quota.reconfigure(config.limits);
      pipeline.reconfigure({
        ...routeKnowledge(config),
        identities: identityChanged ? new IdentityResolver(config.identity) : undefined,
      });
      forwarder.reconfigure();
      circuit.reconfigure();
      cache.reconfigure?.(config.cache);
      return restart;
    },
    get draining() {
      return draining;
    },
    async listen() {
      await app.listen({ host: config.server.host, port: config.server.port });
      const address = app.server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      url = `http://${host}:${address.port}`;
      return url;
    },
    async close() {
      if (draining) return;
      draining = true;
      const grace = setTimeout(() => app.server.closeAllConnections(), config.server.shutdownGraceMs);
      grace.unref();
      try {
        await app.close();
      } finally {
        clearTimeout(grace);
        scheduler.close();
        watchdog.stop();
        buffers.close();
        heapPolicy?.close();
        cache.close();
        await Promise.allSettled([upstream.close(), store.close(), metrics.close(), tracing.shutdown()]);
      }
    },
  };
}
