import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { IdentityResolver } from '../src/cdf/index.js';
import { AppDirectory } from '../src/quota/apps.js';
import { CircuitBreaker } from '../src/retry/circuit.js';
import { type Answer, auth, call, jwt, oneLimit, type Stack, startStack, TOKEN } from './helpers.js';

// Issue #13: every item reproduced against the real gateway and simulator. Sizes are bounded where a
// count proves the point; the heavy figures (512 MiB bomb, 1,000 × 8 MiB uploads, 40 × 1 GB answers) are
// in bench/hardening.mjs.

const P = '/api/v1/projects/p';
const FLAT = { tree: false };

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function expectGatewayError(a: Answer, status: number, code: string): void {
  expect(a.status).toBe(status);
  expect(a.json).toEqual({ error: { code: status, message: expect.any(String), gatewayCode: code } });
}

/** A gzip member whose header carries a file name (FNAME), as the bomb of the review did. */
function gzipWithName(data: Buffer, name: string): Buffer {
  const plain = gzipSync(data, { level: 9 });
  const header = Buffer.from(plain.subarray(0, 10));
  header[3] |= 0x08;
  return Buffer.concat([header, Buffer.from(`${name}\0`, 'latin1'), plain.subarray(10)]);
}

function post(stack: Stack, path: string, body: Buffer, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${stack.url}${path}`,
      { method: 'POST', headers: { ...auth(), 'content-length': String(body.length), ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({
            status: res.statusCode ?? 0,
            headers: new Headers(res.headers as Record<string, string>),
            text,
            json,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A raw client that sends a request and then never reads the answer. */
function stalledReader(url: string, path: string): Socket {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => {});
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${TOKEN}\r\n\r\n`);
  socket.pause();
  return socket;
}

