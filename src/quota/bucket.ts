import type { LimitConfig, Provenance } from '../config/index.js';

export type { Provenance } from '../config/index.js';

/** A limit as the quota uses it: the configured (or learned) one, with the highest figures learning may reach. */
export interface QuotaLimit extends LimitConfig {
  readonly maxRate: number;
  readonly maxConcurrency: number;
}

/**
 * Calls reach CDF later than the gateway admits them, by a transit time that varies: a slow call followed by
 * fast ones arrives bunched, and CDF's bucket, counted at arrival, sees less refill between them than ours
 * did. Keeping this much of the burst in reserve absorbs that much jitter.
 */
const JITTER_ALLOWANCE_MS = 50;

function capacity(burst: number, rate: number): number {
  return Math.max(1, burst - (rate * JITTER_ALLOWANCE_MS) / 1000);
}

/**
 * One token bucket with a concurrency cap, for one limit and one scope (a project, or a project and an
 * identity). Its figures are the effective ones, which learning moves; its state changes only through its
 * methods, called by quota/ (the scheduler and stores take and give back, the tree sets figures) and by
 * shared stores (src/cluster/), which mirror the shared bucket into it.
 */
export class Bucket {
  private _limit: QuotaLimit;
  private _rate: number;
  private _burst: number;
  private _concurrency: number;
  private _tokens: number;
  private _refilledAt: number;
  private _inFlight = 0;
  private _indebtedAt = Number.NEGATIVE_INFINITY;
  private _rateSource: Provenance;
  private _concurrencySource: Provenance;
  private _ownShare = 1;

  constructor(
    limit: QuotaLimit,
    /** The project, or project and identity: what this bucket is counted over. */
    readonly scope: string,
    now: number,
    /** The scheduler's bookkeeping for this bucket (its queue and timer), opaque here. */
    readonly lane: object = {},
  ) {
    this._limit = limit;
    this._rate = limit.rate;
    this._concurrency = limit.concurrency;
    this._burst = capacity(limit.burst, limit.rate);
    this._rateSource = limit.source.rate;
    this._concurrencySource = limit.source.concurrency;
    this._tokens = 0;
    this._refilledAt = now;
    // A learned bucket starts at the figures learned so far, below the ceiling it may climb to.
    const learned = limit.learned;
    if (learned) this.setEffective(learned.rate, learned.concurrency, learned.rateSource, learned.concurrencySource);
    // A guessed rate may be above CDF's: half its burst at first, so a wrong guess costs half the 429s.
    this._tokens = this._rateSource === 'guessed' ? this._burst / 2 : this._burst;
  }

  get limit(): QuotaLimit {
    return this._limit;
  }
  get rate(): number {
    return this._rate;
  }
  get burst(): number {
    return this._burst;
  }
  get concurrency(): number {
    return this._concurrency;
  }
  get tokens(): number {
    return this._tokens;
  }
  get refilledAt(): number {
    return this._refilledAt;
  }
  get inFlight(): number {
    return this._inFlight;
  }
  /** When a 429 last put it in debt: calls waiting then wait for CDF to recover, not for more rate. */
  get indebtedAt(): number {
    return this._indebtedAt;
  }
  get rateSource(): Provenance {
    return this._rateSource;
  }
  get concurrencySource(): Provenance {
    return this._concurrencySource;
  }
  /**
   * This replica's share of the calls a shared bucket lets through lately (1 when no other replica takes
   * from it): the answers it sees are that share of CDF's.
   */
  get ownShare(): number {
    return this._ownShare;
  }

  /** Stable name for logs, metrics and shared stores. */
  get key(): string {
    return `${this._limit.name}:${this.scope}`;
  }

  refill(now: number): void {
    const elapsed = now - this._refilledAt;
    if (elapsed > 0) {
      this._tokens = Math.min(this._burst, this._tokens + (elapsed * this._rate) / 1000);
      this._refilledAt = now;
    }
  }

  /** The tokens a refill at `now` would give, without refilling (for views and headers). */
  tokensAt(now: number): number {
    const elapsed = now - this._refilledAt;
    return elapsed > 0 ? Math.min(this._burst, this._tokens + (elapsed * this._rate) / 1000) : this._tokens;
  }

