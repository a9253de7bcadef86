import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import { ConfigError, type IdentityConfig } from '../config/index.js';

/** A stable digest of a credential, safe to keep in keys, logs and metrics. */
export function hashCredential(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 22);
}

/** Who calls, as far as the gateway may trust it. */
export interface Caller {
  /** The key of per-identity buckets and of fair queueing: `oid:...` when verified, else `cred:<hash>`. */
  readonly key: string;
  /**
   * The token's principal claim (oid, sub or appid value), to check `clients[].identities`: verified when
   * `verified`, else merely read from the token (a guard against mistakes, not against forgery).
   */
  readonly principal: string | null;
  readonly verified: boolean;
}

export const ANONYMOUS: Caller = Object.freeze({ key: 'anonymous', principal: null, verified: false });

const PRINCIPAL_CLAIMS = ['oid', 'sub', 'appid'] as const;

/**
 * Every header that carries a credential towards CDF, joined: `Authorization`, `api-key` and `Cookie`.
 * null when the request carries none. Answers cached or joined for one credential are served only to it.
 */
export function credentialOf(headers: IncomingHttpHeaders): string | null {
  const authorization = headers.authorization;
  const apiKey = headers['api-key'];
  const cookie = headers.cookie;
  if (!authorization && !apiKey && !cookie) return null;
  if (authorization && !apiKey && !cookie) return authorization;
  const text = (v: string | string[] | undefined) => (v === undefined ? '' : Array.isArray(v) ? v.join('\n') : v);
  return JSON.stringify([text(authorization), text(apiKey), text(cookie)]);
}

function bearerToken(authorization: string | undefined): string | null {
  if (!authorization) return null;
  return /^bearer /i.test(authorization) ? authorization.slice(7).trim() : null;
}

function principalOf(claims: Record<string, unknown>): { claim: string; value: string } | null {
  for (const claim of PRINCIPAL_CLAIMS) {
    const v = claims[claim];
    if (typeof v === 'string' && v.length > 0 && v.length <= 128) return { claim, value: v };
  }
  return null;
}

/** A JWT's principal claim, read without verifying the signature; null when it is not a JWT. */
function unverifiedPrincipal(token: string): string | null {
  const firstDot = token.indexOf('.');
  const secondDot = firstDot === -1 ? -1 : token.indexOf('.', firstDot + 1);
  if (secondDot === -1 || secondDot - firstDot > 16_384) return null;
  try {
    const claims = JSON.parse(Buffer.from(token.slice(firstDot + 1, secondDot), 'base64url').toString('utf8'));
    return claims && typeof claims === 'object' ? (principalOf(claims)?.value ?? null) : null;
  } catch {
    return null;
  }
}

const MAX_HASHED = 10_000;

type Jose = typeof import('jose');
let jose: Promise<Jose> | null = null;
/** jose is loaded only by a gateway that verifies tokens: the others' idle footprint is 0.7 MiB smaller. */
function loadJose(): Promise<Jose> {
  jose ??= import('jose');
  return jose;
}

/**
 * The key set in `identity.jwks.file`, checked as jose checks it, here: jose is loaded later, and a bad file
 * must stop the start (or the reload) with the key named, not fail each verification.
 */
function readKeySet(path: string): { keys: Record<string, unknown>[] } {
  let set: unknown;
  try {
    set = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`identity.jwks.file: cannot read ${path} as JSON (${(err as Error).message})`);
  }
  const keys = (set as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || !keys.every((k) => k !== null && typeof k === 'object' && !Array.isArray(k)))
    throw new ConfigError(`identity.jwks.file: ${path} is not a JSON Web Key Set (an object with a "keys" array)`);
  return set as { keys: Record<string, unknown>[] };
}

/** A verification that failed is remembered this long, so a forged token costs one verification a minute. */
const REJECTED_TTL_MS = 60_000;
/** A verified token is remembered until it expires, at most this long. */
const VERIFIED_TTL_MS = 60 * 60_000;