describe('issue #13: bodies (decompression, partitions, nesting)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(
      { cache: { rules: [{ match: ['/assets/list'], methods: ['POST'], ttlMs: 60_000 }] } },
      FLAT,
    );
  });
  afterAll(() => stack.close());

  it('a gzip bomb is decoded only up to the bound, forwarded untouched and not cached; /healthz keeps answering', async () => {
    // 96 MiB of JSON in ~100 KB whose bad partition comes after the gateway's bound (retry.maxBodyBytes,
    // 8 MiB): a gateway that decoded it whole would answer CDFGW_BAD_PARTITION instead of forwarding it.
    // The file name in the gzip header says "partition" too, so a search of the raw bytes would also trip.
    const json = Buffer.alloc(96 * 1024 * 1024, ' ');
    json.write('{"a":0,', 0);
    json.write('"partition":"1/99"}', json.length - 19);
    const bomb = gzipWithName(json, 'partition=99/1');
    const calls = stack.sim.stats().calls;
    const [first, health] = await Promise.all([
      post(stack, `${P}/assets/list`, bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' }),
      call(stack, '/healthz'),
    ]);
    expect(health.status).toBe(200);
    // The simulator (bounded at 64 MiB) refuses it itself: the gateway neither answered nor checked it.
    expect(first.status).toBe(400);
    expect(first.json?.error?.message).toMatch(/^Could not decode gzip request body/);
    expect(first.json?.error?.gatewayCode).toBeUndefined();
    expect(stack.sim.stats().calls).toBe(calls + 1);
    const second = await post(stack, `${P}/assets/list`, bomb, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(second.status).toBe(400);
    // The cache could not read the body, so it neither looked up nor stored: BYPASS, never a HIT.
    expect([first.headers.get('x-cache'), second.headers.get('x-cache')]).toEqual(['BYPASS', 'BYPASS']);
    expect(stack.sim.stats().calls).toBe(calls + 2);
  });

  it('parses before searching: a gzipped or escaped partition in the body is checked', async () => {
    const calls = stack.sim.stats().calls;
    const gz = gzipSync(Buffer.from(JSON.stringify({ partition: '1/99', limit: 1 })));
    const zipped = await post(stack, `${P}/assets/list`, gz, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expectGatewayError(zipped, 400, 'CDFGW_BAD_PARTITION');
    const escaped = await call(stack, `${P}/assets/list`, { body: '{"part\\u0069tion":"1/99","limit":1}' });
    expectGatewayError(escaped, 400, 'CDFGW_BAD_PARTITION');
    expect(stack.sim.stats().calls).toBe(calls);
  });

  it('checks every repeated partition query parameter, percent-encoded names too', async () => {
    const calls = stack.sim.stats().calls;
    expectGatewayError(await call(stack, `${P}/assets?partition=1/2&partition=1/99`), 400, 'CDFGW_BAD_PARTITION');
    expectGatewayError(await call(stack, `${P}/assets?%70artition=1/99`), 400, 'CDFGW_BAD_PARTITION');
    expect(stack.sim.stats().calls).toBe(calls);
    expect((await call(stack, `${P}/assets?partition=1/2&partition=2/2`)).status).toBe(200);
  });

  it('5,000-level nested JSON on a cached POST is forwarded (not a 500), and not cached', async () => {
    const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    const calls = stack.sim.stats().calls;
    const a = await call(stack, `${P}/assets/list`, { body: deep });
    // The simulator's own answer (a list of assets), not a gateway error of any status.
    expect(a.status).toBe(200);
    expect(a.json?.error?.gatewayCode).toBeUndefined();
    expect(Array.isArray(a.json?.items)).toBe(true);
    const b = await call(stack, `${P}/assets/list`, { body: deep });
    expect(b.status).toBe(200);
    // Too deep to key, so the cache stepped aside both times: BYPASS, never a HIT.
    expect([a.headers.get('x-cache'), b.headers.get('x-cache')]).toEqual(['BYPASS', 'BYPASS']);
    expect(stack.sim.stats().calls).toBe(calls + 2);
  });
});

describe('issue #13: credentials, identities, projects, paths', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(
      {
        projects: ['p'],
        cache: { rules: [{ match: ['/assets'], methods: ['GET'], ttlMs: 60_000 }] },
        limits: [
          {
            name: 'assets',
            match: ['/assets', '/assets/**'],
            per: 'project',
            rate: 1000,
            burst: 1000,
            concurrency: 50,
          },
          {
            name: 'ident',
            match: ['/events', '/events/**'],
            per: 'identity',
            rate: 1000,
            burst: 1000,
            concurrency: 50,
          },
        ],
      },
      FLAT,
    );
  });
  afterAll(() => stack.close());

  it('cache keys hold every credential-bearing header: api-key and Cookie callers never share an answer', async () => {
    const path = `${P}/assets?limit=1&k=cred`;
    const a = await call(stack, path, { headers: { 'api-key': 'key-a' } });
    expect(a.headers.get('x-cache')).toBe('MISS');
    expect((await call(stack, path, { headers: { 'api-key': 'key-a' } })).headers.get('x-cache')).toBe('HIT');
    expect((await call(stack, path, { headers: { 'api-key': 'key-b' } })).headers.get('x-cache')).toBe('MISS');
    expect((await call(stack, path, { headers: { cookie: 'session=c' } })).headers.get('x-cache')).toBe('MISS');
    expect((await call(stack, path)).headers.get('x-cache')).toBe('MISS');
  });

  it('a project path without credentials gets 401 at once: no quota, no upstream call, nothing cached', async () => {
    const calls = stack.sim.stats().calls;
    const res = await fetch(`${stack.url}${P}/assets?limit=1&k=cred`);
    const a = { status: res.status, json: await res.json() } as Answer;
    expectGatewayError(a, 401, 'CDFGW_NO_CREDENTIALS');
    expect(stack.sim.stats().calls).toBe(calls);
    const b = await fetch(`${stack.url}${P}/events?limit=1`);
    expect(b.status).toBe(401);
    // A CORS preflight carries no credentials and still goes to CDF.
    const preflight = await fetch(`${stack.url}${P}/assets`, { method: 'OPTIONS' });
    expect(((await preflight.json()) as { error?: { gatewayCode?: string } })?.error?.gatewayCode).toBeUndefined();
    expect(stack.sim.stats().calls).toBe(calls + 1);
    expect([...stack.gateway.scheduler.allBuckets()].some((x) => x.scope.includes('anonymous'))).toBe(false);
  });

  it('an unverified token claiming another oid does not share its bucket', async () => {
    const victim = jwt({ oid: 'victim', n: 1 });
    const forged = jwt({ oid: 'victim', n: 2 });
    await call(stack, `${P}/events?limit=1`, { token: victim });
    await call(stack, `${P}/events?limit=1`, { token: forged });
    const scopes = [...stack.gateway.scheduler.allBuckets()]
      .filter((b) => b.limit.name === 'ident')
      .map((b) => b.scope);
    expect(new Set(scopes).size).toBe(2);
    expect(scopes.some((s) => s.includes('victim'))).toBe(false);
  });

  it('percent-encoding and "//" do not make new buckets or families, and the normal form goes upstream', async () => {
    const before = stack.logs.requests().length;
    for (const path of [
      '/api/v1/projects/%70/assets?limit=1',
      '/api/v1/projects/p//assets?limit=1',
      '/api/v1/projects/p/%61ssets?limit=1',
    ]) {
      const a = await call(stack, path, { headers: { 'cache-control': 'no-store' } });
      expect(a.status).toBe(200);
    }
    const lines = stack.logs.requests().slice(before);
    expect(lines.map((l) => l.family)).toEqual(['assets', 'assets', 'assets']);
    expect(lines.map((l) => l.path)).toEqual(Array(3).fill('/api/v1/projects/p/assets'));
    const scopes = new Set(
      [...stack.gateway.scheduler.allBuckets()].filter((b) => b.limit.name === 'assets').map((b) => b.scope),
    );
    expect(scopes).toEqual(new Set(['p']));
    const echo = await call(stack, `${P}/_sim/echo/x//%7Ey`);
    expect(echo.json.url).toBe(`${P}/_sim/echo/x/~y`);
  });

  it('the projects allow-list answers other projects 403 in CDF shape, without a call or a bucket', async () => {
    const calls = stack.sim.stats().calls;
    expectGatewayError(await call(stack, '/api/v1/projects/other/assets'), 403, 'CDFGW_PROJECT_NOT_ALLOWED');
    expectGatewayError(await call(stack, '/api/v1/projects/%6Fther/assets'), 403, 'CDFGW_PROJECT_NOT_ALLOWED');
    expect(stack.sim.stats().calls).toBe(calls);
    expect([...stack.gateway.scheduler.allBuckets()].some((b) => b.scope.startsWith('other'))).toBe(false);
  });

  it("malformed requests get CDF's error shape with a CDFGW code", async () => {
    const { hostname, port } = new URL(stack.url);
    const text = await new Promise<string>((resolve) => {
      const s = connect(Number(port), hostname);
      let out = '';
      s.on('data', (d) => {
        out += d.toString();
      });
      s.on('close', () => resolve(out));
      s.on('error', () => resolve(out));
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
    });
    expect(text).toMatch(/^HTTP\/1\.1 400/);
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
    expect(body).toEqual({ error: { code: 400, message: expect.any(String), gatewayCode: 'CDFGW_BAD_REQUEST' } });
  });
});