  /** 0 when a call may take a token and a slot now; -1 when no slot is free; else ms until a token. */
  blockedFor(now: number): number {
    this.refill(now);
    if (this._inFlight >= this._concurrency) return -1;
    if (this._tokens < 1) return Math.max(1, Math.ceil(((1 - this._tokens) * 1000) / this._rate));
    return 0;
  }

  /** Takes a token and a slot (after blockedFor said 0, for every bucket of the call). */
  take(): void {
    this._tokens -= 1;
    this._inFlight++;
  }

  /** A token owed whatever the count (a shadow bucket's queue is its debt). */
  owe(): void {
    this._tokens -= 1;
  }

  /** A slot taken (by a store that answered for it elsewhere, e.g. Redis). */
  hold(): void {
    this._inFlight++;
  }

  /** A slot given back; never below zero. */
  unhold(): void {
    if (this._inFlight > 0) this._inFlight--;
  }

  /** Lowers the tokens to at most `tokens` (CDF's bucket is emptier than ours: a 429, or another replica). */
  cap(tokens: number): void {
    if (this._tokens > tokens) this._tokens = tokens;
  }

  /**
   * CDF answered 429: its bucket is empty and may have charged the throttled call. Ours follows it down, `n`
   * tokens under zero, never more than one burst in debt.
   */
  indebt(n: number, now: number): void {
    this._tokens = Math.max(-this._burst, Math.min(this._tokens, 0) - n);
    this._indebtedAt = now;
  }

  /** The shared bucket's token count, as a shared store answered it at `at` (the view for metrics). */
  mirror(tokens: number, at: number): void {
    this._tokens = tokens;
    this._refilledAt = at;
  }

  /** What share of the shared bucket's calls this replica took lately (a shared store counts them). */
  shareCalls(share: number): void {
    this._ownShare = Math.min(1, Math.max(0.001, share));
  }

  /** Effective limits another replica published (through the store): this replica follows them. */
  follow(rate: number, concurrency: number): void {
    if (rate !== this._rate || concurrency !== this._concurrency)
      this.setEffective(
        rate,
        concurrency,
        rate === this._rate ? this._rateSource : 'learned',
        concurrency === this._concurrency ? this._concurrencySource : 'learned',
      );
  }

  /**
   * A reload changed this bucket's limit: figures learned under the old one stay as far as the new ceilings
   * allow; a bucket still at its old starting figures moves to the new ones. Tokens and slots stay.
   */
  reconfigure(limit: QuotaLimit): void {
    const old = this._limit;
    this._limit = limit;
    const learned = limit.learned;
    if (learned) {
      this.setEffective(learned.rate, learned.concurrency, learned.rateSource, learned.concurrencySource);
      return;
    }
    const atStart = this._rate === old.rate && this._rateSource === old.source.rate;
    const rate = atStart ? limit.rate : Math.min(this._rate, limit.maxRate);
    const concurrencyAtStart =
      this._concurrency === old.concurrency && this._concurrencySource === old.source.concurrency;
    const concurrency = concurrencyAtStart ? limit.concurrency : Math.min(this._concurrency, limit.maxConcurrency);
    this.setEffective(
      rate,
      concurrency,
      atStart ? limit.source.rate : this._rateSource,
      concurrencyAtStart ? limit.source.concurrency : this._concurrencySource,
    );
  }

  /** Sets the effective figures; the burst scales with the rate, so a lowered bucket cannot dump its old burst. */
  setEffective(rate: number, concurrency: number, rateSource: Provenance, concurrencySource: Provenance): void {
    this._rate = rate;
    this._concurrency = concurrency;
    this._rateSource = rateSource;
    this._concurrencySource = concurrencySource;
    const limit = this._limit;
    this._burst = capacity((limit.burst * rate) / limit.rate, rate);
    if (this._tokens > this._burst) this._tokens = this._burst;
    // Debt is at most one burst (CDF's floor too), also after a cut shrank the burst.
    else if (this._tokens < -this._burst) this._tokens = -this._burst;
  }
}
