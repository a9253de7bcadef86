import { GatewayErrors } from '../errors.js';
import type { AbortLike } from '../proxy/client-gone.js';
import type { Entry } from './store.js';

/**
 * One upstream call that identical requests wait on. It settles with the stored-shaped answer when the
 * leader got a complete 200, or null when it did not (an error status, too large, a broken stream, a
 * thrown error): then each waiter makes its own call. It never rejects.
 */
export class Flight {
  readonly promise: Promise<Entry | null>;
  waiters = 0;
  private settleWith!: (entry: Entry | null) => void;
  private settled = false;

  constructor(
    /** The scope's generation when the call started: requests after a write do not join it. */
    readonly generation: number,
  ) {
    this.promise = new Promise<Entry | null>((resolve) => {
      this.settleWith = resolve;
    });
  }

  settle(entry: Entry | null): void {
    if (this.settled) return;
    this.settled = true;
    this.settleWith(entry);
  }
}

/** Calls in flight by cache key. */
export class Flights {
  private readonly byKey = new Map<string, Flight>();

  get size(): number {
    return this.byKey.size;
  }

  /** The call in flight for `key` that a request may join, if any. */
  joinable(key: string, generation: number): Flight | undefined {
    const flight = this.byKey.get(key);
    return flight !== undefined && flight.generation === generation ? flight : undefined;
  }

  start(key: string, generation: number): Flight {
    const flight = new Flight(generation);
    this.byKey.set(key, flight);
    return flight;
  }

  /** Settles the flight and forgets it (unless a newer flight took the key meanwhile). */
  end(key: string, flight: Flight, entry: Entry | null): void {
    if (this.byKey.get(key) === flight) this.byKey.delete(key);
    flight.settle(entry);
  }

  clear(): void {
    for (const flight of this.byKey.values()) flight.settle(null);
    this.byKey.clear();
  }
}

/**
 * Waits for a flight on behalf of one request. If that request's client goes away, only its wait ends
 * (with a 499, as the forwarder does); the leader and the other waiters carry on.
 */
export function waitFor(flight: Flight, signal: AbortLike): Promise<Entry | null> {
  if (signal.aborted) return Promise.reject(new GatewayErrors.CLIENT_GONE());
  flight.waiters++;
  return new Promise<Entry | null>((resolve, reject) => {
    const onAbort = () => {
      flight.waiters--;
      reject(new GatewayErrors.CLIENT_GONE());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    void flight.promise.then((entry) => {
      if (signal.aborted) return;
      signal.removeEventListener('abort', onAbort);
      flight.waiters--;
      resolve(entry);
    });
  });
}
