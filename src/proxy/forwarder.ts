import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { cdfErrorMessage } from '../cdf/index.js';
import type { GatewayConfig } from '../config/index.js';
import { GatewayError, GatewayErrors } from '../errors.js';
import type { Telemetry } from '../metrics/telemetry.js';
import {
  type Bucket,
  type Lease,
  QueueRejected,
  type QuotaTree,
  type Scheduler,
  type ShadowLedger,
} from '../quota/index.js';
import {
  backoffMs,
  type CircuitBreaker,
  type Failure,
  isAutoRetryable,
  RetryBudget,
  retryAfterMs,
  retryReason,
} from '../retry/index.js';
import { HeldBody, TeeBody } from './body.js';
import { sleepUnlessGone } from './client-gone.js';
import type { Exchange } from './exchange.js';
import { downstreamResponseHeaders } from './headers.js';
import type { UpstreamAnswer } from './types.js';
import { networkFailure, type Upstream, type UpstreamResponse } from './upstream.js';

/** Error bodies larger than this are passed on without being read for a retry decision. */
const INSPECT_LIMIT = 65_536;

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

/**
 * Upstream with retries: every attempt first takes a token and a slot from the request's buckets (so
 * retries are part of the quota), then goes to CDF; a failure is tried again only where the policy
 * says it is safe, within the attempts, the deadline and the bucket's retry budget.
 */
export class Forwarder {
  private budgets = new WeakMap<Bucket, RetryBudget>();
  private unbucketed: RetryBudget;
  private budgetSettings: string;

  constructor(private readonly parts: ForwarderParts) {
    this.unbucketed = new RetryBudget(parts.config.retry.budgetRatio, parts.config.retry.budgetWindowMs);
    this.budgetSettings = `${parts.config.retry.budgetRatio}/${parts.config.retry.budgetWindowMs}`;
  }

  /** Reload: `config.retry` changed in place; new budget settings start fresh budgets. */
  reconfigure(): void {
    const { budgetRatio, budgetWindowMs } = this.parts.config.retry;
    if (`${budgetRatio}/${budgetWindowMs}` === this.budgetSettings) return;
    this.budgetSettings = `${budgetRatio}/${budgetWindowMs}`;
    this.budgets = new WeakMap();
    this.unbucketed = new RetryBudget(budgetRatio, budgetWindowMs);
  }

