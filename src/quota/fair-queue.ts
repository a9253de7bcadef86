/**
 * Waiting requests of one bucket, served fairly: strict priority between levels (higher first); within a
 * level, deficit round robin between identities, and within an identity, deficit round robin between its
 * apps, each with its weight as its quantum. Every request costs one. Fairness is decided by who calls
 * (the identity) before what it calls itself (the app name), so an identity that sends a new app name on
 * every call still gets one identity's share.
 */

/** The app a request is counted for, with its share of the queue. */
export interface AppRef {
  /** The app's name as the gateway tells apps apart (configured name, app header, identity or address). */
  readonly id: string;
  /** Who calls (see cdf/identity.ts): the outer level of fair queueing. */
  readonly identity: string;
  readonly weight: number;
  readonly priority: number;
  /** The metrics label: a configured name, an app name, or `other`; never a claim or a hash. */
  readonly label: string;
}

interface AppQueue<T> {
  readonly app: string;
  readonly weight: number;
  readonly owner: IdentityQueue<T>;
  items: T[];
  head: number;
  deficit: number;
}

interface IdentityQueue<T> {
  readonly identity: string;
  readonly level: Level<T>;
  /** The largest weight among its apps: more app names never add to an identity's share. */
  weight: number;
  deficit: number;
  ring: AppQueue<T>[];
  turn: number;
  apps: Map<string, AppQueue<T>>;
}

interface Level<T> {
  readonly priority: number;
  ring: IdentityQueue<T>[];
  turn: number;
  identities: Map<string, IdentityQueue<T>>;
}

export interface Queued {
  /** Set when the item left the queue by other means (timeout, disconnect); skipped lazily. */
  cancelled: boolean;
}

const GONE = undefined as unknown;

export class FairQueue<T extends Queued> {
  private levels: Level<T>[] = [];
  /** Live (not cancelled) items. */
  size = 0;

  /** Queues an item for its app; `front` puts it first in line for that app (it already waited elsewhere). */
  push(app: AppRef, item: T, front = false): void {
    let level = this.levels.find((l) => l.priority === app.priority);
    if (!level) {
      level = { priority: app.priority, ring: [], turn: 0, identities: new Map() };
      this.levels.push(level);
      this.levels.sort((a, b) => b.priority - a.priority);
    }
    let iq = level.identities.get(app.identity);
    if (!iq) {
      iq = { identity: app.identity, level, weight: app.weight, deficit: 0, ring: [], turn: 0, apps: new Map() };
      level.identities.set(app.identity, iq);
      level.ring.push(iq);
    } else if (app.weight > iq.weight) iq.weight = app.weight;
    let q = iq.apps.get(app.id);
    if (!q) {
      q = { app: app.id, weight: app.weight, owner: iq, items: [], head: 0, deficit: 0 };
      iq.apps.set(app.id, q);
      iq.ring.push(q);
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

  /** Removes the item peek() returned and charges its app's and its identity's turn. */
  shift(): T | undefined {
    const q = this.current();
    if (!q) return undefined;
    const item = q.items[q.head];
    q.items[q.head++] = GONE as T;
    this.size--;
    const iq = q.owner;
    q.deficit -= 1;
    iq.deficit -= 1;
    // A turn that is over passes to the next app of the identity, and the next identity of the level.
    if (q.deficit < 1) iq.turn++;
    if (iq.deficit < 1) iq.level.turn++;
    if (q.head > 1024 && q.head * 2 > q.items.length) {
      q.items = q.items.slice(q.head);
      q.head = 0;
    }
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
      for (const iq of level.ring) {
        for (const q of iq.ring) {
          for (let i = q.head; i < q.items.length; i++) if (!q.items[i].cancelled) yield q.items[i];
        }
      }
    }
  }

  /** Apps with waiting requests and how many each has. */
  waitingByApp(): Map<string, number> {
    const out = new Map<string, number>();
    for (const level of this.levels) {
      for (const iq of level.ring) {
        for (const q of iq.ring) {
          let n = 0;
          for (let i = q.head; i < q.items.length; i++) if (!q.items[i].cancelled) n++;
          if (n > 0) out.set(q.app, (out.get(q.app) ?? 0) + n);
        }
      }
    }
    return out;
  }

  /** Identities with waiting requests. */
  identityCount(): number {
    let n = 0;
    for (const level of this.levels) n += level.ring.length;
    return n;
  }

  private current(): AppQueue<T> | undefined {
    for (const level of this.levels) {
      // Each pass returns, removes an empty identity, or adds a weight to a deficit, so it ends.
      while (level.ring.length > 0) {
        if (level.turn >= level.ring.length) level.turn = 0;
        const iq = level.ring[level.turn];
        const q = this.currentApp(iq);
        if (!q) {
          level.ring.splice(level.turn, 1);
          level.identities.delete(iq.identity);
          continue;
        }
        if (iq.deficit >= 1) return q;
        iq.deficit += iq.weight;
        if (iq.deficit >= 1) return q;
        level.turn++;
      }
    }
    return undefined;
  }

  /** The app of an identity whose turn it is; undefined when the identity has nothing live left. */
  private currentApp(iq: IdentityQueue<T>): AppQueue<T> | undefined {
    while (iq.ring.length > 0) {
      if (iq.turn >= iq.ring.length) iq.turn = 0;
      const q = iq.ring[iq.turn];
      while (q.head < q.items.length && q.items[q.head].cancelled) q.items[q.head++] = GONE as T;
      if (q.head >= q.items.length) {
        iq.ring.splice(iq.turn, 1);
        iq.apps.delete(q.app);
        continue;
      }
      if (q.deficit >= 1) return q;
      q.deficit += q.weight;
      if (q.deficit >= 1) return q;
      iq.turn++;
    }
    return undefined;
  }
}
