import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ResponseCache } from '../cache/types.js';
import {
  credentialOf,
  type IdentityResolver,
  lookupRoute,
  parseCdfTarget,
  partitionProblem,
  queryPartitionProblem,
  type RouteInfo,
  type VersionPolicy,
} from '../cdf/index.js';
import type { GatewayConfig } from '../config/index.js';
import { GatewayError, GatewayErrors } from '../errors.js';
import type { Telemetry } from '../metrics/telemetry.js';
import type { AppDirectory, Bucket, QuotaTree, Scheduler } from '../quota/index.js';
import type { Tracing } from '../tracing/types.js';
import { sendAnswer, sendError } from './answer.js';
import { HeldBody, readRequestBody, TeeBody } from './body.js';
import type { BufferBudget } from './buffer-budget.js';
import { Exchange } from './exchange.js';
import type { Forwarder } from './forwarder.js';
import { upstreamRequestHeaders } from './headers.js';
import { setRateLimitHeaders } from './ratelimit-headers.js';
import type { UpstreamAnswer } from './types.js';
import type { IdleWatchdog, Watched } from './watchdog.js';

export interface PipelineParts {
  config: GatewayConfig;
  /** The quota tree: which buckets a request takes from (reconfigured in place on a reload). */
  quota: QuotaTree;
  scheduler: Scheduler;
  apps: AppDirectory;
  identities: IdentityResolver;
  /** The shared budget of bodies buffered for retries (retry.maxBufferedBytes). */
  buffers: BufferBudget;
  watchdog: IdleWatchdog;
  versions: VersionPolicy;
  forwarder: Forwarder;
  cache: ResponseCache;
  telemetry: Telemetry;
  tracing: Tracing;
  log: Logger;
}

const OUTSIDE_PROJECT_READ: RouteInfo = Object.freeze({ family: 'other', read: true, cls: 'other', template: null });
const OUTSIDE_PROJECT_WRITE: RouteInfo = Object.freeze({ family: 'other', read: false, cls: 'other', template: null });
const NO_BUCKETS: readonly Bucket[] = [];
/**
 * A write's body this large goes upstream as it arrives (TeeBody); a smaller one arrives in a socket read
 * or two, and reading it first costs nothing.
 */
const TEE_FROM_BYTES = 64 * 1024;

/**
 * The request path, in one direction: classify, check, read the body, cache lookup, quota admission and
 * upstream with retries (Forwarder), answer, record.
 */
export class Pipeline {
  private projects: ReadonlySet<string> | null;
  /** Whether any configured bucket is in `mode: shadow` (else the split costs nothing). */
  private anyShadow: boolean;
  /** Null while tracing is off: the request path then makes no span and no context. */
  private readonly tracing: Tracing | null;

  constructor(private readonly parts: PipelineParts) {
    this.projects = parts.config.projects === null ? null : new Set(parts.config.projects);
    this.tracing = parts.tracing.enabled ? parts.tracing : null;
    this.anyShadow = parts.config.limits.some((l) => l.mode === 'shadow');
  }

  /** Reload: what is derived from the config (buckets, apps, versions, projects) for the next requests. */
  reconfigure(next: Pick<PipelineParts, 'apps' | 'versions'> & Partial<Pick<PipelineParts, 'identities'>>): void {
    if (next.identities) this.parts.identities = next.identities;
    this.parts.apps = next.apps;
    this.parts.versions = next.versions;
    this.projects = this.parts.config.projects === null ? null : new Set(this.parts.config.projects);
    this.anyShadow = this.parts.config.limits.some((l) => l.mode === 'shadow');
  }

