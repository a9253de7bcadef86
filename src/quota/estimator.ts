/**
 * The estimators: what rate and how many calls at once CDF allows one bucket, found from CDF's answers, in
 * the spirit of Netflix concurrency-limits' `Limit.update(sample)`. Pure and clock-free: every call passes
 * the bucket's current figure and the time, and gets the figure to run at back, so a figure another replica
 * set (through Redis) or a reload changed is where the next step starts.
 */

export interface RateEstimator {
  /**
   * A call through the bucket, sent at `sentAt`, got an answer that was not a 429; `demand`: calls waited
   * lately for its tokens. No step until a call sent after the last one has been answered.
   */
  passed(rate: number, now: number, demand: boolean, sentAt?: number): number;
  /**
   * A 429 charged to the bucket, for a call sent at `sentAt`; `stated`: the rate CDF's message named;
   * `share`: the share of 429s among the operation's answers lately, for when the bucket has seen too few;
   * `ownShare`: this replica's share of the bucket's calls (the rest pass through other replicas).
   */
  throttled(
    rate: number,
    now: number,
    sentAt: number,
    stated: number | null,
    share?: number,
    ownShare?: number,
  ): number;
  /** A 429 of the bucket's calls that was not charged to it (counts towards its share of 429s). */
  noted(now: number): void;
  /** The highest rate it may reach now (a stated figure lowers it). */
  readonly ceiling: number;
  readonly phase: 'start' | 'probing';
}

export interface ConcurrencyEstimator {
  /** As RateEstimator.passed; `demand`: calls waited lately for a free slot. */
  passed(limit: number, now: number, demand: boolean, sentAt?: number): number;
  /** A concurrency 429 charged to the bucket; `inFlight`: its calls in flight when it came. */
  throttled(limit: number, now: number, sentAt: number, stated: number | null, inFlight: number): number;
  readonly ceiling: number;
}

export interface EstimatorSettings {
  /** Least time between two steps, and between two cuts (ms). */
  intervalMs: number;
  /** The deepest cut on 429s, as a share of the rate. */
  decrease: number;
  /** Probing past where CDF pushed back: this share of that figure per interval. */
  increase: number;
  /** After a cut, about this long (ms) to climb back to just under where CDF pushed back. */
  holdMs: number;
}

/** History kept for a rate: passed calls and 429s per slot. */
const SLOT_MS = 250;
const SLOTS = 32;
/** Slow start doubles the rate every second while CDF says yes. */
const SLOW_START_PER_SECOND = 2;
/** A share of 429s over fewer answers than this tells nothing. */
const MIN_ANSWERS = 10;
/** Below this share of 429s since the last cut the bucket runs at the edge: a gentle cut. */
const EDGE_SHARE = 0.05;
/** The gentle cut, and the least a cut takes off. */
const GENTLE = 0.9;
/** The climb back ends this far under where CDF pushed back; probing starts past it. */
const PLATEAU = 0.97;
/** A rate measured from what got through is run at this share of it. */
const MARGIN = 0.97;
/** CDF's budgets are per second: what passed in w seconds is at most (w + 1) seconds of its rate. */
const BURST_SECONDS = 1;
/** Two cuts within this share of each other are at the same point. */
const STEADY = 0.1;
/** The climb back takes at most this many times longer once the point is confirmed. */
const MAX_STEADY = 3;
/** A stated rate is held this far under the figure. */
const UNDER_STATED = 0.98;

/** A slot's index in the ring (slots count from the clock's zero, which may be recent). */
const at = (slot: number) => ((slot % SLOTS) + SLOTS) % SLOTS;

/** Passed calls and 429s per 250 ms slot over the last 8 s. */
class Slots {
  private readonly passes = new Float32Array(SLOTS);
  private readonly throttles = new Float32Array(SLOTS);
  private slot = Number.NaN;

  private advance(now: number): number {
    const s = Math.floor(now / SLOT_MS);
    if (Number.isNaN(this.slot) || s - this.slot >= SLOTS) {
      this.passes.fill(0);
      this.throttles.fill(0);
      this.slot = s;
    }
    while (this.slot < s) {
      this.slot++;
      this.passes[at(this.slot)] = 0;
      this.throttles[at(this.slot)] = 0;
    }
    return s;
  }

  pass(now: number): void {
    this.passes[at(this.advance(now))]++;
  }

