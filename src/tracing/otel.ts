import {
  type Attributes,
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';
import type { TracingConfig } from '../config/index.js';
import type { Exchange } from '../proxy/exchange.js';
import type { CachePlan, UpstreamAnswer } from '../proxy/types.js';
import { GATEWAY_VERSION } from '../version.js';
import type { RequestTrace, Tracing } from './types.js';

/** Attribute names of the gateway's own, next to the semantic conventions' HTTP ones. */
const ATTR = {
  app: 'cdf_gateway.app',
  family: 'cdf_gateway.family',
  buckets: 'cdf_gateway.buckets',
  attempt: 'cdf_gateway.attempt',
  attempts: 'cdf_gateway.attempts',
  cache: 'cdf_gateway.cache',
  queueMs: 'cdf_gateway.queue_ms',
  queueRejected: 'cdf_gateway.queue_rejected',
  throttled: 'cdf_gateway.upstream_throttled',
  upstreamStatus: 'cdf_gateway.upstream_status',
} as const;

const propagator = new W3CTraceContextPropagator();

function sampler(ratio: number): Sampler {
  // Parent-based: an app that sampled its trace gets the gateway's spans, one that did not gets none.
  const root =
    ratio >= 1 ? new AlwaysOnSampler() : ratio <= 0 ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio);
  return new ParentBasedSampler({ root });
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function bucketNames(ex: Exchange): string[] {
  const names = new Array<string>(ex.buckets.length);
  for (let i = 0; i < ex.buckets.length; i++) names[i] = ex.buckets[i].limit.name;
  return names;
}

/**
 * Spans with explicit parents: the request's context is held by its RequestTrace and handed to each child,
 * so no context manager (AsyncLocalStorage) runs on the request path.
 */
class OtelRequestTrace implements RequestTrace {
  private readonly server: Span;
  private readonly context: Context;
  private wait: Span | null = null;
  private upstream: Span | null = null;
  /** A trace the sampler dropped gets no child spans: only its context goes upstream. */
  private readonly recording: boolean;

  constructor(
    private readonly owner: OtelTracing,
    private readonly ex: Exchange,
  ) {
    const parent = propagator.extract(ROOT_CONTEXT, ex.req.headers, defaultTextMapGetter);
    const template = ex.route.template;
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: ex.method,
      [ATTR_URL_PATH]: pathOf(ex.url),
      [ATTR.family]: ex.family,
    };
    if (template !== null) attributes[ATTR_HTTP_ROUTE] = template;
    this.server = owner.tracer.startSpan(
      template === null ? ex.method : `${ex.method} ${template}`,
      { kind: SpanKind.SERVER, startTime: ex.startedAt, attributes },
      parent,
    );
    this.context = trace.setSpan(parent, this.server);
    this.recording = this.server.isRecording();
  }

  async cacheLookup(plan: CachePlan, fetch: () => Promise<UpstreamAnswer>): Promise<UpstreamAnswer> {
    if (!this.recording) return plan.run(fetch);
    const span = this.owner.tracer.startSpan('cache lookup', undefined, this.context);
    let open = true;
    const close = () => {
      if (!open) return;
      open = false;
      span.setAttribute(ATTR.cache, this.ex.cache ?? 'MISS');
      span.end();
    };
    try {
      return await plan.run(() => {
        close();
        return fetch();
      });
    } finally {
      close();
    }
  }

  queueWait(): void {
    if (!this.recording) return;
    this.wait?.end();
    this.wait = this.owner.tracer.startSpan(
      'queue wait',
      { attributes: { [ATTR.attempt]: this.ex.attempts, [ATTR.buckets]: bucketNames(this.ex) } },
      this.context,
    );
  }

  queueDone(rejected: string | null): void {
    const span = this.wait;
    if (span === null) return;
    this.wait = null;
    if (rejected !== null) span.setAttribute(ATTR.queueRejected, rejected);
    span.end();
  }

  attempt(): void {
    const ex = this.ex;
    if (!this.recording) {
      // Still one trace: CDF sees the (unsampled) server span as the parent.
      propagator.inject(this.context, ex.upstreamHeaders, defaultTextMapSetter);
      return;
    }
    this.upstream?.end();
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: ex.method,
      [ATTR_SERVER_ADDRESS]: this.owner.host,
      [ATTR_SERVER_PORT]: this.owner.port,
      [ATTR_URL_PATH]: pathOf(ex.url),
      [ATTR.attempt]: ex.attempts,
    };
    if (ex.attempts > 1) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = ex.attempts - 1;
    const span = this.owner.tracer.startSpan(ex.method, { kind: SpanKind.CLIENT, attributes }, this.context);
    this.upstream = span;
    // CDF (and whatever traces it) sees the gateway's attempt as the parent, in the app's trace.
    propagator.inject(trace.setSpan(this.context, span), ex.upstreamHeaders, defaultTextMapSetter);
  }

  attemptDone(status: number, error?: string): void {
    const span = this.upstream;
    if (span === null) return;
    this.upstream = null;
    if (status > 0) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    if (status === 429) span.setAttribute(ATTR.throttled, true);
    if (status === 0 || status >= 500) {
      span.setAttribute(ATTR_ERROR_TYPE, error ?? String(status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }

  end(): void {
    const ex = this.ex;
    if (!this.recording) {
      this.server.end();
      return;
    }
    this.queueDone(null);
    this.attemptDone(ex.upstreamStatus, ex.error);
    const span = this.server;
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, ex.status);
    span.setAttribute(ATTR.app, ex.app.id);
    if (ex.buckets.length > 0) span.setAttribute(ATTR.buckets, bucketNames(ex));
    if (ex.attempts > 0) span.setAttribute(ATTR.attempts, ex.attempts);
    if (ex.upstreamStatus > 0) span.setAttribute(ATTR.upstreamStatus, ex.upstreamStatus);
    if (ex.queuedMs > 0) span.setAttribute(ATTR.queueMs, Math.round(ex.queuedMs * 10) / 10);
    if (ex.cache !== null) span.setAttribute(ATTR.cache, ex.cache);
    if (ex.status >= 500) {
      span.setAttribute(ATTR_ERROR_TYPE, String(ex.status));
      span.setStatus({ code: SpanStatusCode.ERROR, message: ex.error });
    }
    span.end();
  }
}

export class OtelTracing implements Tracing {
  readonly enabled = true;
  readonly tracer: Tracer;
  readonly host: string;
  readonly port: number;
  private readonly provider: BasicTracerProvider;

  constructor(config: TracingConfig, upstreamBaseUrl: string) {
    const upstream = new URL(upstreamBaseUrl);
    this.host = upstream.hostname;
    this.port = Number(upstream.port) || (upstream.protocol === 'https:' ? 443 : 80);
    // The exporter reads OTEL_EXPORTER_OTLP_* itself when no URL is configured.
    const exporter = new OTLPTraceExporter(config.endpoint ? { url: config.endpoint } : {});
    const resource = defaultResource()
      .merge(detectResources({ detectors: [envDetector] }))
      .merge(
        resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName, [ATTR_SERVICE_VERSION]: GATEWAY_VERSION }),
      );
    this.provider = new BasicTracerProvider({
      resource,
      sampler: sampler(config.sampleRatio),
      spanProcessors: [new BatchSpanProcessor(exporter)],
    });
    this.tracer = this.provider.getTracer('cdf-gateway', GATEWAY_VERSION);
  }

  start(ex: Exchange): RequestTrace {
    return new OtelRequestTrace(this, ex);
  }

  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}