  handle(req: IncomingMessage, res: ServerResponse, requestId: string): void {
    const method = req.method ?? 'GET';
    const target = parseCdfTarget(req.url ?? '/');
    const route = target
      ? lookupRoute(method, target.rest)
      : method === 'GET' || method === 'HEAD' || method === 'OPTIONS'
        ? OUTSIDE_PROJECT_READ
        : OUTSIDE_PROJECT_WRITE;
    const ex = new Exchange(req, res, requestId, target, route);
    const watched = this.parts.watchdog.add(ex);
    if (this.tracing !== null) ex.trace = this.tracing.start(ex);
    let answer: UpstreamAnswer | null = null;
    let closed = false;
    res.once('close', () => {
      closed = true;
      this.record(ex, answer, watched);
    });
    this.run(ex).then(
      (a) => {
        if (a === null) return;
        if (closed) {
          // The app left while the answer was on its way: nobody will send it, so give its slot back here.
          if (!Buffer.isBuffer(a.body)) a.body.destroy();
          a.release();
          return;
        }
        answer = a;
        // Fresh figures at the moment of answering, cached answers included. An answer streamed from CDF
        // (no cache, or bypassed) still holds its slots; one the cache answered or read whole does not.
        if (ex.buckets.length > 0 && this.parts.config.headers.rateLimit)
          setRateLimitHeaders(
            a.headers,
            ex.buckets,
            performance.now(),
            ex.cache === null || ex.cache === 'BYPASS' ? 1 : 0,
          );
        sendAnswer(ex, a);
      },
      (err) => this.fail(ex, err),
    );
  }

  private async run(ex: Exchange): Promise<UpstreamAnswer | null> {
    const { config, cache, forwarder } = this.parts;
    const req = ex.req;
    const headers = req.headers;
    const declared = headers['content-length'];
    if (declared !== undefined && Number(declared) > config.server.bodyLimitBytes) {
      sendError(ex, new GatewayErrors.BODY_TOO_LARGE(config.server.bodyLimitBytes));
      return null;
    }
    const target = ex.target;
    if (target) {
      if (this.projects !== null && !this.projects.has(target.project)) {
        throw new GatewayErrors.PROJECT_NOT_ALLOWED(target.project.slice(0, 100));
      }
      // CDF answers 401 to a call without credentials: answered here, at no quota cost (the JS SDK's
      // first call carries no token and fetches one on this 401). A CORS preflight never carries any.
      if (ex.method !== 'OPTIONS' && credentialOf(headers) === null) throw new GatewayErrors.NO_CREDENTIALS();
      const problem = config.partitions.max > 0 ? queryPartitionProblem(target.query, config.partitions.max) : null;
      if (problem) throw new GatewayErrors.BAD_PARTITION(problem);
    }

    const who = this.parts.identities.resolve(headers);
    ex.caller = who instanceof Promise ? await who : who;
    ex.app = this.parts.apps.resolve(
      headers['x-cdf-gateway-client'],
      headers['x-cdp-app'],
      ex.caller,
      req.socket.remoteAddress,
    );

    ex.uploading = true;
    try {
      ex.body = await readRequestBody(
        req,
        config.retry.maxBodyBytes,
        config.server.bodyLimitBytes,
        this.parts.buffers,
        ex,
        ex.route.read ? Number.POSITIVE_INFINITY : TEE_FROM_BYTES,
      );
    } finally {
      ex.uploading = false;
    }
    if (target && ex.route.read && ex.body instanceof HeldBody && this.mayNeedJson(ex, ex.body.bytes())) {
      // Parsed (and decoded, within the bound) before it is searched; a body that does not decode goes
      // upstream untouched, unchecked and uncached.
      const json = await ex.parseBody(config.retry.maxBodyBytes);
      const partition = (json as { partition?: unknown } | undefined)?.partition;
      const problem =
        partition === undefined || config.partitions.max === 0
          ? null
          : partitionProblem(partition, config.partitions.max);
      if (problem) throw new GatewayErrors.BAD_PARTITION(problem);
    }

    ex.upstreamHeaders = upstreamRequestHeaders(req.headers);
    // A chunked body read whole goes upstream with its length, as one joined Buffer would.
    if (ex.body instanceof HeldBody && req.headers['content-length'] === undefined)
      ex.upstreamHeaders['content-length'] = String(ex.body.length);
    const version = this.parts.versions.choose(target?.rest ?? null, req.headers['cdf-version'] as string | undefined);
    if (version !== undefined) ex.upstreamHeaders['cdf-version'] = version;
    ex.buckets = target ? this.bucketsOf(ex, target.project, target.rest) : NO_BUCKETS;
    if (this.anyShadow && ex.buckets.length > 0) this.splitShadow(ex);

    const plan = cache.plan(ex);
    const answer =
      plan === null
        ? await forwarder.fetch(ex)
        : ex.trace === null
          ? await plan.run(() => forwarder.fetch(ex))
          : await ex.trace.cacheLookup(plan, () => forwarder.fetch(ex));
    ex.status = answer.status;
    cache.answered(ex);
    return answer;
  }

