/** Where a request points inside CDF: `/api/v1/projects/{project}{rest}?{query}`. */
export interface CdfTarget {
  project: string;
  /** The path after the project, always starting with "/" ("/" for the project root). */
  rest: string;
  /** The raw query string without "?", or "" */
  query: string;
}

const PREFIX = '/api/v1/projects/';

/** Splits a raw request target; null when it is not inside a project (still forwarded, not classified). */
export function parseCdfTarget(url: string): CdfTarget | null {
  if (!url.startsWith(PREFIX)) return null;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  const slash = path.indexOf('/', PREFIX.length);
  const project = slash === -1 ? path.slice(PREFIX.length) : path.slice(PREFIX.length, slash);
  if (project === '') return null;
  return { project, rest: slash === -1 ? '/' : path.slice(slash), query };
}

/**
 * Request targets that could make a proxy contact somewhere else, or reach a path other than the one
 * written: absolute-form (`http://other/x`), authority-form, `*`, network-path (`//host/x`), dot segments
 * (also percent-encoded) and backslashes. Returns a reason, or null when the target is safe to append to
 * the upstream's origin.
 */
export function unsafeTargetReason(url: string): string | null {
  if (url.charCodeAt(0) !== 47 /* / */) return 'the request target must be a path starting with "/"';
  if (url.charCodeAt(1) === 47) return 'the request target must not start with "//"';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (path.includes('\\')) return 'the request path must not contain "\\"';
  if (path.includes('%') || path.includes('.')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return 'the request path has a malformed percent-encoding';
    }
    for (const segment of decoded.split(/[/\\]/)) {
      if (segment === '.' || segment === '..') return 'the request path must not contain "." or ".." segments';
    }
    if (decoded.startsWith('//')) return 'the request target must not start with "//"';
  }
  return null;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * The normal form of a safe request target (RFC 3986 §6.2.2): in the path, percent-encodings of
 * unreserved characters decoded and runs of "/" collapsed into one; other percent-encodings and the query
 * are kept as sent. Classification, buckets, cache keys and the upstream call all use this form,
 * so `/projects/%70/...` and `/projects/p//...` are `/projects/p/...` everywhere. Unchanged targets (the
 * common case) are returned as they are, without a copy.
 */
export function normalizeTarget(url: string): string {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (!path.includes('%') && !path.includes('//')) return url;
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === '%' && i + 2 < path.length && isHex(path[i + 1]) && isHex(path[i + 2])) {
      const code = Number.parseInt(path.slice(i + 1, i + 3), 16);
      const ch = String.fromCharCode(code);
      out += code < 128 && UNRESERVED.test(ch) ? ch : path.slice(i, i + 3);
      i += 2;
    } else if (c === '/' && out.endsWith('/')) {
      // "//" collapsed
    } else out += c;
  }
  return q === -1 ? out : out + url.slice(q);
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && /[0-9A-Fa-f]/.test(c);
}
