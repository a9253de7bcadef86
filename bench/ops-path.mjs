// What issue #15 adds to the request path, measured alone (no sockets, so the figures do not depend on how
// busy the machine is as much as the overhead benchmark's): the RateLimit headers per answer, the tracing
// hooks when tracing is off, and the spans of one request when it is on (exported to nowhere).
import { performance } from 'node:perf_hooks';
import { fmt, header, requireDist, table, writeResult } from './lib/common.mjs';

requireDist();
const { Bucket } = await import('../dist/quota/index.js');
const { setRateLimitHeaders } = await import('../dist/proxy/ratelimit-headers.js');
const { OtelTracing } = await import('../dist/tracing/otel.js');

const ROUNDS = 5;
const N = Number(process.env.BENCH_OPS_N ?? 200_000);

/** ns per call of `fn`, median of ROUNDS runs of N calls, after one warm-up run. */
function measure(fn) {
  const runs = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) fn(i);
    const ns = ((performance.now() - t0) * 1e6) / N;
    if (r > 0) runs.push(ns);
  }
  runs.sort((a, b) => a - b);
  return runs[runs.length >> 1];
}

const limit = (name, rate, concurrency) => ({
  name,
  match: ['/**'],
  classes: null,
  methods: null,
  per: 'project',
  rate,
  burst: rate,
  concurrency,
  fallback: false,
});
// The default table's assets path: API, class and aggregate levels, per project and per identity.
const now0 = performance.now();
const buckets = [
  new Bucket(limit('assets', 200, 40), 'p', now0),
  new Bucket(limit('assets-identity', 150, 30), 'p/i', now0),
  new Bucket(limit('assets-analytical', 30, 15), 'p', now0),
  new Bucket(limit('assets-analytical-identity', 23, 12), 'p/i', now0),
];

header('ops-path', `${N} calls x ${ROUNDS} rounds (median), after a warm-up round`);
const rows = [];

rows.push({
  what: 'RateLimit headers for 4 buckets (one answer)',
  ns: measure(() => {
    const h = {};
    setRateLimitHeaders(h, buckets, performance.now(), 1);
    return h;
  }),
});
rows.push({
  what: 'the same, policies changing every call (adaptive cut each time)',
  ns: measure((i) => {
    buckets[2].rate = 30 - (i & 1);
    const h = {};
    setRateLimitHeaders(h, buckets, performance.now(), 1);
    return h;
  }),
});

// Tracing off: the request path's hooks are optional calls on a null trace.
const ex = { trace: null, attempts: 1 };
rows.push({
  what: 'tracing off: the 7 hooks of a request on a null trace',
  ns: measure(() => {
    ex.trace?.queueWait();
    ex.trace?.queueDone(null);
    ex.trace?.attempt();
    ex.trace?.attemptDone(200);
    ex.trace?.end(ex);
    ex.trace?.queueWait();
    return ex.trace?.attemptDone(200);
  }),
});

// Tracing on, every request sampled, spans batched to an OTLP endpoint nobody listens on (export fails
// quietly in the background; what is measured is the request path's side).
const tracing = new OtelTracing(
  { enabled: true, endpoint: 'http://127.0.0.1:9/v1/traces', serviceName: 'bench', sampleRatio: 1 },
  'https://api.cognitedata.com',
);
const fakeReq = { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } };
const route = { family: 'assets', read: true, template: '/assets/list' };
const spanRequest = (ratio) => {
  const t = ratio === 1 ? tracing : tracing10;
  return () => {
    const e = {
      req: fakeReq,
      method: 'POST',
      url: '/api/v1/projects/p/assets/list',
      route,
      family: 'assets',
      startedAt: performance.now(),
      buckets,
      attempts: 1,
      upstreamHeaders: {},
      app: { id: 'app' },
      status: 200,
      upstreamStatus: 200,
      queuedMs: 0,
      cache: null,
      error: undefined,
    };
    const trace = t.start(e);
    e.trace = trace;
    trace.queueWait();
    trace.queueDone(null);
    trace.attempt();
    trace.attemptDone(200);
    trace.end(e);
  };
};
const tracing10 = new OtelTracing(
  { enabled: true, endpoint: 'http://127.0.0.1:9/v1/traces', serviceName: 'bench', sampleRatio: 0.1 },
  'https://api.cognitedata.com',
);
const unsampledReq = { headers: {} };
rows.push({ what: 'tracing on, 100% sampled: the spans of one request', ns: measure(spanRequest(1)) });
fakeReq.headers = unsampledReq.headers; // new traces, so the 10 % ratio decides
rows.push({ what: 'tracing on, 10% sampled: the spans of one request', ns: measure(spanRequest(0.1)) });
await Promise.allSettled([tracing.shutdown(), tracing10.shutdown()]);

table(
  rows.map((r) => ({ what: r.what, 'ns per call': fmt(r.ns), 'µs per call': fmt(r.ns / 1000, 2) })),
  'Request-path additions of #15, alone',
);
writeResult('ops-path', { settings: { calls: N, rounds: ROUNDS }, rows });
