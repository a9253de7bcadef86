import { createHash } from 'node:crypto';

// Decoding a JWT per call would cost more than the rest of the request; tokens repeat, so remember them.
const cache = new Map<string, string>();
const MAX_CACHED = 10_000;

/** The caller's identity from `Authorization: Bearer <token>`: a JWT's oid (or sub) claim, else the token itself. */
export function identityOf(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.length < 8) return undefined;
  if (authorization.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const token = authorization.slice(7).trim();
  if (token === '') return undefined;
  let id = cache.get(token);
  if (id === undefined) {
    id = claimOf(token) ?? token;
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(token, id);
  }
  return id;
}

function claimOf(token: string): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (typeof payload !== 'object' || payload === null) return undefined;
    const { sub, oid } = payload as { sub?: unknown; oid?: unknown };
    // oid first, like the gateway: Entra ID's sub differs per client app for the same principal.
    if (typeof oid === 'string' && oid !== '') return oid;
    if (typeof sub === 'string' && sub !== '') return sub;
  } catch {
    // Not a JWT after all: the raw token is the identity.
  }
  return undefined;
}

const keys = new Map<string, string>();

/** The key of an identity's budgets: a hash, so no raw token sits in the throttle's maps. */
export function budgetKeyOf(identity: string): string {
  let key = keys.get(identity);
  if (key === undefined) {
    key = createHash('sha256').update(identity).digest('base64url').slice(0, 22);
    if (keys.size >= MAX_CACHED) keys.clear();
    keys.set(identity, key);
  }
  return key;
}
