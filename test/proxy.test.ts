import { createHash, randomBytes } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildGateway, type Gateway } from '../src/app.js';
import { layer, loadConfig } from '../src/config/index.js';
import { auth, LogCapture, type Stack, startStack, TOKEN } from './helpers.js';

const P = '/api/v1/projects/p';
const ECHO = `${P}/_sim/echo`;
const QUERY = '?b=2&a=1&a=%2F&x=%20&y=a+b&z=%7e~&e=&%C3%A6=%e2%82%ac';

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: answers are inspected field by field
  json: any;
}

interface SendOptions {
  method?: string;
  /** The raw request target, written as is (absolute-form, `..`, backslashes...). */
  path: string;
  headers?: OutgoingHttpHeaders;
  /** Sent whole, with a Content-Length. */
  body?: Buffer | string;
  /** Sent as separate writes without a Content-Length (chunked). */
  chunks?: Buffer[];
}

/** A raw HTTP/1.1 request on a fresh connection: the target, Host and body are exactly what is given. */
function send(base: string, opts: SendOptions): Promise<Reply> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: hostname, port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
          req.destroy();
        });
      },
    );
    req.on('error', reject);
    // Node sends no Content-Length of its own for DELETE and OPTIONS bodies.
    if (opts.body !== undefined && !req.hasHeader('content-length')) {
      req.setHeader('content-length', Buffer.byteLength(opts.body));
    }
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else req.end(opts.body);
  });
}

/** `{"error":{"code":status,"message":"...","gatewayCode":"CDFGW_..."}}` */
function expectCdfError(reply: Reply, status: number): string {
  expect(reply.status).toBe(status);
  expect(String(reply.headers['content-type'])).toMatch(/^application\/json/);
  expect(reply.json).toEqual({
    error: { code: status, message: expect.any(String), gatewayCode: expect.stringMatching(/^CDFGW_[A-Z_]+$/) },
  });
  expect(reply.json.error.message.length).toBeGreaterThan(0);
  return reply.json.error.message;
}

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface Recorder {
  url: string;
  host: string;
  requests: Recorded[];
  /** Connections opened to it, whether or not a request followed. */
  connections: number;
  close(): Promise<void>;
}