  async fetch(ex: Exchange): Promise<UpstreamAnswer> {
    const { config } = this.parts;
    const deadline = ex.startedAt + config.retry.maxWaitMs;
    for (;;) {
      ex.attempts++;
      const lease = await this.admit(ex, deadline);
      const started = performance.now();
      if (ex.attempts === 1) this.recordFirst(ex, started);
      const shadow = ex.shadow.length > 0;
      if (shadow) this.parts.shadow.take(ex.shadow, started);
      let outcome: UpstreamAnswer | TryAgain;
      // The lease goes with a streamed answer (the record stage gives it back once the app has it);
      // every other way out of the attempt gives it back here, in this one place.
      let handedOver = false;
      try {
        outcome = await this.attempt(ex, lease, started);
        handedOver = !(outcome instanceof TryAgain) && outcome.release === lease.release;
      } finally {
        if (!handedOver) lease.release();
        if (shadow) this.parts.shadow.release(ex.shadow);
      }
      if (!(outcome instanceof TryAgain)) return outcome;
      const retry = await this.retryAfter(ex, outcome.failure, outcome.retryAfter, deadline);
      if (outcome.throttled) this.parts.telemetry.upstreamThrottled(ex, retry);
      if (retry) {
        if (ex.body instanceof TeeBody && !ex.body.arrived) await this.finishUpload(ex, ex.body);
        continue;
      }
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

  /** A token and a slot in every bucket of the request, unless the circuit is open or the queue says no. */
  private async admit(ex: Exchange, deadline: number): Promise<Lease> {
    const { config, scheduler, circuit } = this.parts;
    const now = performance.now();
    if (!circuit.allow(now)) {
      throw new GatewayErrors.CIRCUIT_OPEN().withHeaders({ 'retry-after': String(circuit.retryAfterSec(now)) });
    }
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
      if (err instanceof QueueRejected) {
        if (err.reason === 'aborted') throw new GatewayErrors.CLIENT_GONE();
        const refused = err.reason === 'full' ? GatewayErrors.QUEUE_FULL : GatewayErrors.QUEUE_TIMEOUT;
        throw new refused(err.bucket.limit.name).withHeaders({ 'retry-after': String(err.retryAfterSec) });
      }
      throw err;
    }
  }

  /** One attempt upstream under `lease`: an answer for the app, or a failure that may be tried again. */
  private async attempt(ex: Exchange, lease: Lease, now: number): Promise<UpstreamAnswer | TryAgain> {
    const { config, circuit, telemetry } = this.parts;
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
      const ended = performance.now();
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
      circuit.record(false, ended);
      return this.brokeOff(
        ex,
        failure,
        now,
        failure.timeout
          ? new GatewayErrors.UPSTREAM_TIMEOUT(config.upstream.timeoutMs)
          : new GatewayErrors.UPSTREAM_UNREACHABLE(failure.code),
      );
    } finally {
      ex.uploading = false;
    }

    ex.upstreamStatus = res.status;
    const requestId = res.headers['x-request-id'];
    if (typeof requestId === 'string') ex.upstreamRequestId = requestId;
    const status = res.status;
    const failing = status === 429 || status >= 500;
    circuit.record(!(status === 502 || status === 503 || status === 504), performance.now());

    if (!failing) {
      telemetry.upstreamAttempt(ex, status, performance.now() - now);
      ex.trace?.attemptDone(status);
      this.parts.quota.passed(lease.buckets, ex.route, performance.now());
      return this.answer(res, lease);
    }

    // A failed answer: read its (small) body to decide, unless it cannot be retried anyway.
    let body: Buffer | null = null;
    const declared = res.headers['content-length'];
    if (ex.replayable && (declared === undefined || Number(declared) <= INSPECT_LIMIT)) {
      try {
        const read = await readUpTo(res.body, INSPECT_LIMIT);
        if (read.rest) return this.answer({ ...res, body: read.rest }, lease);
        body = read.whole;
      } catch (err) {
        if (ex.abort.signal.aborted) throw new GatewayErrors.CLIENT_GONE();
        const failure = networkFailure(err);
        return this.brokeOff(
          ex,
          failure,
          now,
          failure.timeout
            ? new GatewayErrors.UPSTREAM_BODY_TIMEOUT(failure.code)
            : new GatewayErrors.UPSTREAM_BROKEN(failure.code),
        );
      }
    }
    telemetry.upstreamAttempt(ex, status, performance.now() - now);
    ex.trace?.attemptDone(status);
    if (status === 429)
      this.parts.quota.throttled(lease.buckets, ex.method, ex.route, cdfErrorMessage(body), performance.now(), now);
    if (body === null) {
      if (status === 429) telemetry.upstreamThrottled(ex, false);
      return this.answer(res, lease);
    }
    const failure: Failure = { kind: 'status', status, autoRetryable: isAutoRetryable(res.headers, body) };
    return new TryAgain(failure, res.headers['retry-after'], status === 429, {
      status,
      headers: downstreamResponseHeaders(res.headers),
      body,
      release: noop,
    });
  }

  /** An attempt that failed on the network: counted, and tried again where the policy allows (502/504 otherwise). */
  private brokeOff(
    ex: Exchange,
    failure: Failure & { kind: 'network' },
    startedAt: number,
    otherwise: GatewayError,
  ): TryAgain {
    this.parts.telemetry.upstreamAttempt(ex, 0, performance.now() - startedAt);
    ex.trace?.attemptDone(0, failure.code);
    return new TryAgain(failure, undefined, false, otherwise);
  }

