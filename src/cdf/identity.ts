import { createHash } from 'node:crypto';

/** A stable digest of a credential, safe to keep in keys, logs and metrics. */
export function hashCredential(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 22);
}

/**
 * Who is calling, from the bearer token, without verifying it (CDF does): a JWT's `oid`, `sub` or `appid`
 * claim, else a hash of the token. Never the token itself.
 */
export function identityOf(authorization: string | undefined): string {
  if (!authorization) return 'anonymous';
  const token = authorization.startsWith('Bearer ') ? authorization.slice(7).trim() : authorization;
  const firstDot = token.indexOf('.');
  const secondDot = firstDot === -1 ? -1 : token.indexOf('.', firstDot + 1);
  if (secondDot !== -1) {
    try {
      const claims = JSON.parse(
        Buffer.from(token.slice(firstDot + 1, secondDot), 'base64url').toString('utf8'),
      ) as Record<string, unknown>;
      for (const claim of ['oid', 'sub', 'appid'] as const) {
        const v = claims[claim];
        if (typeof v === 'string' && v.length > 0 && v.length <= 128) return `${claim}:${v}`;
      }
    } catch {
      // Not a JWT after all: fall through to the hash.
    }
  }
  return `token:${hashCredential(token)}`;
}