/** A tiny HTTP server that records what reaches it; `answer` may write its own response. */
async function startRecorder(answer?: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<Recorder> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      if (answer?.(req, res)) return;
      const body = JSON.stringify({ recorded: true });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  const rec: Recorder = {
    url: '',
    host: '',
    requests,
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  server.on('connection', () => rec.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  rec.url = `http://127.0.0.1:${port}`;
  rec.host = `127.0.0.1:${port}`;
  return rec;
}

interface Standalone {
  gateway: Gateway;
  url: string;
  logs: LogCapture;
  close(): Promise<void>;
}

/** A gateway pointed at any upstream (a recorder, a closed port). */
async function gatewayTo(baseUrl: string, overrides: Record<string, unknown> = {}): Promise<Standalone> {
  const logs = new LogCapture();
  const config = loadConfig({
    env: {},
    overrides: layer({ server: { port: 0 }, upstream: { baseUrl }, log: { pretty: false } }, overrides),
  });
  const gateway = await buildGateway(config, { logDestination: logs });
  const url = await gateway.listen();
  return { gateway, url, logs, close: () => gateway.close() };
}

/** Waits until `check` holds (the record stage runs when the response has closed). */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const lastRequest = (stack: Stack) => {
  const all = stack.sim.stats().requests;
  return all[all.length - 1];
};

describe('forwarding to the simulator', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ retry: { maxBodyBytes: 64 * 1024 } });
  });
  afterAll(async () => {
    await stack.close();
  });
  beforeEach(() => stack.sim.reset());

  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    it(`${method} reaches the simulator with path and query string byte for byte`, async () => {
      const path = `${ECHO}/${method.toLowerCase()}/A%2fb/%7E${QUERY}`;
      const reply = await send(stack.url, { method, path, headers: auth() });
      expect(reply.status).toBe(200);
      expect(reply.json.method).toBe(method);
      // The normal form goes upstream: %7E (an unreserved "~") decoded, the reserved %2f kept as sent.
      expect(reply.json.url).toBe(path.replace('%7E', '~'));
      expect(stack.sim.stats().calls).toBe(1);
    });
  }

  it('HEAD reaches the simulator with path and query string byte for byte', async () => {
    const path = `${ECHO}/head${QUERY}`;
    const reply = await send(stack.url, { method: 'HEAD', path, headers: auth() });
    expect(reply.status).toBe(200);
    expect(reply.body.length).toBe(0);
    expect(Number(reply.headers['content-length'])).toBeGreaterThan(0);
    const seen = lastRequest(stack);
    expect(stack.sim.stats().calls).toBe(1);
    expect(seen.method).toBe('HEAD');
    expect(seen.url).toBe(path);
  });

  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    it(`${method} bodies arrive unchanged (buffered size)`, async () => {
      const body = randomBytes(10_000);
      const reply = await send(stack.url, {
        method,
        path: ECHO,
        headers: { ...auth(), 'content-type': 'application/octet-stream' },
        body,
      });
      expect(reply.status).toBe(200);
      expect(reply.json.bodyBytes).toBe(body.length);
      expect(reply.json.bodySha256).toBe(sha256(body));
      expect(reply.json.headers['content-length']).toBe(String(body.length));
    });
  }

  it('a body above retry.maxBodyBytes streams through unchanged (Content-Length)', async () => {
    const body = randomBytes(1024 * 1024);
    const reply = await send(stack.url, {
      method: 'POST',
      path: ECHO,
      headers: { ...auth(), 'content-type': 'application/octet-stream' },
      body,
    });
    expect(reply.status).toBe(200);
    expect(reply.json.bodyBytes).toBe(body.length);
    expect(reply.json.bodySha256).toBe(sha256(body));
  });

  it('a large write kept for retries goes upstream while the app is still sending it (TeeBody)', async () => {
    // 64 KiB: kept for retries (retry.maxBodyBytes) and large enough to go as it arrives. The first half is
    // sent, then the app waits.
    const body = randomBytes(64 * 1024);
    const sent = new Promise<{ status: number; json: { bodyBytes: number; bodySha256: string } }>((resolve, reject) => {
      const req = request(`${stack.url}${ECHO}`, {
        method: 'POST',
        headers: { ...auth(), 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
      });
      req.on('response', (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(parts).toString()) }),
        );
      });
      req.on('error', reject);
      req.write(body.subarray(0, body.length / 2));
      // The call is upstream before the rest is sent: the simulator sees it arrive (its in-flight gauge).
      until(() => stack.sim.stats().inFlight === 1, 'the call upstream while the body is half sent').then(
        () => req.end(body.subarray(body.length / 2)),
        reject,
      );
    });
    const reply = await sent;
    expect(reply.status).toBe(200);
    expect(reply.json.bodyBytes).toBe(body.length);
    expect(reply.json.bodySha256).toBe(sha256(body));
    expect(stack.sim.stats().calls).toBe(1);
  });

  it('a chunked body without Content-Length arrives unchanged, small and above retry.maxBodyBytes', async () => {
    for (const sizes of [[100, 2000, 1], Array.from({ length: 16 }, () => 64 * 1024)]) {
      const chunks = sizes.map((n) => randomBytes(n));
      const whole = Buffer.concat(chunks);
      const reply = await send(stack.url, {
        method: 'POST',
        path: ECHO,
        headers: { ...auth(), 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
        chunks,
      });
      expect(reply.status).toBe(200);
      expect(reply.json.bodyBytes).toBe(whole.length);
      expect(reply.json.bodySha256).toBe(sha256(whole));
    }
  });

  it('a gzip-encoded body passes as is', async () => {
    const json = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ externalId: `asset-${i}` })) });
    const gz = gzipSync(json);
    const reply = await send(stack.url, {
      method: 'POST',
      path: ECHO,
      headers: { ...auth(), 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gz,
    });
    expect(reply.status).toBe(200);
    expect(reply.json.contentEncoding).toBe('gzip');
    expect(reply.json.headers['content-encoding']).toBe('gzip');
    expect(reply.json.bodyBytes).toBe(gz.length);
    expect(reply.json.bodySha256).toBe(sha256(gz));
  });

  it('response bodies come back unchanged', async () => {
    const path = `${P}/_sim/blob?bytes=3000017`;
    const direct = await send(stack.sim.url, { path, headers: auth() });
    const proxied = await send(stack.url, { path, headers: auth() });
    expect(direct.body.length).toBe(3_000_017);
    expect(proxied.status).toBe(200);
    expect(proxied.body.length).toBe(3_000_017);
    expect(sha256(proxied.body)).toBe(sha256(direct.body));
    expect(proxied.headers['content-type']).toBe('application/octet-stream');
  });

  it('simulator errors (400, 401, 404, 409) come back unchanged, status and body', async () => {
    const cases: Array<{ path: string; headers: OutgoingHttpHeaders; status: number }> = [
      { path: `${P}/_sim/blob?bytes=lots`, headers: auth(), status: 400 },
      // Without any credential the gateway answers 401 itself (hardening.test.ts); a scheme CDF refuses goes through.
      { path: `${P}/assets`, headers: { authorization: 'Basic bm8=' }, status: 401 },
      { path: `${P}/nosuchfamily/x`, headers: auth(), status: 404 },
    ];
    for (const c of cases) {
      const direct = await send(stack.sim.url, { path: c.path, headers: c.headers });
      const proxied = await send(stack.url, { path: c.path, headers: c.headers });
      expect(direct.status).toBe(c.status);
      expect(proxied.status).toBe(c.status);
      expect(proxied.text).toBe(direct.text);
      expect(proxied.json.error.code).toBe(c.status);
    }
    stack.sim.inject({ count: 1, match: '/assets', status: 409 });
    const conflict = await send(stack.url, { path: `${P}/assets`, headers: auth() });
    expect(conflict.status).toBe(409);
    expect(conflict.json).toEqual({ error: { code: 409, message: 'Injected fault: Conflict' } });
  });

  it('passes Authorization and end-to-end headers, drops hop-by-hop ones, sets the upstream Host', async () => {
    const reply = await send(stack.url, {
      method: 'POST',
      path: `${ECHO}/headers`,
      headers: {
        ...auth(),
        host: 'gateway.local:1234',
        'x-foo': 'bar, baz',
        accept: 'application/json, text/plain;q=0.5',
        'cdf-version': '20230101',
        'content-type': 'application/json',
        connection: 'keep-alive, X-Hop-Named, x-other-named',
        'x-hop-named': 'must-not-pass',
        'x-other-named': 'must-not-pass-either',
        'keep-alive': 'timeout=5',
        'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
        'proxy-connection': 'keep-alive',
        te: 'trailers',
        trailer: 'x-checksum',
        upgrade: 'websocket',
        'transfer-encoding': 'chunked',
      },
      chunks: [Buffer.from('{"a":'), Buffer.from('1}')],
    });
    expect(reply.status).toBe(200);
    const h = reply.json.headers as Record<string, string>;
    expect(h.authorization).toBe(TOKEN);
    expect(h['x-foo']).toBe('bar, baz');
    expect(h.accept).toBe('application/json, text/plain;q=0.5');
    expect(h['cdf-version']).toBe('20230101');
    expect(h['content-type']).toBe('application/json');
    expect(h.host).toBe(new URL(stack.sim.url).host);
    for (const name of [
      'x-hop-named',
      'x-other-named',
      'keep-alive',
      'proxy-authorization',
      'proxy-connection',
      'te',
      'trailer',
      'upgrade',
      'transfer-encoding',
    ]) {
      expect(h, name).not.toHaveProperty(name);
    }
    // The gateway's own connection to the simulator may say keep-alive; never the app's tokens.
    expect(String(h.connection ?? '')).not.toMatch(/hop|named/i);
    expect(reply.json.bodySha256).toBe(sha256('{"a":1}'));
  });

  it("forwards the app's x-request-id and returns the simulator's", async () => {
    const sent = await send(stack.url, { path: `${ECHO}/id`, headers: { ...auth(), 'x-request-id': 'app-req-42' } });
    expect(sent.json.headers['x-request-id']).toBe('app-req-42');
    expect(sent.headers['x-request-id']).toBe('app-req-42');

    const unsent = await send(stack.url, { path: `${ECHO}/id`, headers: auth() });
    // The simulator makes up a UUID when none came; the gateway passes it back.
    expect(unsent.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    // The request log names the id the app got back.
    const logged = (id: unknown) => stack.logs.requests().some((l) => l.reqId === id);
    await until(() => logged('app-req-42') && logged(unsent.headers['x-request-id']), 'log lines with both ids');
  });

  it('answers /healthz and /readyz itself; other paths go to the simulator', async () => {
    const health = await send(stack.url, { path: '/healthz' });
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: 'ok' });
    const ready = await send(stack.url, { path: '/readyz' });
    expect(ready.status).toBe(200);
    expect(ready.json.status).toBe('ready');
    expect(stack.sim.stats().calls).toBe(0);

    // Not the gateway's: the simulator's own 404 for paths outside /api, and a project path is counted.
    const other = await send(stack.url, { path: '/healthzz' });
    expect(other.status).toBe(404);
    expect(other.json.error.message).toBe('Unknown path: /healthzz');
    const inside = await send(stack.url, { path: `${P}/healthz`, headers: auth() });
    expect(inside.status).toBe(404);
    expect(stack.sim.stats().byPath[`GET ${P}/healthz`]).toBe(1);
  });
});

