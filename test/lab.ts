/**
 * A virtual-time lab for the quota's learning: the real Scheduler, QuotaTree and MemoryStore on a clock the
 * lab moves, in front of a model of CDF's limiters, with apps that loop like the SDKs (and retry as they do).
 * Runs of twenty seconds take milliseconds and are deterministic (seeded), so learning is tested on counts
 * across many stand-ins for CDF, not on time.
 */
import { lookupRoute } from '../src/cdf/index.js';
import { type GatewayConfig, loadConfig } from '../src/config/index.js';
import {
  type AppRef,
  type Bucket,
  type BucketPath,
  type Clock,
  type ClockTimer,
  MAX_BUCKETS,
  MemoryStore,
  QueueRejected,
  QuotaTree,
  Scheduler,
} from '../src/quota/index.js';

/** A clock whose time moves only when the lab pops its next event; its timers are events too. */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly heap: Array<{ at: number; seq: number; fn: () => void; live: boolean; every: number }> = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.push(this.t + Math.max(0, ms), fn, 0);
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    return this.push(this.t + Math.max(1, ms), fn, Math.max(1, ms));
  }

  clearTimeout(timer: ClockTimer): void {
    (timer as { live: boolean }).live = false;
  }

  clearInterval(timer: ClockTimer): void {
    (timer as { live: boolean }).live = false;
  }

  /** Runs events (and the promises they settle) until `until`, then leaves the time there. */
  async runUntil(until: number): Promise<void> {
    for (;;) {
      const e = this.heap[0];
      if (e === undefined || e.at > until) break;
      this.pop();
      if (!e.live) continue;
      this.t = e.at;
      if (e.every > 0) {
        // The same object goes back in: the handle its caller holds still clears it.
        e.at += e.every;
        e.seq = this.seq++;
        this.insert(e);
      }
      e.fn();
      await settle();
    }
    this.t = until;
  }

  private push(at: number, fn: () => void, every: number): ClockTimer {
    const e = { at, seq: this.seq++, fn, live: true, every };
    this.insert(e);
    return e as ClockTimer;
  }

  private insert(e: { at: number; seq: number; fn: () => void; live: boolean; every: number }): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(h[p], h[i])) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l], h[m])) m = l;
      if (r < h.length && before(h[r], h[m])) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i], h[m]];
      i = m;
    }
  }
}

const before = (a: { at: number; seq: number }, b: { at: number; seq: number }) =>
  a.at < b.at || (a.at === b.at && a.seq < b.seq);
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Deterministic randomness (an LCG). */
export function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** One of CDF's budgets in the model: what it applies to and how it limits. */
export interface LabBudget {
  name: string;
  /** Applies to calls whose "METHOD /path" matches (the path after the project). */
  match: RegExp;
  rate?: number;
  /** Default: one second of the rate. */
  burst?: number;
  concurrency?: number;
  per?: 'project' | 'identity';
  /** token (default): a token bucket; fixed: at most `rate` per wall-clock second; sliding: in any second. */
  limiter?: 'token' | 'fixed' | 'sliding';
  statesRate?: boolean;
  statesConcurrency?: boolean;
}

export interface LabCdfOptions {
  budgets: LabBudget[];
  latencyMs?: number;
  jitterMs?: number;
  /** A 429 still costs a token at every budget checked (CDF's docs warn throttled calls may use budget). */
  charge?: boolean;
  /** How a 429's text reads: CDF's JSON message (default), or plain text in another wording. */
  wording?: 'cdf' | 'other';
  /** Calls that take longer than `latencyMs` ("POST /functions/1/call" taking 2 s). */
  slow?: Array<{ match: RegExp; ms: number }>;
}

interface LimiterState {
  tokens: number;
  at: number;
  inFlight: number;
  window: number;
  count: number;
  log: number[];
}

/** The model of CDF: budgets checked in order (narrowest first), concurrency before rate. */
export class LabCdf {
  readonly ok = new Map<string, number>();
  readonly throttled = new Map<string, number>();
  readonly okBySecond: number[] = [];
  /** Useful calls per operation per second. */
  readonly okByOpSecond = new Map<string, number[]>();
  readonly throttledBySecond: number[] = [];
  private readonly states = new Map<string, LimiterState>();

