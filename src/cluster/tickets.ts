import type { Bucket } from '../quota/index.js';
import type { LocalHold } from './degraded.js';

/** One take that succeeded: where its slots are held, so release gives them back there. */
export interface Ticket {
  readonly buckets: readonly Bucket[];
  /** Lease id in Redis, with the lease sets it is in; null when the local share answered. */
  readonly id: string | null;
  readonly leaseKeys: readonly string[];
  readonly local: LocalHold | null;
}

/**
 * The takes this replica holds: by the buckets array they were taken with (the scheduler releases with
 * the same array), and the ones holding leases in Redis by lease id, for renewal and shutdown.
 */
export class TicketBook {
  private readonly byArray = new WeakMap<readonly Bucket[], Ticket[]>();
  /** This replica's leases in Redis. */
  private readonly live = new Map<string, Ticket>();

  add(ticket: Ticket): void {
    if (ticket.id !== null) this.live.set(ticket.id, ticket);
    const list = this.byArray.get(ticket.buckets);
    if (list) list.push(ticket);
    else this.byArray.set(ticket.buckets, [ticket]);
  }

  /** Removes and returns a ticket for these buckets (the oldest taken with this array). */
  take(buckets: readonly Bucket[]): Ticket | undefined {
    const ticket = this.pop(buckets);
    if (ticket?.id != null) this.live.delete(ticket.id);
    return ticket;
  }

  get leaseCount(): number {
    return this.live.size;
  }

  /** The leases in Redis, each once. */
  leases(): IterableIterator<Ticket> {
    return this.live.values();
  }

  /** Forgets every lease in Redis (shutdown, after releasing them). */
  clearLeases(): void {
    this.live.clear();
  }

  /** Lease ids grouped by lease set: what RENEW wants. */
  leasesByKey(): Map<string, string[]> {
    const byKey = new Map<string, string[]>();
    for (const ticket of this.live.values()) {
      for (const key of ticket.leaseKeys) {
        const ids = byKey.get(key);
        if (ids) ids.push(ticket.id!);
        else byKey.set(key, [ticket.id!]);
      }
    }
    return byKey;
  }

  private pop(buckets: readonly Bucket[]): Ticket | undefined {
    const list = this.byArray.get(buckets);
    if (list) {
      const ticket = list.shift();
      if (list.length === 0) this.byArray.delete(buckets);
      return ticket;
    }
    // Released with another array than it was taken with: any of this replica's leases on the same buckets.
    for (const ticket of this.live.values()) {
      if (ticket.buckets.length === buckets.length && ticket.buckets.every((b, i) => b === buckets[i])) {
        const others = this.byArray.get(ticket.buckets);
        if (others) {
          others.splice(others.indexOf(ticket), 1);
          if (others.length === 0) this.byArray.delete(ticket.buckets);
        }
        return ticket;
      }
    }
    return undefined;
  }
}