describe('reserved paths and hop-by-hop response headers (recording upstream)', () => {
  let upstream: Recorder;
  let gw: Standalone;
  beforeAll(async () => {
    upstream = await startRecorder((req, res) => {
      if (req.url !== '/hop') return false;
      res.writeHead(200, {
        'content-type': 'text/plain',
        connection: 'keep-alive, x-hop-resp',
        'x-hop-resp': 'must-not-pass',
        'keep-alive': 'timeout=5, max=7',
        'proxy-authenticate': 'Basic realm="upstream"',
        'proxy-connection': 'keep-alive',
        trailer: 'x-checksum',
        upgrade: 'h2c',
        'x-end-to-end': 'kept',
      });
      res.addTrailers({ 'x-checksum': 'abc' });
      res.end('hop body');
      return true;
    });
    gw = await gatewayTo(upstream.url);
  });
  afterAll(async () => {
    await gw.close();
    await upstream.close();
  });
  beforeEach(() => {
    upstream.requests.length = 0;
  });

  it('/healthz and /readyz never reach the upstream; other methods and paths do', async () => {
    expect((await send(gw.url, { path: '/healthz' })).json).toEqual({ status: 'ok' });
    expect((await send(gw.url, { path: '/readyz' })).status).toBe(200);
    expect((await send(gw.url, { path: '/healthz?x=1' })).json).toEqual({ status: 'ok' });
    expect(upstream.requests).toHaveLength(0);

    for (const [method, path] of [
      ['GET', '/healthz/sub'],
      ['GET', '/readyz2'],
      ['POST', '/healthz'],
      ['DELETE', '/readyz'],
      ['GET', '/api/v1/token/inspect'],
      ['GET', '/'],
    ]) {
      const reply = await send(gw.url, { method, path, body: method === 'POST' ? '{}' : undefined });
      expect(reply.json, `${method} ${path}`).toEqual({ recorded: true });
    }
    expect(upstream.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET /healthz/sub',
      'GET /readyz2',
      'POST /healthz',
      'DELETE /readyz',
      'GET /api/v1/token/inspect',
      'GET /',
    ]);
  });

  it('does not pass hop-by-hop response headers to the app', async () => {
    const reply = await send(gw.url, { path: '/hop' });
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('hop body');
    expect(reply.headers['x-end-to-end']).toBe('kept');
    for (const name of ['x-hop-resp', 'proxy-authenticate', 'proxy-connection', 'trailer', 'upgrade']) {
      expect(reply.headers, name).not.toHaveProperty(name);
    }
    // The gateway's own keep-alive answer, not the upstream's.
    expect(reply.headers['keep-alive'] ?? '').not.toContain('max=7');
    expect(reply.headers.connection ?? '').not.toContain('x-hop-resp');
  });
});

