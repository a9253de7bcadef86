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