  throttle(now: number): void {
    this.throttles[at(this.advance(now))]++;
  }

  /** Passed calls in the `n` slots that end with the slot of `t` (slots older than the history are 0). */
  private passedBack(t: number, n: number): number {
    const end = Math.floor(t / SLOT_MS);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const s = end - i;
      if (s > this.slot || this.slot - s >= SLOTS) continue;
      sum += this.passes[at(s)];
    }
    return sum;
  }

  /**
   * A rate CDF allows at least, from what passed before `t`: w seconds of calls passed are at most w + 1
   * seconds of a per-second budget, whatever its burst, so the best such bound over the windows.
   */
  lowerBound(t: number): number {
    let best = 0;
    for (let n = 4; n < SLOTS; n += 2) {
      const w = (n * SLOT_MS) / 1000;
      best = Math.max(best, this.passedBack(t, n) / (w + BURST_SECONDS));
    }
    return best;
  }

  /** The most calls that passed in one second of the two before `t`: about what CDF lets through. */
  busiestSecond(t: number): number {
    const n = 1000 / SLOT_MS;
    let best = 0;
    for (let back = 0; back <= n; back++) best = Math.max(best, this.passedBack(t - back * SLOT_MS, n));
    return best;
  }

  /** The share of 429s among answers since `since` (the last 500 ms at least); NaN with too few to tell. */
  throttledShare(now: number, since: number): number {
    const end = this.advance(now);
    const from = Math.max(end - SLOTS + 1, Math.min(end - 1, Math.floor(since / SLOT_MS)));
    let p = 0;
    let t = 0;
    for (let s = from; s <= end; s++) {
      p += this.passes[at(s)];
      t += this.throttles[at(s)];
    }
    return p + t < MIN_ANSWERS ? Number.NaN : t / (p + t);
  }
}

/**
 * A rate found the way TCP finds a window (slow start, then CUBIC's concave climb back and convex probe):
 * - While it has never been refused, the rate doubles every second calls wait for it (slow start). The first
 *   429 ends that, cutting to what passed before it (a lower bound of CDF's rate) or to `decrease` of it.
 * - After each later 429 the rate is cut by the share of 429s since the last cut (a tenth at the edge, at most
 *   to `decrease`), and where it was cut is remembered; the rate climbs back fast at first and slowly near
 *   there (a cubic reaching just under it after about `holdMs`), then probes past it by `increase` of it a step.
 *   A 429 again at or below that point moves it down (CUBIC's fast convergence).
 * - A stated figure is a ceiling: the rate holds just under it and never probes past.
 * - It never rises while no call waits for its tokens, and a 429 to a call sent before the last cut cuts
 *   nothing: it says nothing new.
 */
export class CubicRate implements RateEstimator {
  private readonly slots = new Slots();
  private _phase: 'start' | 'probing';
  private _ceiling: number;
  /** Where CDF last pushed back: the climb's target. */
  private pushedAt: number;
  private cutAt = Number.NEGATIVE_INFINITY;
  private steppedAt = Number.NEGATIVE_INFINITY;
  /** When the estimate began (the climb of an aimed start counts from it). */
  private since = Number.NaN;
  /** Seconds from the last cut (or the start) to the plateau. */
  private k = 0;
  /** Cuts in a row at about the same point: the climb back slows with each (CDF's figure is confirmed). */
  private steady = 0;

  constructor(
    private readonly settings: EstimatorSettings,
    start: number,
    ceiling: number,
    private readonly floor: number,
    /** Where a rate estimated during a storm should climb to (what CDF refused lies above it): no slow start. */
    aim?: number,
  ) {
    this._ceiling = ceiling;
    this._phase = aim === undefined && ceiling > start ? 'start' : 'probing';
    this.pushedAt = aim ?? start;
    if (aim !== undefined) this.k = this.climbSeconds(start);
  }

  /** The cubic's steepness: a cut of a tenth climbs back to the plateau in holdMs, slower once confirmed. */
  private get steepness(): number {
    return (1 - GENTLE) / (Math.max(0.1, this.settings.holdMs / 1000) * (1 + this.steady)) ** 3;
  }

  get ceiling(): number {
    return this._ceiling;
  }

  get phase(): 'start' | 'probing' {
    return this._phase;
  }

  /** Learning turned to a ceiling the operator changed (reload). */
  bound(ceiling: number): void {
    this._ceiling = ceiling;
  }