describe('nothing but the upstream is ever contacted', () => {
  let stack: Stack;
  let evil: Recorder;
  beforeAll(async () => {
    evil = await startRecorder();
    stack = await startStack({ retry: { maxAttempts: 1 } });
  });
  afterAll(async () => {
    await stack.close();
    await evil.close();
  });
  beforeEach(() => stack.sim.reset());

  /** Either refused with 400 in CDF's shape (and nothing reached the simulator), or forwarded with the same path. */
  async function expectContained(target: string, headers: OutgoingHttpHeaders = {}, forwardedAs?: string) {
    const reply = await send(stack.url, { path: target, headers: { ...auth(), ...headers } });
    const seen = stack.sim.stats().requests;
    if (reply.status === 400 && seen.length === 0) {
      expectCdfError(reply, 400);
      expect(reply.headers['content-type']).toBe('application/json');
    } else if ((forwardedAs ?? target).startsWith('/api/')) {
      expect(
        seen.map((r) => r.url),
        target,
      ).toEqual([forwardedAs ?? target]);
      expect(seen[0].headers.host).toBe(new URL(stack.sim.url).host);
    } else {
      // The simulator counts /api calls only; its 404 names the path it got.
      expect(reply.status, target).toBe(404);
      expect(reply.json.error.message, target).toBe(`Unknown path: ${(forwardedAs ?? target).split('?')[0]}`);
    }
    expect(evil.requests).toHaveLength(0);
    expect(evil.connections).toBe(0);
    stack.sim.reset();
    return reply;
  }

  it('refuses absolute-form targets naming another host', async () => {
    for (const target of [
      `${evil.url}${ECHO}`,
      `http://evil.example${ECHO}`,
      `https://evil.example${ECHO}`,
      `${evil.url}/x`,
    ]) {
      const reply = await expectContained(target, {}, new URL(target).pathname);
      expect(reply.status, target).toBe(400);
    }
    // Absolute-form naming the upstream itself is not let through as a way around the checks either.
    const own = await expectContained(`${stack.sim.url}${ECHO}`, {}, ECHO);
    expect([200, 400]).toContain(own.status);
    expect(own.status).toBe(400);
  });

  it('a forged Host or X-Forwarded-Host does not steer the request', async () => {
    for (const headers of [
      { host: 'evil.example' },
      { host: evil.host },
      { 'x-forwarded-host': evil.host, 'x-forwarded-proto': 'http', forwarded: `host=${evil.host}` },
      { host: evil.host, 'x-forwarded-host': 'evil.example' },
    ]) {
      const reply = await expectContained(`${ECHO}/host?h=1`, headers);
      expect(reply.status).toBe(200);
      expect(reply.json.headers.host).toBe(new URL(stack.sim.url).host);
    }
  });

  it('refuses network-path, dot-segment and backslash targets', async () => {
    for (const target of [
      '//evil.example/x',
      `//${evil.host}/x`,
      `//${evil.host}${ECHO}`,
      '/api/../x',
      '/api/%2e%2e/x',
      '/api/%2E%2e/x',
      `${P}/%2E%2E/x`,
      `${P}/../../../x`,
      `${P}/_sim/echo/..`,
      `${P}/./_sim/echo`,
      `${P}/%2e/_sim/echo`,
      `${P}/a%2f..%2fb`,
      `${P}\\..\\x`,
      `/\\evil.example/x`,
      `${P}/%5c..%5cx`,
      `/%2f${evil.host}/x`,
      `${P}/%zz`,
    ]) {
      const reply = await expectContained(target);
      expect(reply.status, target).toBe(400);
    }
  });

  it('an encoded backslash reaches the simulator as written (a path segment, not a separator)', async () => {
    for (const target of [`/%5cevil.example/x`, `/%5C${evil.host}/x`, `${P}/%5cevil.example/x`]) {
      const reply = await expectContained(target);
      expect([400, 404], target).toContain(reply.status);
      // The simulator's own 404 for a path it does not know: forwarded, to the upstream only.
      expect(reply.status, target).toBe(404);
      expect(reply.json.error.gatewayCode, target).toBeUndefined();
    }
  });

  it('forwards a safe target with dots inside segments unchanged', async () => {
    const target = `${ECHO}/a..b/.hidden/x.y?p=../..&q=%2e%2e`;
    const reply = await expectContained(target);
    expect(reply.status).toBe(200);
    expect(reply.json.url).toBe(target);
  });
});

