import type { Caller } from '../cdf/index.js';
import type { ClientConfig } from '../config/index.js';
import type { AppRef } from './fair-queue.js';

const MAX_REMEMBERED = 10_000;
const MAX_NAME = 200;
/** The metrics label of apps the gateway cannot name honestly (no app header, or a name it may not use). */
export const OTHER_APP = 'other';

/**
 * Tells apps apart for fair queueing. The outer level is who calls (the identity: see cdf/identity.ts);
 * within it, the app's name from `x-cdf-gateway-client`, else `x-cdp-app` (every CDF SDK sends one), else
 * the identity itself. Listed clients get their weight and priority; a client that lists `identities`
 * gives them only to those, and anyone else using its name is treated as unlisted (and labelled `other`).
 * With verified identities (identity.jwks) that is enforced; without, it compares the token's unverified
 * claim and only guards against mistakes.
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
    caller: Caller,
    address: string | undefined,
  ): AppRef {
    const identity = caller.key === 'anonymous' ? `addr:${address ?? 'unknown'}` : caller.key;
    const name = first(clientKey) ?? first(cdpApp);
    const memo = `${identity}\n${name ?? ''}\n${caller.principal ?? ''}`;
    let app = this.known.get(memo);
    if (app) return app;
    if (name === undefined) {
      app = { id: identity, identity, weight: 1, priority: 0, label: OTHER_APP };
    } else {
      const c = this.configured.get(name);
      const allowed =
        c !== undefined &&
        (c.identities === null || (caller.principal !== null && c.identities.includes(caller.principal)));
      app = allowed
        ? { id: name, identity, weight: c.weight, priority: c.priority, label: name }
        : { id: name, identity, weight: 1, priority: 0, label: c === undefined ? name : OTHER_APP };
    }
    if (this.known.size >= MAX_REMEMBERED) this.known.clear();
    this.known.set(memo, app);
    return app;
  }
}

function first(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === '' ? undefined : v.length > MAX_NAME ? v.slice(0, MAX_NAME) : v;
}
