import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { cdfErrorText } from '../cdf/index.js';
import type { GatewayConfig } from '../config/index.js';
import { GatewayError, GatewayErrors } from '../errors.js';
import type { Telemetry } from '../metrics/telemetry.js';
import { type Lease, QueueRejected, type QuotaTree, type Scheduler, type ShadowLedger } from '../quota/index.js';
import { type CircuitBreaker, type Failure, isAutoRetryable } from '../retry/index.js';
import { HeldBody, TeeBody } from './body.js';
import { sleepUnlessGone } from './client-gone.js';
import type { Exchange } from './exchange.js';
import { downstreamResponseHeaders } from './headers.js';
import { inspectBody } from './inspect.js';
import { RetryPolicy, TryAgain } from './retries.js';
import type { UpstreamAnswer } from './types.js';
import { networkFailure, type Upstream, type UpstreamResponse } from './upstream.js';

export interface ForwarderParts {
  config: GatewayConfig;
  upstream: Upstream;
  scheduler: Scheduler;
  /** Learns from CDF's answers (the quota tree owns every bucket figure). */
  quota: QuotaTree;
  circuit: CircuitBreaker;
  telemetry: Telemetry;
  /** Buckets in `mode: shadow`: what they would have done to each attempt. */
  shadow: ShadowLedger;
  log: Logger;
}

const noop = () => {};

/**
 * Upstream with retries, as policies around one dispatch (the call to CDF), in the order an attempt meets
 * them: admission (the circuit, then a token and a slot from every bucket of the request, so that retries
 * are part of the quota), the dispatch, the circuit's count of the answer, what the quota tree learns from
 * it, and the retry policy, which tries a failure again only where it is safe, within the attempts, the
 * deadline and the retry budget. The hooks are plain calls, not wrappers: an attempt allocates nothing for
 * them.
 */
export class Forwarder {
  private readonly retries: RetryPolicy;

  constructor(private readonly parts: ForwarderParts) {
    this.retries = new RetryPolicy(parts.config, parts.telemetry, parts.log);
  }

  /** Reload: `config.retry` changed in place. */
  reconfigure(): void {
    this.retries.reconfigure();
  }

  async fetch(ex: Exchange): Promise<UpstreamAnswer> {
    const { telemetry, shadow } = this.parts;
    const deadline = ex.startedAt + this.parts.config.retry.maxWaitMs;
    for (;;) {
      ex.attempts++;
      const lease = await this.admit(ex, deadline);
      const sentAt = performance.now();
      if (ex.attempts === 1) this.retries.first(ex, sentAt);
      const shadowed = ex.shadow.length > 0;
      if (shadowed) shadow.take(ex.shadow, sentAt);
      let outcome: UpstreamAnswer | TryAgain;
      let delay = -1;
      // The lease goes with an answer that streams from CDF (the record stage gives it back once the app has
      // it); every other way out of the attempt gives it back here, in this one place.
      let handedOver = false;
      try {
        outcome = await this.attempt(ex, lease, sentAt);
        if (outcome instanceof TryAgain) delay = this.retries.delayFor(ex, outcome, deadline);
        const answer = outcome instanceof TryAgain ? (delay < 0 ? outcome.otherwise : null) : outcome;
        handedOver = answer !== null && !(answer instanceof GatewayError) && answer.release === lease.release;
      } finally {
        if (!handedOver) lease.release();
        if (shadowed) shadow.release(ex.shadow);
      }
      if (!(outcome instanceof TryAgain)) return outcome;
      if (delay >= 0) {
        outcome.drop();
        await sleepUnlessGone(delay, ex.abort);
        if (outcome.throttled) telemetry.upstreamThrottled(ex, true);
        if (ex.body instanceof TeeBody && !ex.body.arrived) await this.finishUpload(ex, ex.body);
        continue;
      }
      if (outcome.throttled) telemetry.upstreamThrottled(ex, false);
      if (outcome.otherwise instanceof GatewayError) throw outcome.otherwise;
      return outcome.otherwise;
    }
  }