  constructor(
    private readonly clock: ManualClock,
    private readonly o: LabCdfOptions,
    private readonly random: () => number,
  ) {}

  /** Answers a call after the latency: 200, or 429 with a message. */
  call(
    method: string,
    rest: string,
    project: string,
    identity: string,
    op: string,
  ): Promise<{ status: number; message: string | null }> {
    const key = `${method} ${rest}`;
    return new Promise((resolve) => {
      this.clock.setTimeout(() => {
        const held: LimiterState[] = [];
        const refusal = this.admit(key, project, identity, held);
        const second = Math.floor(this.clock.now() / 1000);
        const base = this.o.slow?.find((x) => x.match.test(key))?.ms ?? this.o.latencyMs ?? 20;
        const latency = base + this.random() * (this.o.jitterMs ?? 5);
        if (refusal === null) {
          for (const s of held) s.inFlight++;
          this.clock.setTimeout(() => {
            for (const s of held) s.inFlight--;
            bump(this.ok, op);
            this.okBySecond[second] = (this.okBySecond[second] ?? 0) + 1;
            let perOp = this.okByOpSecond.get(op);
            if (!perOp) {
              perOp = [];
              this.okByOpSecond.set(op, perOp);
            }
            perOp[second] = (perOp[second] ?? 0) + 1;
            resolve({ status: 200, message: null });
          }, latency);
        } else {
          bump(this.throttled, op);
          this.throttledBySecond[second] = (this.throttledBySecond[second] ?? 0) + 1;
          this.clock.setTimeout(() => resolve({ status: 429, message: refusal }), latency);
        }
      }, 1);
    });
  }

  get okCount(): number {
    return sum(this.ok);
  }

  get throttledCount(): number {
    return sum(this.throttled);
  }

  private admit(key: string, project: string, identity: string, held: LimiterState[]): string | null {
    const now = this.clock.now();
    const checked: Array<[LabBudget, LimiterState]> = [];
    for (const b of this.o.budgets) {
      if (!b.match.test(key)) continue;
      const who = b.per === 'identity' ? `${project}/${identity}` : project;
      const s = this.stateOf(`${b.name}\u0000${who}`, b);
      checked.push([b, s]);
      const scope = b.per === 'identity' ? 'Identity' : 'Project';
      let refused: string | null = null;
      if (b.concurrency !== undefined && s.inFlight >= b.concurrency)
        refused = this.message(scope, 'concurrency', b.concurrency, b.statesConcurrency ?? true);
      else if (b.rate !== undefined && !this.takeRate(b, s, now))
        refused = this.message(scope, 'rate', b.rate, b.statesRate ?? false);
      if (refused !== null) {
        if (this.o.charge ?? true)
          for (const [cb, cs] of checked)
            if (cb.rate !== undefined && (cb.limiter ?? 'token') === 'token')
              cs.tokens = Math.max(cs.tokens - 1, -(cb.burst ?? cb.rate));
        return refused;
      }
      held.push(s);
    }
    return null;
  }

  private takeRate(b: LabBudget, s: LimiterState, now: number): boolean {
    const rate = b.rate as number;
    const kind = b.limiter ?? 'token';
    if (kind === 'token') {
      const burst = b.burst ?? rate;
      s.tokens = Math.min(burst, s.tokens + ((now - s.at) * rate) / 1000);
      s.at = now;
      if (s.tokens < 1) return false;
      s.tokens -= 1;
      return true;
    }
    if (kind === 'fixed') {
      const w = Math.floor(now / 1000);
      if (w !== s.window) {
        s.window = w;
        s.count = 0;
      }
      if (s.count >= rate) return false;
      s.count++;
      return true;
    }
    while (s.log.length > 0 && s.log[0] <= now - 1000) s.log.shift();
    if (s.log.length >= rate) return false;
    s.log.push(now);
    return true;
  }

  private message(scope: string, kind: 'rate' | 'concurrency', figure: number, states: boolean): string {
    const what = kind === 'rate' ? 'requests per second' : 'concurrent requests';
    if (this.o.wording === 'other')
      return states
        ? `Too many ${kind === 'rate' ? 'requests' : 'concurrent requests'}: limit ${figure} ${kind === 'rate' ? 'requests/s' : 'in flight'}`
        : `Too many ${kind === 'rate' ? 'requests' : 'concurrent requests'}, slow down`;
    return states
      ? `${scope} exceeded maximum number='${figure}' of ${what}. Please try again later.`
      : `${scope} exceeded the ${kind === 'rate' ? 'request rate' : 'concurrent requests'} limit. Please try again later.`;
  }

