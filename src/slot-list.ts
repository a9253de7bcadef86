/** An entry of a SlotList: where it sits in the list, -1 while it is in none. Only the list writes it. */
export interface Slotted {
  slot: number;
}

/**
 * An unordered set of entries that come and go at the request rate (requests in flight, waiters), as an
 * array: each entry knows its index, a removal moves the last entry into its place.
 *
 * Not a Map or a Set, because V8 rebuilds their table every few dozen deletions and each dead table points
 * at its successor: once one has reached the old generation, the chain keeps done requests alive through
 * every scavenge (bench/RESULTS.md, "Moved from the code's comments"). An array's slots are cleared as
 * entries leave, and a dead array points at nothing newer than itself.
 */
export class SlotList<T extends Slotted> {
  private readonly entries: T[] = [];

  get size(): number {
    return this.entries.length;
  }

  add(entry: T): void {
    if (entry.slot !== -1) return;
    entry.slot = this.entries.length;
    this.entries.push(entry);
  }

  /** False when the entry was not in the list. */
  delete(entry: T): boolean {
    const at = entry.slot;
    if (at < 0 || this.entries[at] !== entry) return false;
    const last = this.entries.pop() as T;
    if (last !== entry) {
      this.entries[at] = last;
      last.slot = at;
    }
    entry.slot = -1;
    return true;
  }

  /** Visits every entry; `visit` may delete the entry it is given (and no other). */
  forEach(visit: (entry: T) => void): void {
    // From the end: deleting entry i moves in the last one, which was visited already.
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i];
      if (entry !== undefined) visit(entry);
    }
  }

  /** A copy, for a walk that may delete entries other than the one it visits. */
  toArray(): T[] {
    return this.entries.slice();
  }
}
