import { GatewayErrors } from '../errors.js';

/** What waits on an app going away: undici, the quota queue, the cache's single flight. */
export interface AbortLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * Fires once when the app goes away before its answer was sent. A stand-in for AbortController, whose
 * EventTarget per request costs more than a request that almost never aborts should pay. `signal` returns
 * the object itself, so it can be passed wherever a signal is expected (undici accepts any object with
 * addEventListener).
 */
export class ClientGone implements AbortLike {
  aborted = false;
  reason: unknown;
  private listeners: Array<() => void> | null = null;

  get signal(): ClientGone {
    return this;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.listeners === null) this.listeners = [listener];
    else this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i !== -1) this.listeners!.splice(i, 1);
  }

  abort(reason: unknown = new GatewayErrors.CLIENT_GONE()): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = null;
    if (listeners) for (const listener of listeners) listener();
  }
}

/** Resolves after `ms`, or rejects with CLIENT_GONE when the app goes away first. One timer, only on the retry path. */
export function sleepUnlessGone(ms: number, gone: AbortLike): Promise<void> {
  return new Promise((resolve, reject) => {
    if (gone.aborted) {
      reject(new GatewayErrors.CLIENT_GONE());
      return;
    }
    const onGone = () => {
      clearTimeout(timer);
      reject(new GatewayErrors.CLIENT_GONE());
    };
    const timer = setTimeout(() => {
      gone.removeEventListener('abort', onGone);
      resolve();
    }, ms);
    gone.addEventListener('abort', onGone, { once: true });
  });
}