  /** Reads the rest of a body that went upstream as it arrived, so that the retry can send it whole. */
  private async finishUpload(ex: Exchange, body: TeeBody): Promise<void> {
    // No slot is held here; the idle watchdog still ends an upload that stalls.
    ex.uploading = true;
    try {
      await body.finish();
    } catch {
      if (ex.abort.signal.aborted) throw new GatewayErrors.CLIENT_GONE();
      throw new GatewayErrors.BODY_INCOMPLETE();
    } finally {
      ex.uploading = false;
    }
  }

  /** Admission: a token and a slot in every bucket of the request, unless the circuit is open or the queue says no. */
  private async admit(ex: Exchange, deadline: number): Promise<Lease> {
    const { config, scheduler, circuit } = this.parts;
    const now = performance.now();
    if (!circuit.allow(now))
      throw new GatewayErrors.CIRCUIT_OPEN().withHeaders({ 'retry-after': String(circuit.retryAfterSec(now)) });
    ex.trace?.queueWait();
    try {
      const lease = await scheduler.acquire(
        ex.buckets,
        ex.app,
        Math.min(now + config.queue.maxWaitMs, deadline),
        ex.abort.signal,
        ex,
      );
      ex.queuedMs += lease.waitedMs;
      ex.trace?.queueDone(null);
      return lease;
    } catch (err) {
      ex.trace?.queueDone(err instanceof QueueRejected ? err.reason : 'error');
      if (circuit.state === 'half-open') circuit.abandon();
      if (!(err instanceof QueueRejected)) throw err;
      if (err.reason === 'aborted') throw new GatewayErrors.CLIENT_GONE();
      const refused = err.reason === 'full' ? GatewayErrors.QUEUE_FULL : GatewayErrors.QUEUE_TIMEOUT;
      throw new refused(err.bucket.limit.name).withHeaders({ 'retry-after': String(err.retryAfterSec) });
    }
  }

  /** One attempt upstream under `lease`: an answer for the app, or a failure that may be tried again. */
  private async attempt(ex: Exchange, lease: Lease, sentAt: number): Promise<UpstreamAnswer | TryAgain> {
    let res: UpstreamResponse;
    // A streamed body is read from the app during the call: the idle watchdog checks that it keeps coming.
    const sent = ex.body;
    ex.uploading = sent !== null && !(sent instanceof HeldBody) && !(sent instanceof TeeBody && sent.arrived);
    ex.trace?.attempt();
    try {
      res = await this.parts.upstream.call({
        method: ex.method,
        path: ex.url,
        headers: ex.upstreamHeaders,
        body: sent instanceof HeldBody ? sent.payload : sent,
        signal: ex.abort.signal,
      });
    } catch (err) {
      return this.noAnswer(ex, err, sentAt);
    } finally {
      ex.uploading = false;
    }
    this.answered(ex, res);
    if (res.status !== 429 && res.status < 500) return this.passed(ex, lease, res, sentAt);
    const reading = inspectBody(res, ex.replayable);
    let body: Buffer | Readable | null = null;
    if (reading !== null) {
      try {
        body = await reading;
      } catch (err) {
        return this.brokeOffReading(ex, lease, res.status, err, sentAt);
      }
    }
    return this.failed(ex, lease, res, body, sentAt);
  }

  /** The call threw: the app went away, its streamed body failed, or CDF could not be reached (tried again where safe). */
  private noAnswer(ex: Exchange, err: unknown, sentAt: number): TryAgain {
    const { circuit, config } = this.parts;
    if (ex.abort.signal.aborted) {
      circuit.abandon();
      throw new GatewayErrors.CLIENT_GONE();
    }
    if (err instanceof GatewayError) {
      // The app's streamed body failed (past server.bodyLimitBytes): its answer, not a CDF failure.
      circuit.abandon();
      throw err;
    }
    const failure = networkFailure(err);
    circuit.record(false, performance.now());
    return this.brokeOff(
      ex,
      failure,
      sentAt,
      failure.timeout
        ? new GatewayErrors.UPSTREAM_TIMEOUT(config.upstream.timeoutMs)
        : new GatewayErrors.UPSTREAM_UNREACHABLE(failure.code),
    );
  }

