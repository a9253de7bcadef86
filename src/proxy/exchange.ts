import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { ANONYMOUS, type Caller, type CdfTarget, credentialOf, hashCredential, type RouteInfo } from '../cdf/index.js';
import type { ErrorCode } from '../errors.js';
import type { AppRef, Bucket } from '../quota/index.js';
import { HeldBody, type RequestBody, TeeBody } from './body.js';
import { ClientGone } from './client-gone.js';
import { decodeJson } from './decode.js';
import type { HeaderMap } from './headers.js';
import type { CacheOutcome, RequestTrace } from './types.js';

const UNKNOWN_APP: AppRef = Object.freeze({
  id: 'unknown',
  identity: 'unknown',
  weight: 1,
  priority: 0,
  label: 'other',
});

const NO_SHADOW: readonly Bucket[] = Object.freeze([]);

/**
 * One app request on its way through the gateway: what it is (classified once), what it carries, and
 * what happened to it (for the one log line and the metrics at the end).
 */
export class Exchange {
  readonly startedAt = performance.now();
  readonly method: string;
  /** The request target in its normal form (cdf/path.ts normalizeTarget): classified and forwarded as it is. */
  readonly url: string;
  body: RequestBody = null;
  /** Headers to send upstream (hop-by-hop removed, cdf-version applied). */
  upstreamHeaders: HeaderMap = {};
  buckets: readonly Bucket[] = [];
  /** The quota tree's generation when `buckets` were chosen (BucketPath: chosen again when it moved on). */
  bucketsChosenAt = 0;
  /** Buckets in `mode: shadow` on its path: counted, never waited for. */
  shadow: readonly Bucket[] = NO_SHADOW;
  /** Fires when the app goes away before its answer was sent. */
  readonly abort = new ClientGone();
  /** The app it is counted for in fair queueing. */
  app: AppRef = UNKNOWN_APP;
  /** Its spans, while tracing is on; null otherwise (every use is one null check). */
  trace: RequestTrace | null = null;
  /** Who calls (verified, or a hash of the credential). */
  caller: Caller = ANONYMOUS;
  /** Bytes of the shared retry buffer budget this request holds; given back when it is done. */
  bufferedBytes = 0;
  /** Set while the app's body streams upstream: the idle watchdog checks that it keeps arriving. */
  uploading = false;

  // What happened, for the record.
  status = 0;
  upstreamStatus = 0;
  attempts = 0;
  queuedMs = 0;
  cache: CacheOutcome | null = null;
  upstreamRequestId: string | undefined;
  error: string | undefined;
  errorCode: ErrorCode | undefined;

  private credentialMemo: string | null | undefined;
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

  /** Who calls: a verified claim or a hash of the credential; never the token. */
  get identity(): string {
    return this.caller.key;
  }

  /**
   * A hash of every credential-bearing header (Authorization, api-key, Cookie), or null when there is
   * none: answers cached or joined for one credential are served only to it, and a call without any is
   * never cached.
   */
  get credential(): string | null {
    if (this.credentialMemo === undefined) {
      const credential = credentialOf(this.req.headers);
      this.credentialMemo = credential === null ? null : hashCredential(credential);
    }
    return this.credentialMemo;
  }

  /**
   * Decodes and parses a buffered body once (asynchronously, at most `maxBytes` decoded); json() then
   * answers from memory. Nothing happens for streamed bodies or a second call.
   */
  async parseBody(maxBytes: number): Promise<unknown> {
    if (this.jsonParsed) return this.jsonMemo;
    this.jsonParsed = true;
    if (this.body instanceof HeldBody && this.body.length > 0)
      this.jsonMemo = await decodeJson(this.body.bytes(), this.req.headers['content-encoding'], maxBytes);
    return this.jsonMemo;
  }

  /** The body parsed by parseBody(); undefined when there is none, it is not JSON, or it was not parsed. */
  json(): unknown {
    return this.jsonMemo;
  }

  /** Whether the body can be sent again: none, read whole, or kept as it went (read to its end first). */
  get replayable(): boolean {
    return this.body === null || this.body instanceof HeldBody || this.body instanceof TeeBody;
  }
}
