import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * While large bodies flow, the old generation may grow to this many times its live size before V8 marks it
 * again (V8 picks 1.1x to 4x by itself, from how fast its last collections ran).
 *
 * Why: every byte read from CDF arrives in a new ArrayBuffer, and V8 counts the external bytes allocated since
 * the last mark-compact against the old generation's limit. A young-generation collection frees those buffers
 * only once about 32 MiB of them have piled up, so the limit must leave that much room above the live heap
 * (~13 MiB here) plus the new space. V8's own factor for a heap this small leaves ~25 MiB: a large answer
 * reaches the limit first, and the process falls into a full mark-compact every ~40 ms while it streams (13-16 %
 * of its CPU, a state it does not leave under load) or stays in cheap scavenges, depending on where its first
 * collection under load happens to land. GET 1 MiB answers at 8 connections, 4 fresh processes each
 * (`node bench/gc-mode.mjs gateway 4`): V8's default put 3 of 4 in 60-80 mark-compacts per 5 s at 1.7-3.0 ms
 * CPU per MiB; a factor of 3 left 7-14; a factor of 4 left 1 in every process, at 1.1-1.4 ms per MiB (the bare
 * proxy, on V8's default: 30-77, 1.6-2.1 ms). The old generation of a proxy is mostly its code and tables, so
 * the garbage this lets pile up between collections is tens of MiB, not hundreds.
 */
export const HEAP_GROWING_FACTOR = 4;

/** Bytes a second the apps' sockets move past which the larger factor is worth its cost. */
export const RAISE_AT_BYTES_PER_SECOND = 64 * 2 ** 20;
/** How long the traffic must stay under it before V8's own factor comes back. */
export const LOWER_AFTER_MS = 10_000;

/**
 * Quiet this long (nothing in flight), the heap is collected and its spare pages go back to the system. V8
 * shrinks the young generation at a collection only once its allocation rate over the last 5 s is low: at 3 s
 * into the quiet nothing shrank, at 7-11 s it did.
 */
export const RELEASE_AFTER_MS = 8_000;
/** At most one such collection in this long, so sparse traffic (a call every few seconds) costs nothing. */
export const RELEASE_EVERY_MS = 60_000;

/**
 * A full collection, with V8's `gc` taken from a fresh context once `--expose-gc` is set (the global object
 * of the gateway's own context gets nothing). Two in a row: V8 samples the allocation rate at collections, and
 * the second one's sample (nothing allocated since the first) is what lets it shrink the young generation
 * (one alone at 7 s into the quiet left 2 x 16 MiB; two gave it back). Null where V8 refuses.
 */
export function fullCollection(): (() => void) | null {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc !== 'function') return null;
    return () => {
      gc({ type: 'major', execution: 'sync' });
      gc({ type: 'major', execution: 'sync' });
    };
  } catch {
    return null;
  }
}

export interface HeapPolicyTimers {
  now(): number;
  later(run: () => void, ms: number): ReturnType<typeof setTimeout>;
  cancel(timer: ReturnType<typeof setTimeout>): void;
}

const realTimers: HeapPolicyTimers = { now: () => performance.now(), later: setTimeout, cancel: clearTimeout };

/**
 * Follows the traffic: the larger factor while large bodies flow, V8's own otherwise. The larger factor
 * costs small calls: on ~1 KB calls at 50 connections a factor of 4 cost 8 % more CPU per call than V8's own
 * (2: 4 %, 3: 6 %; `--heap-growing-percent` on node's command line, 4-5 interleaved rounds), because the old
 * generation then holds more garbage between collections. The idle watchdog's sweep (once a second while
 * anything is in flight) reports the bytes the apps' sockets moved (node's own counters, read when a request
 * starts and ends and at sweeps); nothing runs per chunk.
 */
export class HeapPolicy {
  private raised = false;
  private lastHighAt = Number.NEGATIVE_INFINITY;
  private lastObservedAt = Number.NEGATIVE_INFINITY;
  private quietSince = Number.NEGATIVE_INFINITY;
  private lastReleaseAt = Number.NEGATIVE_INFINITY;
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
   * traffic grew: V8 does so by itself only once its memory reducer runs, 10-20 s into a quiet stretch, and
   * sometimes not within 30 s (about 1 idle process in 5 sat at 88-104 MiB instead of 65-77; one kept a young
   * generation of 2 x 16 MiB). So, RELEASE_AFTER_MS into the quiet, full collections (a few ms on a heap of
   * ~15 MiB), and V8's own growing factor back. One timer per quiet stretch, none per request.
   */
  quiet(now: number): void {
    this.quietSince = now;
    if (this.collect === null || this.releaseTimer !== null || this.closed) return;
    const at = Math.max(now + RELEASE_AFTER_MS, this.lastReleaseAt + RELEASE_EVERY_MS);
    this.arm(at - now);
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
    const wait = Math.max(this.quietSince + RELEASE_AFTER_MS, this.lastReleaseAt + RELEASE_EVERY_MS) - now;
    if (wait > 0) {
      this.arm(wait);
      return;
    }
    if (this.raised) this.set(false);
    this.lastReleaseAt = now;
    this.collect?.();
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