  private stateOf(key: string, b: LabBudget): LimiterState {
    let s = this.states.get(key);
    if (!s) {
      s = { tokens: b.burst ?? b.rate ?? 0, at: this.clock.now(), inFlight: 0, window: -1, count: 0, log: [] };
      this.states.set(key, s);
    }
    return s;
  }
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

function sum(m: Map<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}

/** The gateway's quota and a forwarder's retries of 429s, on the lab's clock (no HTTP). */
export class LabGateway {
  readonly config: GatewayConfig;
  readonly scheduler: Scheduler;
  readonly tree: QuotaTree;
  /** The effective figures of the buckets the lab follows, once a second. */
  readonly figures: Array<Record<string, { rate: number; concurrency: number; rateSource: string }>> = [];

  constructor(
    private readonly clock: ManualClock,
    private readonly cdf: LabCdf | (() => LabCdf),
    overrides: unknown,
    private readonly random: () => number,
  ) {
    this.config = loadConfig({ env: {}, overrides });
    this.scheduler = new Scheduler(new MemoryStore(), this.config.queue, null, MAX_BUCKETS, clock);
    this.tree = new QuotaTree(this.config.limits, this.scheduler, this.config.adaptive);
  }

  /** One app call through the gateway: its attempts until CDF answers 2xx or the retries run out. */
  async call(method: string, rest: string, project: string, identity: string, app: AppRef): Promise<number> {
    const route = lookupRoute(method, rest);
    const path: BucketPath = {
      method,
      route,
      target: { project, rest },
      identity,
      buckets: this.tree.bucketsFor(method, rest, route, project, () => identity),
      bucketsChosenAt: this.tree.generation,
    };
    const retry = this.config.retry;
    const startedAt = this.clock.now();
    for (let attempt = 1; ; attempt++) {
      const deadline = Math.min(this.clock.now() + this.config.queue.maxWaitMs, startedAt + retry.maxWaitMs);
      let lease: Awaited<ReturnType<Scheduler['acquire']>>;
      try {
        lease = await this.scheduler.acquire(path.buckets, app, deadline, undefined, path);
      } catch (err) {
        if (err instanceof QueueRejected) return 429;
        throw err;
      }
      const sentAt = this.clock.now();
      const cdf = typeof this.cdf === 'function' ? this.cdf() : this.cdf;
      const res = await cdf.call(method, rest, project, identity, opOf(method, rest));
      const now = this.clock.now();
      try {
        if (res.status !== 429) {
          this.tree.passed(lease.buckets, route, now, sentAt);
          return res.status;
        }
        this.tree.throttled(lease.buckets, method, route, res.message, now, sentAt);
      } finally {
        lease.release();
      }
      if (attempt >= retry.maxAttempts) return 429;
      await this.sleep(this.random() * Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1)));
    }
  }

  /** Records the effective figures of the named buckets (learned ones by prefix). */
  sample(names: readonly string[]): void {
    const row: Record<string, { rate: number; concurrency: number; rateSource: string }> = {};
    for (const b of this.scheduler.allBuckets())
      if (names.some((n) => b.limit.name === n || (n.endsWith('*') && b.limit.name.startsWith(n.slice(0, -1)))))
        row[`${b.limit.name}:${b.scope}`] = { rate: b.rate, concurrency: b.concurrency, rateSource: b.rateSource };
    this.figures.push(row);
  }

  buckets(): Bucket[] {
    return [...this.scheduler.allBuckets()];
  }

  close(): void {
    this.scheduler.close();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.setTimeout(resolve, ms));
  }
}

/** "POST /assets/byids", ids replaced: what the lab counts useful calls by. */
export function opOf(method: string, rest: string): string {
  return `${method} ${rest.replace(/\/\d+(?=\/|$)/g, '/{id}')}`;
}