describe('upstream failures', () => {
  it('an upstream that cannot be reached answers 502 in CDF shape with x-request-id', async () => {
    const probe = await startRecorder();
    const closedUrl = probe.url;
    await probe.close();
    const gw = await gatewayTo(closedUrl, { retry: { maxAttempts: 1 } });
    try {
      const reply = await send(gw.url, { path: `${P}/assets`, headers: auth() });
      expectCdfError(reply, 502);
      expect(reply.headers['x-request-id']).toMatch(/\S/);
      const withId = await send(gw.url, { path: `${P}/assets`, headers: { ...auth(), 'x-request-id': 'mine-1' } });
      expectCdfError(withId, 502);
      expect(withId.headers['x-request-id']).toBe('mine-1');
    } finally {
      await gw.close();
    }
  });

  describe('timeouts', () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack({ upstream: { timeoutMs: 300 }, retry: { maxAttempts: 1 } });
    });
    afterAll(async () => {
      await stack.close();
    });

    it('an upstream that does not answer in upstream.timeoutMs answers 504 in CDF shape with x-request-id', async () => {
      const slow = await send(stack.url, { path: `${P}/_sim/slow?ms=3000`, headers: auth() });
      expectCdfError(slow, 504);
      expect(slow.headers['x-request-id']).toMatch(/\S/);

      stack.sim.inject({ count: 1, match: '/assets', delayMs: 3000 });
      const delayed = await send(stack.url, { path: `${P}/assets`, headers: { ...auth(), 'x-request-id': 'slow-2' } });
      expectCdfError(delayed, 504);
      expect(delayed.headers['x-request-id']).toBe('slow-2');
    });
  });
});