describe('issue #13: verified identities (identity.jwks) and who may use a client name', () => {
  it('refuses a JWKS file that is not a key set, naming identity.jwks.file (jose is loaded later)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdfgw-jwks-'));
    const issuer = 'https://issuer.example/';
    for (const [name, text] of [
      ['not-json.json', '{"keys": ['],
      ['no-keys.json', '{"kty": "RSA"}'],
      ['bad-keys.json', '{"keys": ["k1"]}'],
    ]) {
      const file = join(dir, name);
      writeFileSync(file, text);
      expect(
        () => new IdentityResolver({ jwks: { issuer, url: null, file, audience: null }, maxCachedTokens: 10 }),
        name,
      ).toThrow(/^identity\.jwks\.file: /);
    }
  });

  it('verifies tokens with jose: two tokens of one oid share a bucket, a forged one does not', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const dir = mkdtempSync(join(tmpdir(), 'cdfgw-jwks-'));
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [jwk] }));
    const issuer = 'https://issuer.example/';
    const sign = (oid: string, n: number) =>
      new SignJWT({ oid, n })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(issuer)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(privateKey);
    const resolver = new IdentityResolver({ jwks: { issuer, url: null, file, audience: null }, maxCachedTokens: 10 });
    const t1 = await sign('victim', 1);
    const t2 = await sign('victim', 2);
    const a = await resolver.resolve({ authorization: `Bearer ${t1}` });
    const b = await resolver.resolve({ authorization: `Bearer ${t2}` });
    const forged = await resolver.resolve({ authorization: jwt({ oid: 'victim' }) });
    expect(a).toEqual({ key: 'oid:victim', principal: 'victim', verified: true });
    expect(b.key).toBe('oid:victim');
    expect(forged.verified).toBe(false);
    expect(forged.key).toMatch(/^cred:/);
    // Verified once, then answered from memory (synchronously).
    expect(resolver.resolve({ authorization: `Bearer ${t1}` })).toEqual(a);

    const stack = await startStack(
      {
        identity: { jwks: { issuer, file } },
        ...oneLimit({ per: 'identity', rate: 1000, burst: 1000, concurrency: 10 }),
      },
      FLAT,
    );
    try {
      for (const token of [`Bearer ${t1}`, `Bearer ${t2}`, jwt({ oid: 'victim' })])
        expect((await call(stack, `${P}/assets?limit=1`, { token })).status).toBe(200);
      const scopes = new Set([...stack.gateway.scheduler.allBuckets()].map((x) => x.scope));
      expect(scopes.size).toBe(2);
      expect(scopes.has('p/oid:victim')).toBe(true);
    } finally {
      await stack.close();
    }
  });

  it('a client name with identities gives its weight and priority only to them; others are unlisted', () => {
    const apps = new AppDirectory([{ name: 'dashboard', weight: 4, priority: 1, identities: ['ops'] }]);
    const ops = apps.resolve('dashboard', undefined, { key: 'oid:ops', principal: 'ops', verified: true }, '1.2.3.4');
    const other = apps.resolve(
      'dashboard',
      undefined,
      { key: 'cred:x', principal: 'mallory', verified: false },
      '1.2.3.4',
    );
    expect(ops).toMatchObject({ id: 'dashboard', weight: 4, priority: 1, label: 'dashboard', identity: 'oid:ops' });
    expect(other).toMatchObject({ weight: 1, priority: 0, label: 'other', identity: 'cred:x' });
    const nameless = apps.resolve(undefined, undefined, { key: 'cred:y', principal: null, verified: false }, '1.2.3.4');
    expect(nameless.label).toBe('other');
  });
});

