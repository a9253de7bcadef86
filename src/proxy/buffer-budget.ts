import { performance } from 'node:perf_hooks';

/**
 * How long spare upload buffers outlive the last upload that took one, once nothing is in flight. Dropping
 * them at once made every burst allocate its buffers again while the last burst's still waited for a
 * mark-compact: peak RSS of 4 MiB uploads at 64 connections went from about 400 to 524 MiB.
 */
export const SPARE_KEEP_MS = 30_000;

/** Smallest buffer kept for a large write (TeeBody is taken from 64 KiB on: src/proxy/pipeline.ts). */
const MIN_UPLOAD_CAPACITY = 64 * 1024;

/**
 * The capacity of the buffer that keeps a large write of `length` bytes: `length` rounded up to a quarter of
 * its power of two (at most 25 % more), so that uploads of similar sizes share buffers.
 */
export function uploadCapacity(length: number): number {
  const n = Math.max(length, MIN_UPLOAD_CAPACITY);
  const step = 2 ** (Math.floor(Math.log2(n)) - 2);
  return Math.ceil(n / step) * step;
}

/**
 * The one budget of request bodies held in memory for retries (`retry.maxBufferedBytes`): a body is
 * buffered only when its bytes fit, else it streams (and is not retried). Its one owner changes it: bytes
 * are taken as a body is read and given back once, when the request is done.
 *
 * It also keeps the buffers of large writes (TeeBody) that came back whole, for the next upload of that
 * capacity, while the apps keep uploading: a buffer allocated per upload and held for the whole call lived
 * long enough to reach V8's old generation, so only mark-compacts freed it, one every 64 MiB of uploads
 * (docs/design.md, "Uploads"). Spare buffers count against the budget too, and are dropped first when a body
 * needs the room, and all at once SPARE_KEEP_MS after the last upload that took one, when nothing is in
 * flight by then (an idle sidecar keeps none).
 */
export class BufferBudget {
  used = 0;
  peak = 0;
  /** Spare upload buffers by capacity. */
  private readonly spare = new Map<number, Buffer[]>();
  private spareBytes = 0;
  private lastTakenAt = Number.NEGATIVE_INFINITY;
  private dropTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly limit: number,
    private readonly clock: { now(): number } = performance,
    private readonly later: (run: () => void, ms: number) => ReturnType<typeof setTimeout> = setTimeout,
    private readonly cancel: (timer: ReturnType<typeof setTimeout>) => void = clearTimeout,
  ) {}

  tryTake(bytes: number): boolean {
    if (this.used + this.spareBytes + bytes > this.limit)
      this.dropSpare(this.used + this.spareBytes + bytes - this.limit);
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
    return true;
  }

  /**
   * A buffer to keep a large write of `length` bytes in, its capacity taken from the budget (given back with
   * give()); a spare one when there is one of that capacity. null when it does not fit.
   */
  takeUploadBuffer(length: number): Buffer | null {
    const capacity = uploadCapacity(length);
    this.lastTakenAt = this.clock.now();
    const reused = this.spare.get(capacity)?.pop();
    if (reused !== undefined) {
      this.spareBytes -= capacity;
      this.used += capacity;
      if (this.used > this.peak) this.peak = this.used;
      return reused;
    }
    return this.tryTake(capacity) ? Buffer.allocUnsafeSlow(capacity) : null;
  }

  /**
   * Gives back `bytes` a request held; `reusable` is its upload buffer when nothing else can still read it
   * (src/proxy/body.ts TeeBody.release), kept for the next upload while it fits the budget.
   */
  give(bytes: number, reusable: Buffer | null = null): void {
    this.used -= bytes;
    if (this.used < 0) this.used = 0;
    if (reusable === null || this.used + this.spareBytes + reusable.length > this.limit) return;
    const list = this.spare.get(reusable.length);
    if (list === undefined) this.spare.set(reusable.length, [reusable]);
    else list.push(reusable);
    this.spareBytes += reusable.length;
  }

  /** Bytes of spare upload buffers. */
  get spareUploadBytes(): number {
    return this.spareBytes;
  }

  /**
   * Nothing is in flight (the idle watchdog's last sweep): the spare buffers are dropped SPARE_KEEP_MS after
   * the last upload that took one, unless the gateway is busy again by then (the next quiet moment decides).
   */
  quiet(): void {
    if (this.spareBytes === 0 || this.dropTimer !== null) return;
    const armedAt = this.clock.now();
    const wait = Math.max(1, this.lastTakenAt + SPARE_KEEP_MS - armedAt);
    this.dropTimer = this.later(() => {
      this.dropTimer = null;
      if (this.lastTakenAt <= armedAt && this.used === 0) this.dropSpare();
    }, wait);
    this.dropTimer.unref();
  }

  /** The gateway closes: spare buffers go now, and the timer with them. */
  close(): void {
    if (this.dropTimer !== null) this.cancel(this.dropTimer);
    this.dropTimer = null;
    this.dropSpare();
  }

  /** Drops spare upload buffers, at least `bytes` of them (all by default), to the garbage collector. */
  dropSpare(bytes = Number.POSITIVE_INFINITY): void {
    for (const [capacity, list] of this.spare) {
      while (list.length > 0 && bytes > 0) {
        list.pop();
        this.spareBytes -= capacity;
        bytes -= capacity;
      }
      if (list.length === 0) this.spare.delete(capacity);
      if (bytes <= 0) return;
    }
  }
}
