import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { GatewayErrors } from '../errors.js';
import { SlotList, type Slotted } from '../slot-list.js';
import { sendError } from './answer.js';
import type { Exchange } from './exchange.js';

/** Less than this many bytes moved between two sweeps is no progress: a trickle must not hold a slot. */
const MIN_PROGRESS_BYTES = 1024;

/** A request the watchdog follows; add() hands it out and delete() takes it back. */
export interface Watched extends Slotted {
  readonly ex: Exchange;
  /** Socket byte count (written for answers, read for bodies) at the last sweep. */
  bytes: number;
  /** When it last moved at least MIN_PROGRESS_BYTES. */
  movedAt: number;
  /** Bytes read and written on its socket, as last counted into the throughput. */
  counted: number;
}

/** Bytes in and out on a request's socket so far (two counters node keeps anyway). */
function socketBytes(ex: Exchange): number {
  const socket = ex.req.socket as Socket | null;
  return socket === null ? 0 : socket.bytesRead + socket.bytesWritten;
}

/**
 * Ends requests whose app stopped: an answer the app no longer reads, or a body it no longer sends, for
 * `idleMs`. No timer per request and no work per chunk: one sweep, running only while anything is in
 * flight (started by the first, stopped when none is left, unref'd), compares each socket's byte count
 * with the previous sweep's (`bytesWritten` counts what the socket buffered too, so it stops when pipe()
 * backpressure stops). Ending the socket runs the request's record stage, which frees its slot.
 */
export class IdleWatchdog {
  /** Not a Map: one keyed by request grew a chain of V8 tables that kept done requests alive (slot-list.ts). */
  private readonly inFlight = new SlotList<Watched>();
  private timer: NodeJS.Timeout | null = null;
  readonly sweepMs: number;
  private readonly endAfterMs: number;
  /** Requests ended for not making progress, for tests and metrics. */
  ended = 0;
  /** Told, after each sweep, the bytes a second the apps' sockets moved since the last one (src/heap.ts). */
  onThroughput: ((bytesPerSecond: number, now: number) => void) | null = null;
  /** Told when a sweep finds nothing in flight and the sweeps stop (spare upload buffers go some time later). */
  onQuiet: (() => void) | null = null;
  private lastSweepAt = -1;
  /** Bytes the apps' sockets moved since the last sweep (requests done, and progress of those in flight). */
  private moved = 0;

  constructor(
    readonly idleMs: number,
    private readonly onStalled: (ex: Exchange, what: 'response' | 'body') => void = () => {},
  ) {
    this.sweepMs = Math.max(5, Math.min(1000, Math.floor(idleMs / 8)));
    // Progress is seen at sweeps, up to one sweep after it happened, and the end comes at a sweep: ending
    // two sweeps early keeps the time from the last byte to the end within idleMs (and above 3/4 of it).
    this.endAfterMs = Math.max(1, idleMs - 2 * this.sweepMs);
  }

  get size(): number {
    return this.inFlight.size;
  }

  add(ex: Exchange, now = performance.now()): Watched {
    const w: Watched = {
      ex,
      slot: -1,
      bytes: -1,
      movedAt: now,
      counted: this.onThroughput === null ? 0 : socketBytes(ex),
    };
    this.inFlight.add(w);
    if (this.timer === null) {
      this.timer = setInterval(() => this.sweep(), this.sweepMs);
      this.timer.unref();
    }
    return w;
  }

  delete(w: Watched): void {
    // The sweep stops itself once it finds nothing in flight: stopping here, at every moment nothing is,
    // re-armed the interval per request under load, so that it rarely ran at all.
    if (this.inFlight.delete(w) && this.onThroughput !== null) this.moved += socketBytes(w.ex) - w.counted;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  sweep(now = performance.now()): void {
    const counting = this.onThroughput !== null;
    this.inFlight.forEach((w) => {
      const ex = w.ex;
      if (counting) {
        const total = socketBytes(ex);
        this.moved += total - w.counted;
        w.counted = total;
      }
      const res = ex.res;
      const socket = res.socket as Socket | null;
      const answering = res.headersSent && !res.writableFinished;
      const receiving = ex.uploading && !ex.req.complete;
      if (socket === null || socket.destroyed || (!answering && !receiving)) {
        // Waiting for quota or for CDF (bounded by their own deadlines): not the app's doing.
        w.bytes = -1;
        w.movedAt = now;
        return;
      }
      const bytes = answering ? socket.bytesWritten : socket.bytesRead;
      if (w.bytes === -1 || bytes - w.bytes >= MIN_PROGRESS_BYTES) {
        w.bytes = bytes;
        w.movedAt = now;
        return;
      }
      if (now - w.movedAt < this.endAfterMs) return;
      this.inFlight.delete(w);
      this.ended++;
      this.end(ex, socket, answering ? 'response' : 'body');
    });
    if (this.onThroughput !== null && this.lastSweepAt >= 0 && now > this.lastSweepAt)
      this.onThroughput((this.moved * 1000) / (now - this.lastSweepAt), now);
    this.moved = 0;
    this.lastSweepAt = now;
    if (this.inFlight.size === 0) {
      this.stop();
      this.onQuiet?.();
    }
  }

  private end(ex: Exchange, socket: Socket, what: 'response' | 'body'): void {
    const seconds = Math.round(this.idleMs / 100) / 10;
    if (what === 'response') {
      ex.errorCode = GatewayErrors.RESPONSE_STALLED.code;
      ex.error = GatewayErrors.RESPONSE_STALLED.format(seconds);
    } else {
      // The upstream call is still reading this body: abort it, so its slot comes back now.
      ex.abort.abort();
      const stalled = new GatewayErrors.BODY_STALLED(seconds);
      ex.errorCode = stalled.code;
      ex.error = stalled.message;
      if (!ex.res.headersSent) {
        // Best effort: the app may still read a 408 before the connection goes.
        sendError(ex, stalled);
        this.onStalled(ex, what);
        // One turn for the 408 to reach the socket; the connection goes either way.
        setImmediate(() => socket.destroy());
        return;
      }
    }
    this.onStalled(ex, what);
    socket.destroy();
  }
}