  /**
   * Whether a read's buffered body must be parsed: for the cache key, or for the partition check. A plain
   * JSON body that holds neither `partition` nor a `\u` escape cannot name a partition, so the common
   * uncached read skips the parse; an encoded body is decoded first.
   */
  private mayNeedJson(ex: Exchange, body: Buffer): boolean {
    const config = this.parts.config;
    if (config.cache.rules.length > 0) return true;
    if (config.partitions.max === 0 || body.length === 0) return false;
    const encoding = ex.req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return true;
    return body.includes('partition') || body.includes('\\u');
  }

  /** Shadow buckets are counted on the side (Forwarder), never admitted against. */
  private splitShadow(ex: Exchange): void {
    const all = ex.buckets;
    let shadow = 0;
    for (let i = 0; i < all.length; i++) if (all[i].limit.mode === 'shadow') shadow++;
    if (shadow === 0) return;
    ex.buckets = all.filter((b) => b.limit.mode !== 'shadow');
    ex.shadow = all.filter((b) => b.limit.mode === 'shadow');
  }

  private bucketsOf(ex: Exchange, project: string, rest: string): readonly Bucket[] {
    const quota = this.parts.quota;
    ex.bucketsChosenAt = quota.generation;
    const buckets = quota.bucketsFor(ex.method, rest, ex.route, project, () => ex.identity);
    return buckets.length === 0 ? NO_BUCKETS : buckets;
  }

  private fail(ex: Exchange, err: unknown): void {
    if (err instanceof GatewayError) {
      if (err.status === 499) {
        ex.status = 499;
        ex.error ??= err.message;
        ex.errorCode ??= err.code;
        return;
      }
      let headers = err.headers;
      if (err.status === 429 && ex.buckets.length > 0 && this.parts.config.headers.rateLimit) {
        const withFigures = { ...headers };
        setRateLimitHeaders(withFigures, ex.buckets, performance.now());
        headers = withFigures;
      }
      sendError(ex, err, headers);
      return;
    }
    this.parts.log.error({ reqId: ex.requestId, err }, 'unexpected error on the request path');
    sendError(ex, new GatewayErrors.INTERNAL());
  }

  /** The record stage: once per request, when the app's connection is done with it. */
  private record(ex: Exchange, answer: UpstreamAnswer | null, watched: Watched): void {
    this.parts.watchdog.delete(watched);
    if (ex.bufferedBytes > 0) {
      this.parts.buffers.give(ex.bufferedBytes, ex.body instanceof TeeBody ? ex.body.release() : null);
      ex.bufferedBytes = 0;
    }
    if (!ex.res.writableFinished) {
      ex.abort.abort();
      if (ex.status === 0 || !ex.res.headersSent) ex.status = 499;
      ex.errorCode ??= GatewayErrors.CLIENT_GONE.code;
      if (answer && !Buffer.isBuffer(answer.body)) answer.body.destroy();
    }
    answer?.release();
    const durationMs = performance.now() - ex.startedAt;
    this.parts.telemetry.requestDone(ex, durationMs);
    ex.trace?.end();
    const q = ex.url.indexOf('?');
    // The gateway's own 5xx and CDF's failures are an operator's business: warn, still one line.
    const log = this.parts.log;
    (ex.status >= 500 || ex.upstreamStatus >= 500 ? log.warn : log.info).call(
      log,
      {
        reqId: ex.upstreamRequestId ?? ex.requestId,
        method: ex.method,
        path: q === -1 ? ex.url : ex.url.slice(0, q),
        status: ex.status,
        upstreamStatus: ex.upstreamStatus || undefined,
        durationMs: Math.round(durationMs * 10) / 10,
        client: ex.app.id,
        family: ex.family,
        attempts: ex.attempts || undefined,
        queuedMs: ex.queuedMs > 0 ? Math.round(ex.queuedMs) : undefined,
        cache: ex.cache ?? undefined,
        err: ex.error,
        errCode: ex.errorCode,
      },
      'request',
    );
  }
}
