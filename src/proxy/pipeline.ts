import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ResponseCache } from '../cache/types.js';
import {
  lookupRoute,
  parseCdfTarget,
  partitionInQuery,
  partitionProblem,
  type RouteInfo,
  type VersionPolicy,
} from '../cdf/index.js';
import type { GatewayConfig } from '../config/index.js';
import type { Telemetry } from '../metrics/telemetry.js';
import type { AppDirectory, Bucket, QuotaTree, Scheduler } from '../quota/index.js';
import { sendAnswer, sendError, type UpstreamAnswer } from './answer.js';
import { readRequestBody } from './body.js';
import { GatewayError } from './errors.js';
import { Exchange } from './exchange.js';
import type { Forwarder } from './forwarder.js';
import { upstreamRequestHeaders } from './headers.js';

export interface PipelineParts {
  config: GatewayConfig;
  /** The quota tree: which buckets a request takes from. */
  quota: QuotaTree;
  scheduler: Scheduler;
  apps: AppDirectory;
  versions: VersionPolicy;
  forwarder: Forwarder;
  cache: ResponseCache;
  telemetry: Telemetry;
  log: Logger;
}

const OUTSIDE_PROJECT_READ: RouteInfo = Object.freeze({ family: 'other', read: true, cls: 'other', template: null });
const OUTSIDE_PROJECT_WRITE: RouteInfo = Object.freeze({ family: 'other', read: false, cls: 'other', template: null });
const NO_BUCKETS: readonly Bucket[] = [];

/**
 * The request path, in one direction: classify, check, read the body, cache lookup, quota admission and
 * upstream with retries (Forwarder), answer, record.
 */
export class Pipeline {
  constructor(private readonly parts: PipelineParts) {}

  handle(req: IncomingMessage, res: ServerResponse, requestId: string): void {
    const method = req.method ?? 'GET';
    const target = parseCdfTarget(req.url ?? '/');
    const route = target
      ? lookupRoute(method, target.rest)
      : method === 'GET' || method === 'HEAD' || method === 'OPTIONS'
        ? OUTSIDE_PROJECT_READ
        : OUTSIDE_PROJECT_WRITE;
    const ex = new Exchange(req, res, requestId, target, route);
    const headers = req.headers;
    ex.app = this.parts.apps.resolve(
      headers['x-cdf-gateway-client'],
      headers['x-cdp-app'],
      () => (headers.authorization ? ex.identity : null),
      req.socket.remoteAddress,
    );
    let answer: UpstreamAnswer | null = null;
    let closed = false;
    res.once('close', () => {
      closed = true;
      this.record(ex, answer);
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
        sendAnswer(ex, a);
      },
      (err) => this.fail(ex, err),
    );
  }

  private async run(ex: Exchange): Promise<UpstreamAnswer | null> {
    const { config, cache, forwarder } = this.parts;
    const req = ex.req;
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > config.server.bodyLimitBytes) {
      sendError(ex, 413, `Request body is larger than the gateway's limit of ${config.server.bodyLimitBytes} bytes.`, {
        connection: 'close',
      });
      return null;
    }
    const target = ex.target;
    if (target) {
      const partition = partitionInQuery(target.query);
      const problem = partition === null ? null : partitionProblem(partition, config.partitions.max);
      if (problem) throw new GatewayError(400, problem);
    }

    ex.body = await readRequestBody(req, config.retry.maxBodyBytes, config.server.bodyLimitBytes);
    if (target && Buffer.isBuffer(ex.body) && ex.body.includes('partition')) {
      const partition = (ex.json() as { partition?: unknown } | undefined)?.partition;
      const problem = partition === undefined ? null : partitionProblem(partition, config.partitions.max);
      if (problem) throw new GatewayError(400, problem);
    }

    ex.upstreamHeaders = upstreamRequestHeaders(req.headers);
    const version = this.parts.versions.choose(target?.rest ?? null, req.headers['cdf-version'] as string | undefined);
    if (version !== undefined) ex.upstreamHeaders['cdf-version'] = version;
    ex.buckets = target ? this.bucketsOf(ex, target.project, target.rest) : NO_BUCKETS;

    const plan = cache.plan(ex);
    const answer = plan ? await plan.run(() => forwarder.fetch(ex)) : await forwarder.fetch(ex);
    ex.status = answer.status;
    cache.answered(ex);
    return answer;
  }

  private bucketsOf(ex: Exchange, project: string, rest: string): readonly Bucket[] {
    const buckets = this.parts.quota.bucketsFor(ex.method, rest, ex.route, project, () => ex.identity);
    return buckets.length === 0 ? NO_BUCKETS : buckets;
  }

  private fail(ex: Exchange, err: unknown): void {
    if (err instanceof GatewayError) {
      if (err.status === 499) {
        ex.status = 499;
        ex.error = err.message;
        return;
      }
      sendError(ex, err.status, err.message, err.headers);
      return;
    }
    this.parts.log.error({ reqId: ex.requestId, err }, 'unexpected error on the request path');
    sendError(ex, 500, 'The gateway failed to handle the request.');
  }

  /** The record stage: once per request, when the app's connection is done with it. */
  private record(ex: Exchange, answer: UpstreamAnswer | null): void {
    if (!ex.res.writableFinished) {
      ex.abort.abort();
      if (ex.status === 0 || !ex.res.headersSent) ex.status = 499;
      if (answer && !Buffer.isBuffer(answer.body)) answer.body.destroy();
    }
    answer?.release();
    const durationMs = performance.now() - ex.startedAt;
    this.parts.telemetry.requestDone(ex, durationMs);
    const q = ex.url.indexOf('?');
    this.parts.log.info(
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
      },
      'request',
    );
  }
}