/** An app: `loops` SDK loops calling `next()`'s operation, retrying a 429 five times as the JS SDK does. */
export interface LabApp {
  name: string;
  loops: number;
  /** The identities its loops use in turn. */
  identities?: number;
  /** The call a loop makes next. */
  next: (random: () => number) => { method: string; rest: string };
  weight?: number;
  priority?: number;
}

export interface LabScenario {
  cdf: LabCdfOptions;
  apps: LabApp[];
  seconds: number;
  /** Gateway settings over the defaults (a user's layer). */
  gateway?: unknown;
  /** Buckets whose figures are sampled each second. */
  follow?: string[];
  /** Several gateways that share nothing, each with its share of the apps' loops. */
  gateways?: number;
}

export interface LabRun {
  ok: number;
  throttled: number;
  failed: number;
  okByOp: Map<string, number>;
  throttledByOp: Map<string, number>;
  okBySecond: number[];
  okByOpSecond: Map<string, number[]>;
  throttledBySecond: number[];
  /** Per app: useful calls and SDK latencies (ms). */
  apps: Map<string, { ok: number; failed: number; latencies: number[] }>;
  gateways: LabGateway[];
}

/** Runs a scenario through the gateway (or straight to CDF when `direct`), `seed` for every choice. */
export async function runLab(s: LabScenario, opts: { direct?: boolean; seed?: number } = {}): Promise<LabRun> {
  const clock = new ManualClock();
  const random = seeded(opts.seed ?? 1);
  const cdf = new LabCdf(clock, s.cdf, random);
  const n = s.gateways ?? 1;
  const gateways = opts.direct
    ? []
    : Array.from({ length: n }, () => new LabGateway(clock, cdf, { ...(s.gateway as object) }, random));
  const stopAt = s.seconds * 1000;
  let failed = 0;
  const apps = new Map<string, { ok: number; failed: number; latencies: number[] }>();
  for (const app of s.apps) {
    const stats = { ok: 0, failed: 0, latencies: [] as number[] };
    apps.set(app.name, stats);
    for (let i = 0; i < app.loops; i++) {
      const identity = `${app.name}-${(i % (app.identities ?? 1)) + 1}`;
      const ref: AppRef = {
        id: app.name,
        identity,
        weight: app.weight ?? 1,
        priority: app.priority ?? 0,
        label: app.name,
      };
      const g = gateways.length > 0 ? gateways[i % gateways.length] : null;
      const loop = async () => {
        while (clock.now() < stopAt) {
          const { method, rest } = app.next(random);
          const t0 = clock.now();
          let status = 429;
          for (let tries = 0; ; tries++) {
            status = g
              ? await g.call(method, rest, 'lab', identity, ref)
              : (await cdf.call(method, rest, 'lab', identity, opOf(method, rest))).status;
            if (status !== 429 || tries >= 5) break;
            await new Promise<void>((r) => clock.setTimeout(r, random() * Math.min(15_000, 250 * 2 ** tries)));
          }
          if (status === 429) {
            stats.failed++;
            failed++;
            await new Promise<void>((r) => clock.setTimeout(r, 100));
          } else {
            stats.ok++;
            stats.latencies.push(clock.now() - t0);
          }
        }
      };
      clock.setTimeout(() => void loop(), random() * 50);
    }
  }
  for (let sec = 0; sec < s.seconds; sec++)
    clock.setTimeout(
      () => {
        for (const g of gateways) g.sample(s.follow ?? []);
      },
      sec * 1000 + 999,
    );
  await clock.runUntil(stopAt);
  const out: LabRun = {
    ok: cdf.okCount,
    throttled: cdf.throttledCount,
    failed,
    okByOp: cdf.ok,
    throttledByOp: cdf.throttled,
    okBySecond: cdf.okBySecond,
    okByOpSecond: cdf.okByOpSecond,
    throttledBySecond: cdf.throttledBySecond,
    apps,
    gateways,
  };
  for (const g of gateways) g.close();
  return out;
}

/** Useful calls per second at CDF from `from` to `to` (seconds), in all or for one operation. */
export function okPerSecond(run: LabRun, from: number, to: number, op?: string): number {
  const bySecond = op === undefined ? run.okBySecond : (run.okByOpSecond.get(op) ?? []);
  let n = 0;
  for (let s = from; s < to; s++) n += bySecond[s] ?? 0;
  return n / (to - from);
}