describe('cdf-version', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });
  const versionAt = async (path: string, sent?: string) => {
    const headers: OutgoingHttpHeaders = auth();
    if (sent !== undefined) headers['cdf-version'] = sent;
    const reply = await send(stack!.url, { path, headers });
    expect(reply.status).toBe(200);
    return reply.json.headers['cdf-version'] as string | undefined;
  };

  it('sends none of its own by default, and passes the app’s', async () => {
    stack = await startStack();
    expect(await versionAt(ECHO)).toBeUndefined();
    expect(await versionAt(ECHO, '20220101')).toBe('20220101');
  });

  it('adds the default when the app sent none, keeps the app’s when override is false', async () => {
    stack = await startStack({ cdfVersion: { default: '20230101', override: false } });
    expect(await versionAt(ECHO)).toBe('20230101');
    expect(await versionAt(ECHO, '20220101')).toBe('20220101');
  });

  it('replaces the app’s when override is true', async () => {
    stack = await startStack({ cdfVersion: { default: '20230101', override: true } });
    expect(await versionAt(ECHO, '20220101')).toBe('20230101');
    expect(await versionAt(ECHO)).toBe('20230101');
  });

  it('picks per-route versions by path', async () => {
    stack = await startStack({
      cdfVersion: {
        default: '20230101',
        routes: [
          { match: '/_sim/echo/beta/**', version: '20230101-beta' },
          { match: ['/_sim/echo/alpha', '/_sim/echo/alpha/**'], version: '20240202-alpha', override: true },
        ],
      },
    });
    expect(await versionAt(`${ECHO}/beta/models/x`)).toBe('20230101-beta');
    expect(await versionAt(`${ECHO}/beta/models/x`, '20220101')).toBe('20220101');
    expect(await versionAt(`${ECHO}/alpha`)).toBe('20240202-alpha');
    expect(await versionAt(`${ECHO}/alpha/y`, '20220101')).toBe('20240202-alpha');
    expect(await versionAt(`${ECHO}/other`)).toBe('20230101');
    expect(await versionAt(ECHO)).toBe('20230101');
    // Routes apply in every project.
    expect(await versionAt(`/api/v1/projects/other${ECHO.slice(P.length)}/beta/x`)).toBe('20230101-beta');
  });
});

