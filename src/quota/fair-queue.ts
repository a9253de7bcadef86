/**
 * Waiting requests of one bucket, served fairly between apps: strict priority between levels (higher
 * first), and within a level deficit round robin with the app's weight as its quantum. Every request
 * costs one, so an app of weight 2 gets two turns for every one of an app of weight 1, whatever the
 * number of requests each has queued.
 */
interface AppQueue<T> {
  readonly app: string;
  readonly weight: number;
  items: T[];
  head: number;
  deficit: number;
}

interface Level<T> {
  readonly priority: number;
  ring: AppQueue<T>[];
  turn: number;
  apps: Map<string, AppQueue<T>>;
}

export interface Queued {
  /** Set when the item left the queue by other means (timeout, disconnect); skipped lazily. */
  cancelled: boolean;
}

export class FairQueue<T extends Queued> {
  private levels: Level<T>[] = [];
  /** Live (not cancelled) items. */
  size = 0;

  push(app: string, weight: number, priority: number, item: T, front = false): void {
    let level = this.levels.find((l) => l.priority === priority);
    if (!level) {
      level = { priority, ring: [], turn: 0, apps: new Map() };
      this.levels.push(level);
      this.levels.sort((a, b) => b.priority - a.priority);
    }
    let q = level.apps.get(app);
    if (!q) {
      q = { app, weight, items: [], head: 0, deficit: 0 };
      level.apps.set(app, q);
      level.ring.push(q);
    }
    if (front && q.head > 0) q.items[--q.head] = item;
    else if (front) q.items.unshift(item);
    else q.items.push(item);
    this.size++;
  }

  /** The item whose turn it is, without removing it. */
  peek(): T | undefined {
    const q = this.current();
    return q?.items[q.head];
  }

  /** Removes the item peek() returned and charges its app's turn. */
  shift(): T | undefined {
    const q = this.current();
    if (!q) return undefined;
    const item = q.items[q.head];
    q.items[q.head++] = undefined as unknown as T;
    q.deficit -= 1;
    this.size--;
    this.compact(q);
    return item;
  }

  /** Marks an item gone without searching for it; it is dropped when it reaches the front. */
  cancel(item: T): void {
    if (item.cancelled) return;
    item.cancelled = true;
    this.size--;
  }

  /** Every live item, for sweeping deadlines. */
  *items(): IterableIterator<T> {
    for (const level of this.levels) {
      for (const q of level.ring) {
        for (let i = q.head; i < q.items.length; i++) if (!q.items[i].cancelled) yield q.items[i];
      }
    }
  }

  /** Apps with waiting requests and how many each has. */
  waitingByApp(): Map<string, number> {
    const out = new Map<string, number>();
    for (const item of this.levels) {
      for (const q of item.ring) {
        let n = 0;
        for (let i = q.head; i < q.items.length; i++) if (!q.items[i].cancelled) n++;
        if (n > 0) out.set(q.app, (out.get(q.app) ?? 0) + n);
      }
    }
    return out;
  }

  private current(): AppQueue<T> | undefined {
    for (const level of this.levels) {
      // Each pass either returns, removes an empty app, or adds a weight to a deficit, so it ends.
      while (level.ring.length > 0) {
        if (level.turn >= level.ring.length) level.turn = 0;
        const q = level.ring[level.turn];
        while (q.head < q.items.length && q.items[q.head].cancelled) q.items[q.head++] = undefined as unknown as T;
        if (q.head >= q.items.length) {
          level.ring.splice(level.turn, 1);
          level.apps.delete(q.app);
          continue;
        }
        if (q.deficit >= 1) return q;
        q.deficit += q.weight;
        if (q.deficit >= 1) return q;
        level.turn++;
      }
    }
    return undefined;
  }

  private compact(q: AppQueue<T>): void {
    if (q.deficit < 1) {
      // This app's turn is over: the next app in the ring goes next.
      const level = this.levels.find((l) => l.apps.get(q.app) === q)!;
      level.turn++;
    }
    if (q.head > 1024 && q.head * 2 > q.items.length) {
      q.items = q.items.slice(q.head);
      q.head = 0;
    }
  }
}