  passed(rate: number, now: number, demand: boolean, sentAt = now): number {
    this.slots.pass(now);
    if (Number.isNaN(this.since)) this.since = now;
    if (!demand || now - this.steppedAt < this.settings.intervalMs || sentAt < this.steppedAt || rate >= this._ceiling)
      return rate;
    this.steppedAt = now;
    let next: number;
    if (this._phase === 'start') next = rate * SLOW_START_PER_SECOND ** (this.settings.intervalMs / 1000);
    else {
      const t = (now - this.cutAt) / 1000;
      const target = this.pushedAt * (PLATEAU + this.steepness * (t - this.k) ** 3);
      // No step more than `increase` of where CDF pushed back (less once that point is confirmed: each probe
      // past it costs 429s); past the plateau these steps are the probe.
      const step = (this.settings.increase * this.pushedAt) / (1 + this.steady);
      next = Math.max(rate, Math.min(target, rate + step));
    }
    return Math.min(this._ceiling, next);
  }

  noted(now: number): void {
    this.slots.throttle(now);
  }

  throttled(rate: number, now: number, sentAt: number, stated: number | null, share0 = 0, ownShare = 1): number {
    this.slots.throttle(now);
    if (stated !== null) {
      this._ceiling = Math.min(this._ceiling, stated * UNDER_STATED);
      this._phase = 'probing';
      const next = Math.min(rate, stated * UNDER_STATED);
      this.cutAt = now;
      this.pushedAt = stated * UNDER_STATED;
      this.k = this.climbSeconds(next);
      return next;
    }
    // A call sent before the last cut, or too soon after it for CDF to have seen it, says nothing new.
    if (sentAt <= this.cutAt + this.settings.intervalMs) return rate;
    const from = rate;
    // What passed before the 429 says where CDF stands (all of it: this replica saw its share): w seconds of
    // passes are at most w + 1 seconds of its rate, whatever its burst, and its busiest second is about it.
    const lower = (this.slots.lowerBound(sentAt) / ownShare) * MARGIN;
    const busiest = Math.min(from, (this.slots.busiestSecond(sentAt) / ownShare) * MARGIN);
    let next: number;
    if (busiest === 0 && Number.isFinite(this.cutAt)) {
      // Cut before and still nothing passed: CDF's bucket is paying back the refused calls it charged, and the
      // share says nothing of its rate. From the deepest cut the rate starts again as a guess does.
      next = from * this.settings.decrease;
      this.pushedAt = next;
      this._phase = 'start';
    } else if (this._phase === 'start') {
      // Slow start ran past CDF's rate, by up to a second of it hidden in CDF's burst.
      next = Math.max(from * this.settings.decrease, Math.min(from * GENTLE, lower));
      this.pushedAt = Math.max(next, busiest);
      this._phase = 'probing';
    } else {
      const own = this.slots.throttledShare(now, this.cutAt);
      const share = Number.isNaN(own) ? share0 : own;
      const deep = share > EDGE_SHARE;
      next = from * (deep ? Math.max(this.settings.decrease, Math.min(GENTLE, 1 - share)) : GENTLE);
      // CDF's figure is under `from` (it refused there) and, when many were refused, over about what passed:
      // the climb aims between. A storm's share overstates how far (CDF refuses more while it pays back the
      // refused calls it charged): the cut never goes under what passed. Refused again at the edge at or under
      // the last aim: it was too high (CUBIC's fast convergence).
      let aim = deep ? from * (1 - share / 2) : from;
      if (deep) next = Math.max(next, Math.min(from * GENTLE, lower));
      const before = Number.isFinite(this.cutAt);
      if (!deep && before && from <= this.pushedAt * 1.001) aim = (from * (1 + GENTLE)) / 2;
      this.steady =
        before && Math.abs(aim - this.pushedAt) <= this.pushedAt * STEADY ? Math.min(MAX_STEADY, this.steady + 1) : 0;
      this.pushedAt = Math.max(next, aim);
    }
    next = Math.max(this.floor, next);
    this.pushedAt = Math.max(this.pushedAt, next);
    this.cutAt = now;
    this.k = this.climbSeconds(next);
    return next;
  }

  /** Seconds the cubic takes from `from` to its plateau under where CDF pushed back. */
  private climbSeconds(from: number): number {
    return Math.cbrt(Math.max(0, PLATEAU - from / this.pushedAt) / this.steepness);
  }
}

