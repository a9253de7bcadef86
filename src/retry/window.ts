/**
 * Counters over a sliding window kept as a ring of slices, advanced lazily on use: no timers.
 */
export class SlidingCounter {
  private readonly slices: Float64Array;
  private readonly sliceMs: number;
  private slice = 0;
  private sliceStart = 0;

  constructor(
    windowMs: number,
    private readonly width: number,
    slices = 10,
  ) {
    this.sliceMs = windowMs / slices;
    this.slices = new Float64Array(slices * width);
  }

  add(column: number, now: number, amount = 1): void {
    this.advance(now);
    this.slices[this.slice * this.width + column] += amount;
  }

  sum(column: number, now: number): number {
    this.advance(now);
    let total = 0;
    for (let i = column; i < this.slices.length; i += this.width) total += this.slices[i];
    return total;
  }

  /** Forgets every count: the window starts afresh at `now`. */
  reset(now: number): void {
    this.slices.fill(0);
    this.slice = 0;
    this.sliceStart = now;
  }

  private advance(now: number): void {
    const n = this.slices.length / this.width;
    let steps = Math.floor((now - this.sliceStart) / this.sliceMs);
    if (steps <= 0) return;
    if (steps > n) steps = n;
    for (let s = 0; s < steps; s++) {
      this.slice = (this.slice + 1) % n;
      this.slices.fill(0, this.slice * this.width, this.slice * this.width + this.width);
    }
    this.sliceStart = now - ((now - this.sliceStart) % this.sliceMs);
  }
}