describe('request body limit', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ server: { bodyLimitBytes: 1024 } });
  });
  afterAll(async () => {
    await stack.close();
  });
  beforeEach(() => stack.sim.reset());

  it('answers 413 to a declared Content-Length over the limit before the body is sent', async () => {
    const { hostname, port } = new URL(stack.url);
    const req = request({
      host: hostname,
      port,
      method: 'POST',
      path: ECHO,
      agent: false,
      headers: { ...auth(), 'content-type': 'application/json', 'content-length': '10000000' },
    });
    const replied = new Promise<Reply>((resolve, reject) => {
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text: body.toString(),
            json: JSON.parse(body.toString()),
          });
        });
      });
    });
    req.flushHeaders();
    try {
      const reply = await replied;
      const message = expectCdfError(reply, 413);
      expect(message).toContain('1024');
      expect(reply.headers['x-request-id']).toMatch(/\S/);
    } finally {
      req.destroy();
    }
    expect(stack.sim.stats().calls).toBe(0);
  });

  /**
   * A chunked POST of `chunks` random chunks of `size` bytes, each written once the last has gone out; `end`
   * ends the body after them, else it is left open so that the gateway has read every byte sent when it
   * answers (unread bytes would turn its close into a reset that may beat the answer to the client).
   * 'closed' when the connection broke before an answer was read whole, 'silent' when nothing came in 10 s.
   */
  async function chunkedOver(
    url: string,
    chunks: number,
    size: number,
    end: boolean,
  ): Promise<Reply | 'closed' | 'silent'> {
    const { hostname, port } = new URL(url);
    return new Promise((settle) => {
      const silent = setTimeout(() => resolve('silent'), 10_000);
      const resolve = (outcome: Reply | 'closed' | 'silent') => {
        clearTimeout(silent);
        settle(outcome);
        req.destroy();
      };
      const req = request({
        host: hostname,
        port,
        method: 'POST',
        path: ECHO,
        agent: false,
        headers: { ...auth(), 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      });
      req.on('error', () => resolve('closed'));
      req.on('response', (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', () => resolve('closed'));
        res.on('end', () => {
          const body = Buffer.concat(parts);
          let json: unknown;
          try {
            json = JSON.parse(body.toString());
          } catch {}
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString(), json });
        });
      });
      let i = 0;
      const next = () => {
        if (req.destroyed) return;
        if (i++ === chunks) {
          if (end) req.end();
          return;
        }
        req.write(randomBytes(size), () => setImmediate(next));
      };
      next();
    });
  }

  /** The request lines logged with CDFGW_BODY_TOO_LARGE (a line is written once the gateway is done). */
  const tooLarge = (s: Stack) => s.logs.requests().filter((l) => l.errCode === 'CDFGW_BODY_TOO_LARGE');

  it('answers 413 to a chunked body that grows past the limit, and the simulator never gets it', async () => {
    const before = tooLarge(stack).length;
    // 3 × 512 bytes: past the 1,024-byte limit on the third chunk, which the gateway reads whole.
    const outcome = await chunkedOver(stack.url, 3, 512, false);
    if (typeof outcome === 'string') throw new Error(`expected a 413, got ${outcome}`);
    expectCdfError(outcome, 413);
    // The rest of the body is not read: the connection is not reused.
    expect(outcome.headers.connection).toBe('close');
    await until(() => tooLarge(stack).length === before + 1, 'the 413 logged');
    // A body under retry.maxBodyBytes is read whole before its call: refused while read, it never left.
    expect(stack.sim.stats().calls).toBe(0);
    expect(stack.sim.stats().ok).toBe(0);
    // A body within the limit still passes.
    const fine = await send(stack.url, { method: 'POST', path: ECHO, headers: auth(), chunks: [randomBytes(1000)] });
    expect(fine.status).toBe(200);
    expect(fine.json.bodyBytes).toBe(1000);
  });

  it('holds streamed bodies (above retry.maxBodyBytes) to the limit too', async () => {
    const big = await startStack({ server: { bodyLimitBytes: 100 * 1024 }, retry: { maxBodyBytes: 16 * 1024 } });
    try {
      // Already streaming upstream when it passes the limit: the gateway cuts the app's connection.
      const outcome = await chunkedOver(big.url, 50, 4096, true);
      expect(outcome).toBe('closed');
      // Done once the gateway logged the request and the simulator closed every call it got: a body cut
      // short cannot reach it whole after that.
      await until(() => tooLarge(big).length === 1 && big.sim.stats().inFlight === 0, 'the request over');
      expect(big.sim.stats().calls).toBeLessThanOrEqual(1);
      expect(big.sim.stats().ok).toBe(0);
      // The app's body was too large: not recorded as CDF failing.
      const [line] = big.logs.requests();
      expect(line.err).toMatch(/larger than the gateway's limit of 102400 bytes/);
      expect([413, 499]).toContain(line.status);
      const fine = await send(big.url, {
        method: 'POST',
        path: ECHO,
        headers: auth(),
        chunks: Array.from({ length: 20 }, () => randomBytes(4096)),
      });
      expect(fine.status).toBe(200);
      expect(fine.json.bodyBytes).toBe(20 * 4096);
    } finally {
      await big.close();
    }
  });
});

