/**
 * The one budget of request bodies held in memory for retries (`retry.maxBufferedBytes`): a body is
 * buffered only when its bytes fit, else it streams (and is not retried). Its one owner changes it: bytes
 * are taken as a body is read and given back once, when the request is done.
 */
export class BufferBudget {
  used = 0;
  peak = 0;

  constructor(readonly limit: number) {}

  tryTake(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
    if (this.used < 0) this.used = 0;
  }
}
