import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayErrors } from '../errors.js';

/** The cookie a browser keeps after opening /dashboard?token=...; the page's own fetches then carry it. */
const ADMIN_COOKIE = 'cdfgw_admin';

const digest = (value: string) => createHash('sha256').update(value).digest();

function cookieValue(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return null;
}

/**
 * An onRequest hook for the admin routes (/metrics, /dashboard and everything under it), registered in
 * their own fastify scope so it covers exactly them, whatever the routes are. With `metrics.token` set,
 * a request needs `Authorization: Bearer <token>` (Prometheus' `authorization` setting), or the cookie a
 * browser got by opening `/dashboard?token=<token>` once. Compared in constant time, as digests.
 */
export function adminAuth(token: string | null) {
  const expected = token === null ? null : digest(token);
  const matches = (value: string | null) =>
    value !== null && expected !== null && timingSafeEqual(digest(value), expected);
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (expected === null) return;
    const authorization = req.headers.authorization;
    const bearer = authorization && /^bearer /i.test(authorization) ? authorization.slice(7).trim() : null;
    if (matches(bearer) || matches(cookieValue(req.headers.cookie, ADMIN_COOKIE))) return;
    const query = (req.query as Record<string, unknown> | undefined)?.token;
    if (typeof query === 'string' && matches(query) && req.url.startsWith('/dashboard')) {
      reply.header('set-cookie', `${ADMIN_COOKIE}=${encodeURIComponent(query)}; Path=/; HttpOnly; SameSite=Strict`);
      return;
    }
    const refused = new GatewayErrors.ADMIN_UNAUTHORIZED();
    reply
      .code(refused.status)
      .header('www-authenticate', 'Bearer realm="cdf-gateway admin"')
      .type('application/json')
      .send(refused.body());
  };
}