describe('partition checks', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.close();
  });
  beforeEach(() => stack.sim.reset());

  it('refuses malformed partitions with 400 in CDF shape before calling CDF', async () => {
    for (const partition of ['3/2', '0/2', 'a/b', '1/0', '1', '%2F', '-1/2']) {
      const reply = await send(stack.url, { path: `${P}/assets?partition=${partition}`, headers: auth() });
      expectCdfError(reply, 400);
    }
    expect(stack.sim.stats().calls).toBe(0);
  });

  it('refuses more than 10 partitions, saying at most 10', async () => {
    const reply = await send(stack.url, { path: `${P}/assets?partition=1/11`, headers: auth() });
    const message = expectCdfError(reply, 400);
    expect(message).toMatch(/at most 10/);
    const body = await send(stack.url, {
      method: 'POST',
      path: `${P}/assets/list`,
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ partition: '1/20', limit: 10 }),
    });
    expect(expectCdfError(body, 400)).toMatch(/at most 10/);
    expect(stack.sim.stats().calls).toBe(0);
  });

  it('lets up to 10 partitions through', async () => {
    const reply = await send(stack.url, { path: `${P}/assets?partition=1/10&limit=5`, headers: auth() });
    expect(reply.status).toBe(200);
    expect(Array.isArray(reply.json.items)).toBe(true);
    const body = await send(stack.url, {
      method: 'POST',
      path: `${P}/assets/list`,
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ partition: '10/10', limit: 5 }),
    });
    expect(body.status).toBe(200);
    expect(stack.sim.stats().calls).toBe(2);
  });

  it('partitions.max: 0 turns the limit off', async () => {
    const open = await startStack({ partitions: { max: 0 } });
    try {
      const reply = await send(open.url, { path: `${P}/assets?partition=1/20&limit=5`, headers: auth() });
      expect(reply.status).toBe(200);
      const body = await send(open.url, {
        method: 'POST',
        path: `${P}/assets/list`,
        headers: { ...auth(), 'content-type': 'application/json' },
        body: JSON.stringify({ partition: '1/20', limit: 5 }),
      });
      expect(body.status).toBe(200);
      expect(open.sim.stats().calls).toBe(2);
    } finally {
      await open.close();
    }
  });
});

describe('request log', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.close();
  });

  it('writes exactly one line per proxied request, with no credentials anywhere', async () => {
    const secrets = {
      token: 'SECRETTOKEN-9f8e7d6c5b4a',
      cookie: 'COOKIESECRET-1a2b3c4d',
      apiKey: 'APIKEYSECRET-5e6f7a8b',
    };
    const headers = {
      authorization: `Bearer ${secrets.token}`,
      cookie: `session=${secrets.cookie}`,
      'api-key': secrets.apiKey,
    };
    const made = [
      await send(stack.url, { path: `${ECHO}/log?x=1`, headers }),
      await send(stack.url, { method: 'POST', path: `${P}/assets/list`, headers, body: '{"limit":1}' }),
      await send(stack.url, { method: 'HEAD', path: `${ECHO}/log`, headers }),
      await send(stack.url, { path: `${P}/nosuchfamily`, headers }),
      await send(stack.url, { path: `${P}/assets?partition=0/2`, headers }),
      await send(stack.url, { path: '/healthz', headers }),
    ];
    expect(made.map((r) => r.status)).toEqual([200, 200, 200, 404, 400, 200]);
    // A proxied call after /healthz: once its line is written, a line for /healthz would be before it.
    await send(stack.url, { path: `${ECHO}/after`, headers });
    await until(() => stack.logs.requests().length >= 6, 'the log lines');
    const logged = stack.logs.requests();
    expect(logged).toHaveLength(6);
    expect(logged[5].path).toBe(`${ECHO}/after`);
    const lines = logged.slice(0, 5);
    expect(lines.map((l) => `${l.method} ${l.path} ${l.status}`)).toEqual([
      `GET ${ECHO}/log 200`,
      `POST ${P}/assets/list 200`,
      `HEAD ${ECHO}/log 200`,
      `GET ${P}/nosuchfamily 404`,
      `GET ${P}/assets 400`,
    ]);
    for (const line of lines) {
      expect(line.level).toBe(30);
      expect(typeof line.durationMs).toBe('number');
      expect(typeof line.reqId).toBe('string');
      expect(typeof line.client).toBe('string');
    }
    expect(lines.slice(0, 4).map((l) => l.upstreamStatus)).toEqual([200, 200, 200, 404]);
    expect(lines[4].upstreamStatus).toBeUndefined();
    expect(lines[0].reqId).toBe(made[0].headers['x-request-id']);
    const all = stack.logs.raw.join('\n');
    expect(stack.logs.raw.length).toBeGreaterThanOrEqual(5);
    for (const secret of Object.values(secrets)) expect(all).not.toContain(secret);
  });
});