describe('issue #13: fairness between identities, not app names', () => {
  it('an identity sending a new x-cdp-app on every call gets one identity share', async () => {
    const stack = await startStack(oneLimit({ rate: 1000, burst: 1000, concurrency: 1 }), { ...FLAT, latencyMs: 20 });
    try {
      const order: string[] = [];
      const greedy = 'Bearer greedy-token';
      const honest = 'Bearer honest-token';
      // One call in flight first so that everything else queues.
      const head = call(stack, `${P}/assets?limit=1`, { token: honest, headers: { 'x-cdp-app': 'honest' } });
      await until('the first call in flight', () => stack.gateway.scheduler.allBuckets().next().value?.inFlight === 1);
      const calls: Promise<unknown>[] = [head];
      for (let i = 0; i < 30; i++) {
        calls.push(
          call(stack, `${P}/assets?limit=1`, { token: greedy, headers: { 'x-cdp-app': `greedy-${i}` } }).then(() =>
            order.push('greedy'),
          ),
        );
      }
      for (let i = 0; i < 10; i++) {
        calls.push(
          call(stack, `${P}/assets?limit=1`, { token: honest, headers: { 'x-cdp-app': 'honest' } }).then(() =>
            order.push('honest'),
          ),
        );
      }
      await Promise.all(calls);
      // The honest identity's 10 calls are done within the first ~20 served, not after the 30 greedy ones.
      const lastHonest = order.lastIndexOf('honest');
      expect(lastHonest).toBeLessThan(24);
    } finally {
      await stack.close();
    }
  });
});

