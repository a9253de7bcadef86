import { setFlagsFromString } from 'node:v8';

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
  /** Times the factor changed, for tests and the log. */
  changes = 0;

  constructor(private readonly setFlags: (flags: string) => void = setFlagsFromString) {}

  get factorRaised(): boolean {
    return this.raised;
  }

  /** The apps' sockets moved `bytesPerSecond` over the last sweep, at `now`. */
  observe(bytesPerSecond: number, now: number): void {
    if (bytesPerSecond >= RAISE_AT_BYTES_PER_SECOND) {
      this.lastHighAt = now;
      if (!this.raised) this.set(true);
    } else if (this.raised && now - this.lastHighAt >= LOWER_AFTER_MS) {
      this.set(false);
    }
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
  return new HeapPolicy();
}
