import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildGateway, type Gateway } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { auth, LogCapture, oneLimit } from './helpers.js';

const P = '/api/v1/projects/p';
const TEXT = 'Too many requests: at most 10 calls per second for this project.';
const CDF_JSON = JSON.stringify({ error: { code: 429, message: 'Rate limit exceeded: 25 concurrent requests.' } });
/** Past the 64 KiB the gateway reads of a failed answer. */
const LARGE = randomBytes(200 * 1024);

/**
 * A stand-in for CDF (or a proxy in front of it) that answers every call with a 429 whose body is the one the
 * path names: CDF's JSON, free text, or larger than the gateway reads, with or without a content-length.
 */
function throttlingUpstream(): { server: Server; attempts: Map<string, number> } {
  const attempts = new Map<string, number>();
  const server = createServer((req, res) => {
    const kind = new URL(req.url ?? '/', 'http://x').searchParams.get('kind') ?? 'none';
    attempts.set(kind, (attempts.get(kind) ?? 0) + 1);
    req.resume();
    req.on('end', () => {
      if (kind === 'json') {
        res.writeHead(429, { 'content-type': 'application/json' }).end(CDF_JSON);
      } else if (kind === 'text') {
        res.writeHead(429, { 'content-type': 'text/plain; charset=utf-8' }).end(TEXT);
      } else if (kind === 'large-declared') {
        res.writeHead(429, { 'content-type': 'application/octet-stream', 'content-length': LARGE.length }).end(LARGE);
      } else {
        // Chunked: the gateway learns the size only by reading past its limit.
        res.writeHead(429, { 'content-type': 'application/octet-stream' });
        for (let at = 0; at < LARGE.length; at += 16 * 1024) res.write(LARGE.subarray(at, at + 16 * 1024));
        res.end();
      }
    });
  });
  return { server, attempts };
}

describe("CDF's 429s, whatever their body", () => {
  let upstream: ReturnType<typeof throttlingUpstream>;
  let gateway: Gateway;
  let url: string;
  /** What the gateway told the quota tree CDF said, one entry per 429. */
  const hints: Array<string | null> = [];

  beforeAll(async () => {
    upstream = throttlingUpstream();
    await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', resolve));
    const port = (upstream.server.address() as AddressInfo).port;
    const config = loadConfig({
      env: {},
      overrides: {
        server: { port: 0 },
        upstream: { baseUrl: `http://127.0.0.1:${port}` },
        log: { pretty: false },
        retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, maxBodyBytes: 65_536 },
        circuit: { enabled: false },
        adaptive: { enabled: false },
        ...oneLimit({ rate: 1000, burst: 1000, concurrency: 100 }),
      },
    });
    gateway = await buildGateway(config, { logDestination: new LogCapture() });
    url = await gateway.listen();
    const throttled = gateway.quota.throttled.bind(gateway.quota);
    vi.spyOn(gateway.quota, 'throttled').mockImplementation((buckets, method, route, hint, now, sentAt) => {
      hints.push(hint);
      return throttled(buckets, method, route, hint, now, sentAt);
    });
  });
  afterAll(async () => {
    await gateway.close();
    upstream.server.closeAllConnections();
    await new Promise((resolve) => upstream.server.close(resolve));
  });
  beforeEach(() => {
    upstream.attempts.clear();
    hints.length = 0;
  });

  const rows: Array<{ kind: string; body: Buffer; hint: string | null }> = [
    { kind: 'json', body: Buffer.from(CDF_JSON), hint: 'Rate limit exceeded: 25 concurrent requests.' },
    { kind: 'text', body: Buffer.from(TEXT), hint: TEXT },
    { kind: 'large-declared', body: LARGE, hint: null },
    { kind: 'large-chunked', body: LARGE, hint: null },
  ];
  for (const { kind, body, hint } of rows) {
    it(`retries a 429 with a ${kind} body, tells the quota tree each time, and passes CDF's bytes on`, async () => {
      const res = await fetch(`${url}${P}/assets?kind=${kind}`, { headers: auth() });
      const got = Buffer.from(await res.arrayBuffer());
      expect(res.status).toBe(429);
      expect(upstream.attempts.get(kind)).toBe(3);
      expect(got.equals(body)).toBe(true);
      expect(hints).toEqual([hint, hint, hint]);
    });
  }

  it('passes a 429 on unretried, still telling the tree, when the request body cannot be sent again', async () => {
    // Larger than retry.maxBodyBytes: streamed upstream as it arrives, not kept.
    const res = await fetch(`${url}${P}/assets?kind=text`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: Buffer.alloc(1024 * 1024, 'a'),
    });
    expect(res.status).toBe(429);
    expect(await res.text()).toBe(TEXT);
    expect(upstream.attempts.get('text')).toBe(1);
    expect(hints).toEqual([null]);
  });
});
