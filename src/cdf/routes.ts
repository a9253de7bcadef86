/**
 * Classifies a CDF request by the operation it names in CDF's OpenAPI description (see routes.generated.ts):
 * the API family (a bounded label for metrics and cache invalidation), whether it only reads, and the path
 * template it matched. Runs on every request, so the table is compiled once into a segment trie and a lookup
 * walks the path by index, without regexes and without allocating beyond the segment substrings.
 */
import { type OperationClass, ROUTES } from './routes.generated.js';

export type { OperationClass };

export interface RouteInfo {
  family: string;
  read: boolean;
  /** CDF's operation class for rate limits: crud, analytical, aggregate, or other (none of these). */
  cls: OperationClass;
  /** The OpenAPI path template, e.g. `/assets/{id}`; null when no operation matches the method and path. */
  template: string | null;
}

interface Node {
  /** Static children by segment text, matched before the wildcard. */
  readonly statics: Map<string, Node>;
  /** The `{param}` child: matches any one non-empty segment. */
  param: Node | null;
  /** Operations ending here, by upper-case method. */
  methods: Map<string, RouteInfo> | null;
  /** The family of every operation under this node, or null when they differ (e.g. /timeseries). */
  family: string | null;
}

const OTHER = 'other';
const MAX_FAMILY_LENGTH = 32;

function newNode(): Node {
  return { statics: new Map(), param: null, methods: null, family: null };
}

function isReadMethod(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
}

function build(): { root: Node; families: string[] } {
  const root = newNode();
  const familiesUnder = new Map<Node, Set<string>>();
  const all = new Set<string>();
  for (const [method, template, family, read, cls] of ROUTES) {
    all.add(family);
    let node = root;
    for (const seg of template.split('/')) {
      if (seg === '') continue;
      let next: Node | null | undefined;
      if (seg.charCodeAt(0) === 123 /* { */ && seg.charCodeAt(seg.length - 1) === 125 /* } */) {
        next = node.param ??= newNode();
      } else {
        next = node.statics.get(seg);
        if (next === undefined) {
          next = newNode();
          node.statics.set(seg, next);
        }
      }
      node = next;
      let set = familiesUnder.get(node);
      if (set === undefined) {
        set = new Set();
        familiesUnder.set(node, set);
      }
      set.add(family);
    }
    node.methods ??= new Map();
    if (!node.methods.has(method)) node.methods.set(method, Object.freeze({ family, read, cls, template }));
  }
  for (const [node, set] of familiesUnder) if (set.size === 1) node.family = set.values().next().value ?? null;
  all.add(OTHER);
  return { root, families: [...all].sort() };
}

const { root: ROOT, families } = build();

/** Every family lookupRoute can return: the families in ROUTES, sorted, plus 'other'. */
export const FAMILIES: readonly string[] = Object.freeze(families);

const FAMILY_SET: ReadonlySet<string> = new Set(families);

/** Shared results for requests that match no operation, by family and read-ness (FAMILIES is bounded). */
const UNMATCHED = new Map<string, readonly [RouteInfo, RouteInfo]>(
  families.map((f) => [
    f,
    [
      Object.freeze({ family: f, read: false, cls: 'other', template: null }),
      Object.freeze({ family: f, read: true, cls: 'other', template: null }),
    ],
  ]),
);

/** The segment of `path` that starts at `start`, ending at the next '/' or at `end`. */
function segmentEnd(path: string, start: number, end: number): number {
  const slash = path.indexOf('/', start);
  return slash === -1 || slash > end ? end : slash;
}

/** Depth-first: static child first, then the wildcard. Returns the operation for `method`, or null. */
function match(node: Node, path: string, pos: number, end: number, method: string): RouteInfo | null {
  // Skip the separator and any empty segments ("//", a trailing "/").
  while (pos < end && path.charCodeAt(pos) === 47 /* / */) pos++;
  if (pos >= end) {
    const methods = node.methods;
    if (methods === null) return null;
    return methods.get(method) ?? (method === 'HEAD' ? (methods.get('GET') ?? null) : null);
  }
  const segEnd = segmentEnd(path, pos, end);
  const child = node.statics.get(path.slice(pos, segEnd));
  if (child !== undefined) {
    const found = match(child, path, segEnd, end, method);
    if (found !== null) return found;
  }
  return node.param === null ? null : match(node.param, path, segEnd, end, method);
}

/** Family for a path no operation matched: the deepest node on the way whose operations share one family. */
function fallbackFamily(path: string, end: number): string {
  let node: Node = ROOT;
  let family: string | null = null;
  let first: string | null = null;
  let pos = 0;
  for (;;) {
    while (pos < end && path.charCodeAt(pos) === 47) pos++;
    if (pos >= end) break;
    const segEnd = segmentEnd(path, pos, end);
    const seg = path.slice(pos, segEnd);
    if (first === null) first = seg;
    const next: Node | null = node.statics.get(seg) ?? node.param;
    if (next === null) break;
    if (next.family !== null) family = next.family;
    node = next;
    pos = segEnd;
  }
  if (family !== null) return family;
  if (first === null) return OTHER;
  // The first segment, sanitised, if it is itself a known family (e.g. /timeseries/... that matched nothing).
  const slug = sanitise(first);
  return FAMILY_SET.has(slug) ? slug : OTHER;
}

/** Lower case, only [a-z0-9-], at most 32 characters. */
function sanitise(seg: string): string {
  let slug = '';
  for (let i = 0; i < seg.length && slug.length < MAX_FAMILY_LENGTH; i++) {
    let c = seg.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45) slug += String.fromCharCode(c);
  }
  return slug;
}

/**
 * Classifies a request. `rest` is the path after /api/v1/projects/{project}, e.g. `/assets/123` (a query
 * string, if present, is ignored). Empty segments and a trailing slash are skipped. The returned object is
 * shared and frozen: do not mutate it.
 */
export function lookupRoute(method: string, rest: string): RouteInfo {
  const q = rest.indexOf('?');
  const end = q === -1 ? rest.length : q;
  let found = match(ROOT, rest, 0, end, method);
  if (found === null) {
    const upper = method.toUpperCase();
    if (upper !== method) {
      method = upper;
      found = match(ROOT, rest, 0, end, method);
    }
  }
  if (found !== null) return found;
  const pair = UNMATCHED.get(fallbackFamily(rest, end))!;
  return pair[isReadMethod(method) ? 1 : 0];
}
