import { createHash } from 'node:crypto';
import { HeldBody } from '../proxy/body.js';
import type { Exchange } from '../proxy/exchange.js';

/** Bodies nested deeper than this are not keyed (and so not cached): walking them could overflow the stack. */
const MAX_KEY_DEPTH = 256;

class TooDeep extends Error {}

/**
 * JSON with object keys sorted at every depth and array order kept, so that bodies that differ only in
 * key order or whitespace give the same text. Values JSON cannot hold are dropped as JSON.stringify would.
 * Throws past MAX_KEY_DEPTH levels of nesting.
 */
function canonicalJson(value: unknown, depth = 0): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (depth >= MAX_KEY_DEPTH) throw new TooDeep();
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const item = value[i];
      out += item === undefined || typeof item === 'function' ? 'null' : canonicalJson(item, depth + 1);
    }
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const v = obj[key];
    if (v === undefined || typeof v === 'function') continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(key)}:${canonicalJson(v, depth + 1)}`;
  }
  return `${out}}`;
}

/**
 * The query string with its parameters sorted by name; parameters of the same name keep their order
 * (it may matter to the API). Empty pieces (`a=1&&b=2`) are dropped.
 */
function canonicalQuery(query: string): string {
  if (query === '') return '';
  const parts = query.split('&').filter((p) => p !== '');
  if (parts.length < 2) return parts.join('&');
  const nameOf = (p: string) => {
    const eq = p.indexOf('=');
    return eq === -1 ? p : p.slice(0, eq);
  };
  // Array.prototype.sort is stable: same-name parameters stay in the order sent.
  return parts
    .map((p) => ({ p, name: nameOf(p) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((x) => x.p)
    .join('&');
}

function headerText(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * The cache key of a request, or null when it cannot be keyed (no credentials, a POST whose body is not
 * buffered JSON decoded within its bound or is nested too deep, a GET that carries a body). A sha256 over
 * everything that can change the answer: who asks (a hash of every credential-bearing header, never the
 * token), where, how (method, cdf-version sent upstream, Accept, Accept-Encoding) and, for POSTs, the body
 * parsed and written canonically. No token or body is kept.
 */
export function cacheKey(ex: Exchange): string | null {
  const target = ex.target;
  if (target === null) return null;
  const credential = ex.credential;
  if (credential === null) return null;
  let body = '';
  if (ex.method === 'POST') {
    if (!(ex.body instanceof HeldBody)) return null;
    const json = ex.json();
    if (json === undefined) return null;
    try {
      body = canonicalJson(json);
    } catch (err) {
      if (err instanceof TooDeep || err instanceof RangeError) return null;
      throw err;
    }
  } else if (ex.body !== null && !(ex.body instanceof HeldBody && ex.body.length === 0)) {
    return null;
  }
  const headers = ex.req.headers;
  const parts = [
    credential,
    target.project,
    ex.method,
    target.rest,
    canonicalQuery(target.query),
    headerText(ex.upstreamHeaders['cdf-version']),
    headerText(headers.accept),
    headerText(headers['accept-encoding']),
    body,
  ];
  // JSON of the parts: no separator inside a part can make two different requests collide.
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url');
}

/** What the app's Cache-Control asks of the cache. */
export interface ClientControl {
  /** no-store: neither read nor write the cache. */
  noStore: boolean;
  /** no-cache: go upstream, then store the fresh answer. */
  noCache: boolean;
  /** max-age=N in milliseconds: older entries count as a miss; null when not given. */
  maxAgeMs: number | null;
}

const NONE: ClientControl = Object.freeze({ noStore: false, noCache: false, maxAgeMs: null });

export function clientControl(value: string | string[] | undefined): ClientControl {
  if (value === undefined || value === '') return NONE;
  const text = (Array.isArray(value) ? value.join(',') : value).toLowerCase();
  let noStore = false;
  let noCache = false;
  let maxAgeMs: number | null = null;
  for (const raw of text.split(',')) {
    const directive = raw.trim();
    if (directive === 'no-store') noStore = true;
    else if (directive === 'no-cache') noCache = true;
    else if (directive.startsWith('max-age')) {
      const m = /^max-age\s*=\s*"?(\d+)"?$/.exec(directive);
      // An unreadable max-age is treated as 0 (RFC 9111 §4.2.1: invalid freshness is stale).
      const seconds = m ? Number(m[1]) : 0;
      maxAgeMs = Math.min(maxAgeMs ?? Number.POSITIVE_INFINITY, seconds * 1000);
    }
  }
  return { noStore, noCache, maxAgeMs };
}
