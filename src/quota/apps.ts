import type { ClientConfig } from '../config/index.js';
import type { AppRef } from './scheduler.js';

const MAX_REMEMBERED = 10_000;

/**
 * Tells apps apart for fair queueing: the `x-cdf-gateway-client` header, else `x-cdp-app` (every CDF SDK
 * sends one), else the caller's identity, else its address. Listed clients get their weight and priority.
 */
export class AppDirectory {
  private readonly configured = new Map<string, ClientConfig>();
  private readonly known = new Map<string, AppRef>();

  constructor(clients: readonly ClientConfig[]) {
    for (const c of clients) this.configured.set(c.name, c);
  }

  resolve(
    clientKey: string | string[] | undefined,
    cdpApp: string | string[] | undefined,
    identity: () => string | null,
    address: string | undefined,
  ): AppRef {
    const id = first(clientKey) ?? first(cdpApp) ?? identity() ?? address ?? 'unknown';
    let app = this.known.get(id);
    if (!app) {
      const c = this.configured.get(id);
      app = { id, weight: c?.weight ?? 1, priority: c?.priority ?? 0 };
      if (this.known.size >= MAX_REMEMBERED) this.known.clear();
      this.known.set(id, app);
    }
    return app;
  }
}

function first(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === '' ? undefined : v.length > 200 ? v.slice(0, 200) : v;
}