/**
 * Who calls. Without `identity.jwks`, a hash of the credential: unverified claims never key a bucket or a
 * queue, because a token that merely claims someone's `oid` would spend their quota. With `identity.jwks`,
 * bearer JWTs are verified with jose against the configured issuer's keys (a JWKS URL, fetched and cached
 * by jose with a cool-down on unknown keys, or a file) and their `oid`/`sub`/`appid` claim is the identity;
 * each token is verified once and remembered until it expires (bounded, least recently used out),
 * so verification adds no upstream call per request. A token that fails verification is keyed by its hash,
 * like any unverified credential; CDF itself still decides whether it may call.
 */
export class IdentityResolver {
  private readonly keys: Promise<JWTVerifyGetKey> | null;
  private readonly issuer: string | undefined;
  private readonly audience: string[] | undefined;
  private readonly verified: LRUCache<string, Caller>;
  private readonly pending = new Map<string, Promise<Caller>>();
  /** Unverified callers by credential: a token repeats on every call, its hash is taken once. */
  private readonly hashed = new Map<string, Caller>();

  constructor(config: IdentityConfig) {
    const jwks = config.jwks;
    this.verified = new LRUCache<string, Caller>({ max: config.maxCachedTokens, ttlAutopurge: false });
    if (jwks === null) {
      this.keys = null;
      return;
    }
    this.issuer = jwks.issuer;
    this.audience = jwks.audience ?? undefined;
    // The JWKS URL is the one other host the gateway contacts, and it comes from the configuration only:
    // a token's own `jku`/`x5u` headers are never followed (jose does not).
    const url = jwks.url ? new URL(jwks.url) : null;
    const file = url === null ? readKeySet(jwks.file as string) : null;
    this.keys = loadJose().then((j) =>
      url !== null
        ? j.createRemoteJWKSet(url, { timeoutDuration: 5000, cooldownDuration: 30_000 })
        : j.createLocalJWKSet(file as { keys: Record<string, unknown>[] }),
    );
    // A failure shows in each verification (the caller keyed by its credential's hash), not as a crash.
    this.keys.catch(() => {});
  }

  get verifying(): boolean {
    return this.keys !== null;
  }

  /** The caller of a request; synchronous unless a token must be verified for the first time. */
  resolve(headers: IncomingHttpHeaders): Caller | Promise<Caller> {
    const credential = credentialOf(headers);
    if (credential === null) return ANONYMOUS;
    const token = bearerToken(headers.authorization);
    if (this.keys === null || token === null) {
      let caller = this.hashed.get(credential);
      if (caller === undefined) {
        const principal = token === null ? null : unverifiedPrincipal(token);
        caller = { key: `cred:${hashCredential(credential)}`, principal, verified: false };
        if (this.hashed.size >= MAX_HASHED) this.hashed.clear();
        this.hashed.set(credential, caller);
      }
      return caller;
    }
    // Remembered by the credential itself (held in memory only, as the request holds it): no hash per call.
    const known = this.verified.get(credential);
    if (known !== undefined) return known;
    let pending = this.pending.get(credential);
    if (pending === undefined) {
      pending = this.verify(token, credential).finally(() => this.pending.delete(credential));
      this.pending.set(credential, pending);
    }
    return pending;
  }

  private async verify(token: string, credential: string): Promise<Caller> {
    try {
      const { jwtVerify } = await loadJose();
      const { payload } = await jwtVerify(token, await (this.keys as Promise<JWTVerifyGetKey>), {
        issuer: this.issuer,
        audience: this.audience,
      });
      const p = principalOf(payload as Record<string, unknown>);
      if (p !== null) {
        const caller: Caller = { key: `${p.claim}:${p.value}`, principal: p.value, verified: true };
        const ttl = typeof payload.exp === 'number' ? payload.exp * 1000 - Date.now() : VERIFIED_TTL_MS;
        if (ttl > 0) this.verified.set(credential, caller, { ttl: Math.min(ttl, VERIFIED_TTL_MS) });
        return caller;
      }
    } catch {
      // Not verified: keyed by its hash below.
    }
    const caller: Caller = { key: `cred:${hashCredential(credential)}`, principal: null, verified: false };
    this.verified.set(credential, caller, { ttl: REJECTED_TTL_MS });
    return caller;
  }
}
