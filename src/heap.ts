import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * While large bodies flow, the old generation may grow to this many times its live size before V8 marks it
 * again (V8 picks 1.1x to 4x by itself, from how fast its last collections ran).
 *
 * Why: every byte read from CDF arrives in a new ArrayBuffer whose bytes V8 counts against the old
 * generation's limit until a scavenge frees them, and V8's own factor for a heap this small leaves too little
 * room for them, so a large answer can put the process into a full mark-compact every few tens of ms for as
 * long as it streams (bench/RESULTS.md, "Moved from the code's comments"). A proxy's old generation is mostly
 * its code and tables, so the garbage this lets pile up is tens of MiB, not hundreds.
 */
export const HEAP_GROWING_FACTOR = 4;

/** Bytes a second the apps' sockets move past which the larger factor is worth its cost. */
export const RAISE_AT_BYTES_PER_SECOND = 64 * 2 ** 20;
/** How long the traffic must stay under it before V8's own factor comes back. */
export const LOWER_AFTER_MS = 10_000;

/**
 * Quiet this long (nothing in flight), the heap is collected and its spare pages go back to the system: V8
 * shrinks the young generation at a collection only once its allocation rate over the last 5 s is low.
 */
export const RELEASE_AFTER_MS = 8_000;
/** At most one such collection in this long, so sparse traffic (a call every few seconds) costs nothing ... */
export const RELEASE_EVERY_MS = 60_000;
/**
 * ... unless the heap grew to this many times its size after the last one (a burst of callers, say), and at
 * most once in RELEASE_EVERY_MS too: traffic that comes back every few seconds grows the heap that much each
 * time, and would otherwise have it collected after every burst.
 */
export const GREW = 1.5;

/**
 * A full collection, with V8's `gc` taken from a fresh context once `--expose-gc` is set (the global object
 * of the gateway's own context gets nothing). Two in a row: V8 samples the allocation rate at collections, and
 * the second one's sample (nothing allocated since the first) is what lets it shrink the young generation.
 * Null where V8 refuses.
 */
export function fullCollection(): (() => void) | null {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc !== 'function') return null;
    // No options: on node 20's V8, gc({ type: 'major', execution: 'sync' }) leaves most old-space garbage
    // where it is, while a plain gc() is a full synchronous collection (test/heap.test.ts).
    return () => {
      gc();
      gc();
    };
  } catch {
    return null;
  }
}

export interface HeapPolicyTimers {
  now(): number;
  later(run: () => void, ms: number): ReturnType<typeof setTimeout>;
  cancel(timer: ReturnType<typeof setTimeout>): void;
  /** The heap's size now (V8's committed bytes). */
  heapBytes(): number;
}

const realTimers: HeapPolicyTimers = {
  now: () => performance.now(),
  later: setTimeout,
  cancel: clearTimeout,
  heapBytes: () => getHeapStatistics().total_heap_size,
};

/**
 * Follows the traffic: the larger factor while large bodies flow, V8's own otherwise, because the larger
 * factor makes small calls cost more CPU (the old generation holds more garbage between collections). The
 * idle watchdog's sweep (once a second while anything is in flight) reports the bytes the apps' sockets moved
 * (node's own counters, read when a request starts and ends and at sweeps); nothing runs per chunk.
 */
export class HeapPolicy {
  private raised = false;
  private lastHighAt = Number.NEGATIVE_INFINITY;
  private lastObservedAt = Number.NEGATIVE_INFINITY;
  private quietSince = Number.NEGATIVE_INFINITY;
  private lastReleaseAt = Number.NEGATIVE_INFINITY;
  /** The last release that came before RELEASE_EVERY_MS because the heap grew. */
  private lastEarlyAt = Number.NEGATIVE_INFINITY;
  /** The heap's size right after the last release. */
  private releasedBytes = Number.POSITIVE_INFINITY;
  private releaseTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  /** Times the factor changed, for tests and the log. */
  changes = 0;

  constructor(
    private readonly setFlags: (flags: string) => void = setFlagsFromString,
    /** A full collection (fullCollection()); null: the idle release is off. */
    private readonly collect: (() => void) | null = null,
    private readonly timers: HeapPolicyTimers = realTimers,
  ) {}

  get factorRaised(): boolean {
    return this.raised;
  }

  /** The apps' sockets moved `bytesPerSecond` over the last sweep, at `now`. */
  observe(bytesPerSecond: number, now: number): void {
    this.lastObservedAt = now;
    if (bytesPerSecond >= RAISE_AT_BYTES_PER_SECOND) {
      this.lastHighAt = now;
      if (!this.raised) this.set(true);
    } else if (this.raised && now - this.lastHighAt >= LOWER_AFTER_MS) {
      this.set(false);
    }
  }

  /**
   * Nothing is in flight any more (the watchdog's sweeps stopped), at `now`. An idle sidecar gives back what
   * traffic grew, which V8 by itself does late or not at all: RELEASE_AFTER_MS into the quiet, full
   * collections, and V8's own growing factor back. One timer per quiet stretch, none per request.
   */
  quiet(now: number): void {
    this.quietSince = now;
    if (this.collect === null || this.releaseTimer !== null || this.closed) return;
    this.arm(this.releaseAt() - now);
  }

  /**
   * When the current quiet stretch may be released: soon, unless one was lately and the heap did not grow
   * (or an early one was lately too).
   */
  private releaseAt(): number {
    const early =
      this.quietSince - this.lastEarlyAt >= RELEASE_EVERY_MS && this.timers.heapBytes() >= this.releasedBytes * GREW;
    return Math.max(this.quietSince + RELEASE_AFTER_MS, early ? 0 : this.lastReleaseAt + RELEASE_EVERY_MS);
  }

  /** The gateway closes: no release after it. */
  close(): void {
    this.closed = true;
    if (this.releaseTimer !== null) this.timers.cancel(this.releaseTimer);
    this.releaseTimer = null;
  }

  private arm(ms: number): void {
    this.releaseTimer = this.timers.later(() => this.release(), ms);
    this.releaseTimer.unref?.();
  }

  private release(): void {
    this.releaseTimer = null;
    // Traffic came back after the quiet began: its own end arms the next release.
    if (this.lastObservedAt > this.quietSince || this.closed) return;
    const now = this.timers.now();
    const wait = this.releaseAt() - now;
    if (wait > 0) {
      this.arm(wait);
      return;
    }
    if (this.raised) this.set(false);
    if (now < this.lastReleaseAt + RELEASE_EVERY_MS) this.lastEarlyAt = now;
    this.lastReleaseAt = now;
    this.collect?.();
    this.releasedBytes = this.timers.heapBytes();
  }

  private set(raised: boolean): void {
    this.raised = raised;
    this.changes++;
    // Read by V8 each time it sets a new limit after a mark-compact; 0 gives the choice back to V8.
    this.setFlags(`--heap-growing-percent=${raised ? (HEAP_GROWING_FACTOR - 1) * 100 : 0}`);
  }
}

/**
 * The CLI's heap policy, or null when the operator set `--heap-growing-percent` on node's command line (theirs
 * wins). A program that embeds the gateway (buildGateway) keeps its own process's settings unless it asks.
 */
export function cliHeapPolicy(execArgv: readonly string[] = process.execArgv): HeapPolicy | null {
  if (execArgv.some((arg) => arg.startsWith('--heap-growing-percent') || arg.startsWith('--heap_growing_percent')))
    return null;
  return new HeapPolicy(setFlagsFromString, fullCollection());
}