  /** CDF answered: the exchange notes it, and the circuit counts it (502, 503 and 504 as CDF failing). */
  private answered(ex: Exchange, res: UpstreamResponse): void {
    const status = res.status;
    ex.upstreamStatus = status;
    const requestId = res.headers['x-request-id'];
    if (typeof requestId === 'string') ex.upstreamRequestId = requestId;
    this.parts.circuit.record(!(status === 502 || status === 503 || status === 504), performance.now());
  }

  /** An answer that is not a failure: it streams on to the app, holding the lease, and the tree counts it. */
  private passed(ex: Exchange, lease: Lease, res: UpstreamResponse, sentAt: number): UpstreamAnswer {
    this.attemptDone(ex, res.status, sentAt);
    this.parts.quota.passed(lease.buckets, ex.route, performance.now(), sentAt);
    return this.answer(res, res.body, lease);
  }

  /**
   * A 429 or a 5xx, its body read or not (inspectBody). A 429 always tells the tree. A body read whole may be
   * tried again, the app getting it as it was if not; a 429 is tried again whatever its body (CDF did not take
   * the call), the body streaming on to the app if not; any other failure too large to read goes on as it is.
   */
  private failed(
    ex: Exchange,
    lease: Lease,
    res: UpstreamResponse,
    body: Buffer | Readable | null,
    sentAt: number,
  ): UpstreamAnswer | TryAgain {
    const status = res.status;
    this.attemptDone(ex, status, sentAt);
    if (status === 429) this.throttled(ex, lease, Buffer.isBuffer(body) ? body : null, sentAt);
    if (Buffer.isBuffer(body)) {
      const failure: Failure = { kind: 'status', status, autoRetryable: isAutoRetryable(res.headers, body) };
      return new TryAgain(failure, res.headers['retry-after'], status === 429, {
        status,
        headers: downstreamResponseHeaders(res.headers),
        body,
        release: noop,
      });
    }
    const answer = this.answer(res, body ?? res.body, lease);
    if (status !== 429) return answer;
    if (ex.replayable) {
      const failure: Failure = { kind: 'status', status, autoRetryable: isAutoRetryable(res.headers, null) };
      return new TryAgain(failure, res.headers['retry-after'], true, answer, res.body);
    }
    this.parts.telemetry.upstreamThrottled(ex, false);
    return answer;
  }

  /** A failed answer broke off while its body was read: counted, and tried again where the policy allows. */
  private brokeOffReading(ex: Exchange, lease: Lease, status: number, err: unknown, sentAt: number): TryAgain {
    if (status === 429) this.throttled(ex, lease, null, sentAt);
    if (ex.abort.signal.aborted) throw new GatewayErrors.CLIENT_GONE();
    const failure = networkFailure(err);
    return this.brokeOff(
      ex,
      failure,
      sentAt,
      failure.timeout
        ? new GatewayErrors.UPSTREAM_BODY_TIMEOUT(failure.code)
        : new GatewayErrors.UPSTREAM_BROKEN(failure.code),
    );
  }

  /**
   * CDF throttled the attempt: the tree learns from it, with what CDF said (its error message, or the body's
   * text when it is not JSON; null when the body was not read).
   */
  private throttled(ex: Exchange, lease: Lease, body: Buffer | null, sentAt: number): void {
    this.parts.quota.throttled(lease.buckets, ex.method, ex.route, cdfErrorText(body), performance.now(), sentAt);
  }

  /** An attempt that failed on the network: counted, and tried again where the policy allows (502/504 otherwise). */
  private brokeOff(
    ex: Exchange,
    failure: Failure & { kind: 'network' },
    sentAt: number,
    otherwise: GatewayError,
  ): TryAgain {
    this.parts.telemetry.upstreamAttempt(ex, 0, performance.now() - sentAt);
    ex.trace?.attemptDone(0, failure.code);
    return new TryAgain(failure, undefined, false, otherwise);
  }

  private attemptDone(ex: Exchange, status: number, sentAt: number): void {
    this.parts.telemetry.upstreamAttempt(ex, status, performance.now() - sentAt);
    ex.trace?.attemptDone(status);
  }

  /** CDF's answer for the app, streamed, holding the attempt's lease. */
  private answer(res: UpstreamResponse, body: Readable, lease: Lease): UpstreamAnswer {
    return { status: res.status, headers: downstreamResponseHeaders(res.headers), body, release: lease.release };
  }
}