describe('issue #13: slots are never pinned by a client that stopped', () => {
  it('answers the app stopped reading end after responseIdleTimeoutMs and free their slots', async () => {
    const stack = await startStack(
      { server: { responseIdleTimeoutMs: 400 }, ...oneLimit({ rate: 1000, burst: 1000, concurrency: 2 }) },
      FLAT,
    );
    try {
      const readers = [1, 2, 3, 4].map(() => stalledReader(stack.url, `${P}/_sim/blob?bytes=${64 * 1024 * 1024}`));
      await until('two answers streaming', () => stack.gateway.scheduler.allBuckets().next().value?.inFlight === 2);
      // Every other app still gets through, well before queue.maxWaitMs.
      const other = await call(stack, `${P}/assets?limit=1`);
      expect(other.status).toBe(200);
      await until('all four stalled answers ended', () => stack.gateway.watchdog.ended >= 4, 15_000);
      await until('slots free', () => stack.gateway.scheduler.allBuckets().next().value?.inFlight === 0);
      const stalled = stack.logs.requests().filter((l) => l.errCode === 'CDFGW_RESPONSE_STALLED');
      expect(stalled.length).toBe(4);
      for (const r of readers) r.destroy();
      // Nothing in flight: the sweep stopped.
      await until('watchdog idle', () => stack.gateway.watchdog.size === 0);
    } finally {
      await stack.close();
    }
  });

  it('a streamed request body that stalls is ended after responseIdleTimeoutMs and frees its slot', async () => {
    const stack = await startStack(
      {
        server: { responseIdleTimeoutMs: 400 },
        retry: { maxBodyBytes: 1024 },
        ...oneLimit({ rate: 1000, burst: 1000, concurrency: 1 }),
      },
      FLAT,
    );
    try {
      const { hostname, port } = new URL(stack.url);
      const s = connect(Number(port), hostname);
      s.on('error', () => {});
      let reply = '';
      s.on('data', (d) => {
        reply += d.toString();
      });
      const closed = new Promise((resolve) => s.once('close', resolve));
      s.write(
        `POST ${P}/_sim/echo/x HTTP/1.1\r\nHost: x\r\nAuthorization: ${TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n`,
      );
      s.write(Buffer.alloc(4096, 1));
      // Then one byte now and then: a trickle is no progress.
      const trickle = setInterval(() => s.write(Buffer.alloc(1, 1)), 100);
      try {
        await until('the body ended', () => stack.gateway.watchdog.ended === 1, 10_000);
      } finally {
        clearInterval(trickle);
      }
      await until('slot free', () => stack.gateway.scheduler.allBuckets().next().value?.inFlight === 0);
      expect(stack.logs.requests().some((l) => l.errCode === 'CDFGW_BODY_STALLED')).toBe(true);
      // The app that stalled is told why before its connection goes: a 408 in CDF's error shape.
      await closed;
      expect(reply).toMatch(/^HTTP\/1\.1 408 /);
      expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))).toEqual({
        error: { code: 408, message: expect.any(String), gatewayCode: 'CDFGW_BODY_STALLED' },
      });
      expect((await call(stack, `${P}/assets?limit=1`)).status).toBe(200);
      s.destroy();
    } finally {
      await stack.close();
    }
  });

  it('bodies buffered for retries share retry.maxBufferedBytes; past it they stream, arrive whole, and memory stays bounded', async () => {
    const stack = await startStack(
      {
        retry: { maxBodyBytes: 64 * 1024, maxBufferedBytes: 128 * 1024 },
        ...oneLimit({ rate: 20, burst: 1, concurrency: 1 }),
      },
      FLAT,
    );
    try {
      const body = Buffer.alloc(60 * 1024, 7);
      const answers = await Promise.all(
        Array.from({ length: 12 }, () =>
          post(stack, `${P}/_sim/echo/upload`, body, { 'content-type': 'application/octet-stream' }),
        ),
      );
      for (const a of answers) {
        expect(a.status).toBe(200);
        expect(a.json.bodyBytes).toBe(body.length);
      }
      expect(stack.gateway.buffers.peak).toBeLessThanOrEqual(128 * 1024);
      expect(stack.gateway.buffers.peak).toBeGreaterThan(0);
      expect(stack.gateway.buffers.used).toBe(0);
    } finally {
      await stack.close();
    }
  });
});