  /** Waits out the backoff and says yes when another attempt is allowed; no when the answer must go back. */
  private async retryAfter(
    ex: Exchange,
    failure: Failure,
    retryAfterHeader: string | string[] | undefined,
    deadline: number,
  ): Promise<boolean> {
    const { config, telemetry, log } = this.parts;
    const reason = retryReason(failure, ex);
    if (reason === null || ex.attempts >= config.retry.maxAttempts) return false;
    const now = performance.now();
    const hinted = retryAfterMs(retryAfterHeader);
    const delay = hinted ?? backoffMs(ex.attempts - 1, config.retry.baseDelayMs, config.retry.maxDelayMs);
    if (now + delay >= deadline) return false;
    if (!this.tryBudget(ex, now)) {
      telemetry.retryBudgetExhausted(ex);
      log.warn(
        { reqId: ex.requestId, reason, attempt: ex.attempts },
        'retry budget exhausted: passing the failure back',
      );
      return false;
    }
    telemetry.retried(ex, reason);
    // A 429 is CDF asking for patience; anything else is CDF or the network failing: an operator's business.
    (reason === 'throttled' ? log.info : log.warn).call(
      log,
      {
        reqId: ex.requestId,
        reason,
        attempt: ex.attempts,
        upstreamStatus: failure.kind === 'status' ? failure.status : undefined,
        error: failure.kind === 'network' ? failure.code : undefined,
        delayMs: delay,
        retryAfter: hinted !== null,
      },
      'retrying upstream call',
    );
    await sleepUnlessGone(delay, ex.abort);
    return true;
  }

  private recordFirst(ex: Exchange, now: number): void {
    if (ex.buckets.length === 0) this.unbucketed.recordFirst(now);
    for (const b of ex.buckets) this.budgetOf(b).recordFirst(now);
  }

  private tryBudget(ex: Exchange, now: number): boolean {
    if (ex.buckets.length === 0) return this.unbucketed.tryRetry(now);
    for (const b of ex.buckets) if (!this.budgetOf(b).tryRetry(now)) return false;
    return true;
  }

  private budgetOf(bucket: Bucket): RetryBudget {
    let budget = this.budgets.get(bucket);
    if (!budget) {
      budget = new RetryBudget(this.parts.config.retry.budgetRatio, this.parts.config.retry.budgetWindowMs);
      this.budgets.set(bucket, budget);
    }
    return budget;
  }

  private answer(
    res: { status: number; headers: UpstreamResponse['headers']; body: Readable },
    lease: Lease,
  ): UpstreamAnswer {
    return {
      status: res.status,
      headers: downstreamResponseHeaders(res.headers),
      body: res.body,
      release: lease.release,
    };
  }
}

const noop = () => {};

/** A failed attempt that may be tried again; `otherwise` is what the app gets when it is not. */
class TryAgain {
  constructor(
    readonly failure: Failure,
    readonly retryAfter: string | string[] | undefined,
    readonly throttled: boolean,
    readonly otherwise: UpstreamAnswer | GatewayError,
  ) {}
}

/**
 * Reads a body of unknown length up to `limit`; past it, hands back a stream of what was read and the
 * rest, so a large answer still reaches the app whole.
 */
async function readUpTo(
  body: Readable,
  limit: number,
): Promise<{ whole: Buffer; rest: null } | { whole: null; rest: Readable }> {
  const head: Buffer[] = [];
  let size = 0;
  const it = body[Symbol.asyncIterator]();
  for (;;) {
    const next = await it.next();
    if (next.done) return { whole: Buffer.concat(head, size), rest: null };
    head.push(next.value as Buffer);
    size += (next.value as Buffer).length;
    if (size > limit) {
      async function* replay() {
        yield* head;
        for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
      }
      return { whole: null, rest: Readable.from(replay(), { objectMode: false }) };
    }
  }
}
