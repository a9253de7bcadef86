import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { gunzipSync } from 'node:zlib';
import { type CdfTarget, hashCredential, identityOf, type RouteInfo } from '../cdf/index.js';
import type { AppRef, Bucket } from '../quota/index.js';
import type { RequestTrace } from '../tracing/types.js';
import type { RequestBody } from './body.js';
import { ClientGone } from './client-gone.js';
import type { HeaderMap } from './headers.js';

const UNKNOWN_APP: AppRef = Object.freeze({ id: 'unknown', weight: 1, priority: 0 });

export type CacheOutcome = 'HIT' | 'MISS' | 'BYPASS' | 'COALESCED' | 'STALE';

/**
 * One app request on its way through the gateway: what it is (classified once), what it carries, and
 * what happened to it (for the one log line and the metrics at the end).
 */
export class Exchange {
  readonly startedAt = performance.now();
  readonly method: string;
  /** The raw request target, forwarded byte for byte. */
  readonly url: string;
  body: RequestBody = null;
  /** Headers to send upstream (hop-by-hop removed, cdf-version applied). */
  upstreamHeaders: HeaderMap = {};
  buckets: readonly Bucket[] = [];
  /** Fires when the app goes away before its answer was sent. */
  readonly abort = new ClientGone();
  /** The app it is counted for in fair queueing. */
  app: AppRef = UNKNOWN_APP;
  /** Its spans, while tracing is on; null otherwise (every use is one null check). */
  trace: RequestTrace | null = null;

  // What happened, for the record.
  status = 0;
  upstreamStatus = 0;
  attempts = 0;
  queuedMs = 0;
  cache: CacheOutcome | null = null;
  upstreamRequestId: string | undefined;
  error: string | undefined;

  private identityMemo: string | undefined;
  private credentialMemo: string | undefined;
  private jsonMemo: unknown;
  private jsonParsed = false;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly requestId: string,
    readonly target: CdfTarget | null,
    readonly route: RouteInfo,
  ) {
    this.method = req.method ?? 'GET';
    this.url = req.url ?? '/';
  }

  /** Only reads: safe to repeat after a failure. */
  get read(): boolean {
    return this.route.read;
  }

  get family(): string {
    return this.route.family;
  }

  /** Who calls, from the token's claims (or its hash); never the token. */
  get identity(): string {
    this.identityMemo ??= identityOf(this.req.headers.authorization);
    return this.identityMemo;
  }

  /** A hash of the whole Authorization value: answers cached for one credential are served only to it. */
  get credential(): string {
    this.credentialMemo ??= this.req.headers.authorization ? hashCredential(this.req.headers.authorization) : 'none';
    return this.credentialMemo;
  }

  /** The body parsed as JSON (gzip undone), parsed at most once; undefined when there is none or it is not JSON. */
  json(): unknown {
    if (this.jsonParsed) return this.jsonMemo;
    this.jsonParsed = true;
    if (!Buffer.isBuffer(this.body) || this.body.length === 0) return undefined;
    try {
      const raw = this.req.headers['content-encoding'] === 'gzip' ? gunzipSync(this.body) : this.body;
      this.jsonMemo = JSON.parse(raw.toString('utf8'));
    } catch {
      this.jsonMemo = undefined;
    }
    return this.jsonMemo;
  }

  /** Whether the body can be sent again: none, or read whole. */
  get replayable(): boolean {
    return this.body === null || Buffer.isBuffer(this.body);
  }
}