describe('issue #13: the admin surface', () => {
  it('metrics.token guards /metrics and /dashboard; labels are names or "other", never claims or hashes', async () => {
    const stack = await startStack({ metrics: { token: 's3cret' }, clients: [{ name: 'known', weight: 2 }] }, FLAT);
    try {
      await call(stack, `${P}/assets?limit=1`, { token: jwt({ oid: 'someone-secret' }) });
      await call(stack, `${P}/assets?limit=1`, { headers: { 'x-cdp-app': 'my-app' } });
      await call(stack, `${P}/assets?limit=1`, { headers: { 'x-cdf-gateway-client': 'known' } });
      const open = await fetch(`${stack.url}/metrics`);
      expect(open.status).toBe(401);
      expect(await open.json()).toEqual({
        error: { code: 401, message: expect.any(String), gatewayCode: 'CDFGW_ADMIN_UNAUTHORIZED' },
      });
      expect((await fetch(`${stack.url}/dashboard/data.json`)).status).toBe(401);
      expect((await fetch(`${stack.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      const page = await fetch(`${stack.url}/dashboard?token=s3cret`);
      expect(page.status).toBe(200);
      const cookie = String(page.headers.get('set-cookie')).split(';')[0];
      expect((await fetch(`${stack.url}/dashboard/data.json`, { headers: { cookie } })).status).toBe(200);
      const metrics = await fetch(`${stack.url}/metrics`, { headers: { authorization: 'Bearer s3cret' } });
      expect(metrics.status).toBe(200);
      const text = await metrics.text();
      const labels = new Set([...text.matchAll(/client="([^"]*)"/g)].map((m) => m[1]));
      expect(labels).toEqual(new Set(['other', 'my-app', 'known']));
      expect(text).not.toContain('someone-secret');
      expect(text).not.toMatch(/cred:|oid:|token:/);
      // The proxy path is not behind the admin token.
      expect((await call(stack, `${P}/assets?limit=1`)).status).toBe(200);
    } finally {
      await stack.close();
    }
  });

  it('the image and compose serve the admin routes on a port of their own, published nowhere by default', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    expect(dockerfile).toMatch(/^ENV .*METRICS_PORT=9464/m);
    expect(dockerfile).toMatch(/^EXPOSE 8080$/m);
    const compose = parseYaml(readFileSync('docker-compose.yml', 'utf8')) as {
      services: Record<string, { ports?: string[] }>;
    };
    for (const name of ['gateway', 'gateway-2']) {
      for (const p of compose.services[name].ports ?? []) expect(p).not.toContain('9464');
    }
    expect(readFileSync('config/prometheus.yml', 'utf8')).toContain("'gateway:9464'");
  });
});

describe('issue #13: the circuit breaker keeps sliding after it opened', () => {
  it('5 failures, 11 s after 15 others, do not reopen a 10 s window with minCalls 20 (clock injected)', () => {
    const c = new CircuitBreaker({ enabled: true, windowMs: 10_000, minCalls: 20, failureRatio: 0.5, openMs: 5000 });
    for (let i = 0; i < 20; i++) c.record(false, 0);
    expect(c.state).toBe('open');
    expect(c.allow(5000)).toBe(true);
    c.record(true, 5000);
    for (let i = 0; i < 15; i++) c.record(false, 6000);
    for (let i = 0; i < 5; i++) c.record(false, 17_000);
    expect(c.state).toBe('closed');
  });
});
