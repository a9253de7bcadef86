import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { Pool as UndiciPool } from 'undici';
import type { UpstreamConfig } from '../config/index.js';
import type { Failure } from '../retry/index.js';
import type { AbortLike } from './client-gone.js';
import type { HeaderMap } from './headers.js';

export interface UpstreamCall {
  method: string;
  /** Path and query exactly as the app sent them. */
  path: string;
  headers: HeaderMap;
  /** A Buffer, the chunks of a body read whole (sent in turn), chunks as they arrive, or a stream. */
  body: Buffer | Iterable<Buffer> | AsyncIterable<Buffer> | Readable | null;
  signal: AbortLike;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { dump(opts?: { limit: number }): Promise<void>; arrayBuffer(): Promise<ArrayBuffer> };
}

const requireUndici = createRequire(import.meta.url);
/**
 * undici's pool and request API, not its index (which also loads fetch, WebSocket, the caches and the mocks),
 * because that keeps an idle sidecar under its 70 MiB target (bench/RESULTS.md, "Private paths of
 * dependencies"). So undici is pinned exactly, and test/undici-internals.test.ts fails when it moves. The API
 * goes onto the dispatchers' prototype exactly as the index puts it there.
 */
const Pool: typeof UndiciPool = requireUndici('undici/lib/dispatcher/pool.js');
Object.assign(requireUndici('undici/lib/dispatcher/dispatcher.js').prototype, requireUndici('undici/lib/api/index.js'));
type Pool = UndiciPool;

/** Codes for errors raised before the request could have left the gateway. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
/**
 * How much of an answer undici holds in JS before it stops reading CDF's socket. Small: what an app is slow
 * to take should wait in the kernel's socket buffers, not in chunks that live long enough to reach V8's old
 * generation, where their major collections cost CPU per MiB (bench/RESULTS.md, "Moved from the code's
 * comments").
 */
const ANSWER_HIGH_WATER_MARK = 16_384;
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * The one CDF the gateway talks to. A pool bound to the configured origin: whatever a request says,
 * its path is appended to this origin and nothing else is ever dialled.
 */
export class Upstream {
  readonly origin: string;
  private readonly basePath: string;
  private readonly pool: Pool;

  constructor(config: UpstreamConfig) {
    const url = new URL(config.baseUrl);
    this.origin = url.origin;
    this.basePath = url.pathname === '/' ? '' : url.pathname;
    this.pool = new Pool(this.origin, {
      connections: config.connections,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
      connect: { timeout: config.connectTimeoutMs },
    });
  }

  async call(call: UpstreamCall): Promise<UpstreamResponse> {
    const res = await this.pool.request({
      highWaterMark: ANSWER_HIGH_WATER_MARK,
      method: call.method as 'GET',
      path: this.basePath + call.path,
      headers: call.headers,
      // undici writes an iterable of chunks in turn (its types name fewer body kinds than it takes).
      body: call.body as Buffer | Readable | null,
      // undici takes any object with addEventListener as a signal.
      signal: call.signal as unknown as AbortSignal,
    });
    return { status: res.statusCode, headers: res.headers, body: res.body as UpstreamResponse['body'] };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** What a thrown upstream error means for retrying and for the answer (502 or 504). */
export function networkFailure(err: unknown): Failure & { kind: 'network' } {
  const code = (err as { code?: string })?.code ?? 'UNKNOWN';
  return { kind: 'network', code, sent: !NOT_SENT.has(code), timeout: TIMEOUTS.has(code) };
}