/**
 * How many calls at once, found as Netflix's AIMD limit finds it: one more slot each interval while calls
 * wait for a slot and CDF answers (faster, by half, before the first 429); on a concurrency 429, one fewer
 * than were out (a quarter fewer when refused again soon after), or CDF's stated figure; and no climb past
 * where it was refused for `holdMs`, longer each time it is refused there again. CDF refuses a call at once
 * when it has no slot, so no burst hides a probe. One refusal at a figure that has held for `holdMs` is a race
 * (CDF counts a slot until its answer is gone, so a call sent as one ends can find it taken): only a second
 * within `holdMs` cuts.
 */
export class AimdConcurrency implements ConcurrencyEstimator {
  private _ceiling: number;
  private refused = false;
  private refusedAt = Number.POSITIVE_INFINITY;
  private cutAt = Number.NEGATIVE_INFINITY;
  private steppedAt = Number.NEGATIVE_INFINITY;
  /** Refusals in a row at about the same figure: each holds longer under it before the next probe. */
  private steady = 0;
  /** The figure last seen, and since when it has held. */
  private figure = Number.NaN;
  private figureSince = Number.NEGATIVE_INFINITY;
  /** When a refusal at a figure that had held was let pass as a race. */
  private raceAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly settings: EstimatorSettings,
    start: number,
    ceiling: number,
    private readonly floor: number,
  ) {
    this._ceiling = ceiling;
    this.refused = !(ceiling > start);
  }

  get ceiling(): number {
    return this._ceiling;
  }

  bound(ceiling: number): void {
    this._ceiling = ceiling;
  }

  passed(limit: number, now: number, demand: boolean, sentAt = now): number {
    this.saw(limit, now);
    if (!demand || now - this.steppedAt < this.settings.intervalMs || sentAt < this.steppedAt || limit >= this._ceiling)
      return limit;
    this.steppedAt = now;
    // Held just under where CDF refused, a while after it did (longer once it refused there again).
    if (now - this.cutAt < this.settings.holdMs * (1 + this.steady) && limit + 1 >= this.refusedAt) return limit;
    const step = this.refused ? 1 : Math.max(1, Math.floor(limit / 2));
    return this.saw(Math.min(this._ceiling, limit + step), now);
  }

  /** The figure now (another replica or a reload may have set it), and since when it has held. */
  private saw(limit: number, now: number): number {
    if (limit !== this.figure) [this.figure, this.figureSince] = [limit, now];
    return limit;
  }

  throttled(limit: number, now: number, sentAt: number, stated: number | null, inFlight: number): number {
    return this.saw(this.cut(limit, now, sentAt, stated, inFlight), now);
  }

  private cut(limit: number, now: number, sentAt: number, stated: number | null, inFlight: number): number {
    this.saw(limit, now);
    const held = this.refused && now - this.figureSince >= this.settings.holdMs;
    this.refused = true;
    if (stated !== null) {
      const figure = Math.max(1, Math.floor(stated));
      this._ceiling = Math.min(this._ceiling, figure);
      // Refused again at or under the figure: CDF counts more calls out than ours (another client, or a call
      // counted until its answer is gone), so the figure is only a ceiling and the cut goes on as without one.
      if (limit > figure || sentAt <= this.cutAt) {
        if (limit > figure) {
          this.refusedAt = figure + 1;
          this.cutAt = now;
        }
        return Math.min(limit, figure);
      }
    }
    if (sentAt <= this.cutAt) return limit;
    // CDF had no slot for a call while this many of ours were out: its figure is below that.
    const over = Math.min(limit, Math.max(1, inFlight));
    if (held && over >= limit && now - this.raceAt > this.settings.holdMs) {
      this.raceAt = now;
      return limit;
    }
    this.steady = Math.abs(over - this.refusedAt) <= 1 ? Math.min(MAX_STEADY, this.steady + 1) : 0;
    // Refused again soon after a cut: CDF's slots are fewer than ours by more than one (others share them).
    const again = now - this.cutAt < this.settings.holdMs;
    this.refusedAt = over;
    this.cutAt = now;
    const next = again ? Math.floor(over * 0.75) : over - 1;
    return Math.max(this.floor, Math.min(limit - 1, next));
  }
}
