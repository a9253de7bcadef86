import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { call, oneLimit, type Stack, startStack } from './helpers.js';

const PROJECT = '/api/v1/projects/traced';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
}

/** A stand-in OTLP/HTTP collector: keeps the spans of every JSON export it receives. */
async function otlpReceiver(): Promise<{ url: string; spans: OtlpSpan[]; server: Server }> {
  const spans: OtlpSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && String(req.headers['content-type']).startsWith('application/json')) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...ss.spans);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        res.writeHead(415).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, spans, server };
}

const attr = (span: OtlpSpan, key: string): unknown => {
  const v = span.attributes.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  if ('arrayValue' in v)
    return (v.arrayValue as { values: Array<{ stringValue: string }> }).values.map((x) => x.stringValue);
  return Object.values(v)[0];
};

describe('OpenTelemetry tracing', () => {
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  beforeAll(async () => {
    receiver = await otlpReceiver();
  });
  afterAll(async () => {
    await new Promise((r) => receiver.server.close(r));
  });

  it('continues the app trace: server span, cache lookup, queue wait and one span per attempt; CDF sees the same trace', async () => {
    const stack: Stack = await startStack({
      ...oneLimit({ rate: 100, burst: 100, concurrency: 10 }),
      retry: { baseDelayMs: 1, maxDelayMs: 5 },
      cache: { rules: [{ match: ['/assets/byids'], methods: ['POST'], ttlMs: 60_000 }] },
      tracing: { enabled: true, endpoint: `${receiver.url}/v1/traces` },
    });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const appSpan = '00f067aa0ba902b7';
    let seen: string[] = [];
    try {
      stack.sim.inject({ status: 429, count: 1, match: '/assets/byids' });
      const first = await call(stack, `${PROJECT}/assets/byids`, {
        body: { items: [{ id: 1 }] },
        headers: { traceparent: `00-${traceId}-${appSpan}-01`, 'x-cdp-app': 'tracer' },
      });
      expect(first.status).toBe(200);
      const cached = await call(stack, `${PROJECT}/assets/byids`, {
        body: { items: [{ id: 1 }] },
        headers: { traceparent: `00-${traceId}-${appSpan}-01` },
      });
      expect(cached.headers.get('x-cache')).toBe('HIT');

      // CDF saw the gateway's attempts as parents, in the app's trace, never the app's own span id.
      seen = stack.sim
        .stats()
        .requests.filter((r) => r.url.endsWith('/assets/byids'))
        .map((r) => String(r.headers.traceparent));
      expect(seen).toHaveLength(2);
      for (const tp of seen) {
        const [, id, parent, flags] = tp.split('-');
        expect(id).toBe(traceId);
        expect(parent).not.toBe(appSpan);
        expect(flags).toBe('01');
      }
    } finally {
      await stack.close(); // flushes the span processor
    }

    const spans = receiver.spans.filter((s) => s.traceId === traceId);
    const servers = spans.filter((s) => s.kind === 2);
    expect(servers).toHaveLength(2);
    for (const s of servers) expect(s.parentSpanId).toBe(appSpan);
    const [miss, hit] = servers;
    expect(attr(miss, 'cdf_gateway.app')).toBe('tracer');
    expect(attr(miss, 'cdf_gateway.buckets')).toEqual(['all']);
    expect(attr(miss, 'cdf_gateway.cache')).toBe('MISS');
    expect(attr(miss, 'cdf_gateway.attempts')).toBe(2);
    expect(attr(miss, 'http.response.status_code')).toBe(200);
    expect(attr(hit, 'cdf_gateway.cache')).toBe('HIT');

    const children = (parent: OtlpSpan, name?: string) =>
      spans.filter((s) => s.parentSpanId === parent.spanId && (name === undefined || s.name === name));
    expect(children(miss, 'cache lookup')).toHaveLength(1);
    expect(children(miss, 'queue wait').map((s) => attr(s, 'cdf_gateway.attempt'))).toEqual([1, 2]);
    const attempts = children(miss).filter((s) => s.kind === 3);
    expect(attempts.map((s) => attr(s, 'http.response.status_code'))).toEqual([429, 200]);
    expect(attempts.map((s) => attr(s, 'cdf_gateway.upstream_throttled'))).toEqual([true, undefined]);
    expect(attr(attempts[1], 'http.request.resend_count')).toBe(1);
    // The traceparent CDF saw names these attempt spans.
    expect(attempts.map((s) => s.spanId)).toEqual(seen.map((tp) => tp.split('-')[2]));
    // The cached answer made no call: a lookup span and nothing else.
    expect(children(hit).map((s) => s.name)).toEqual(['cache lookup']);
  });

  it('is off by default and on with OTEL_TRACES_EXPORTER=otlp; bad OTEL values name the variable', () => {
    expect(loadConfig({ env: {} }).tracing.enabled).toBe(false);
    const on = loadConfig({
      env: {
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
        OTEL_SERVICE_NAME: 'gw-east',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
      },
    }).tracing;
    expect(on).toEqual({
      enabled: true,
      endpoint: 'http://collector:4318/v1/traces',
      serviceName: 'gw-east',
      sampleRatio: 0.25,
    });
    expect(loadConfig({ env: { OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' } }).tracing.enabled).toBe(
      false,
    );
    expect(() => loadConfig({ env: { OTEL_TRACES_SAMPLER: 'sometimes' } })).toThrow(/^OTEL_TRACES_SAMPLER: /);
  });

  it('off: the app traceparent goes upstream untouched', async () => {
    const stack = await startStack(oneLimit({ rate: 100, burst: 100, concurrency: 10 }));
    try {
      const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      expect((await call(stack, `${PROJECT}/assets`, { headers: { traceparent: tp } })).status).toBe(200);
      expect(stack.sim.stats().requests.at(-1)?.headers.traceparent).toBe(tp);
    } finally {
      await stack.close();
    }
  });
});
