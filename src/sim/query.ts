/**
 * Filters and free-text search over items, for `POST /{kind}/list` with a `filter` and
 * `POST /{kind}/search`: the common parts of CDF's filter language, enough for a first script.
 * A slow path (items are parsed one by one); plain listing keeps the pre-serialized fast path.
 */
import { HttpError } from './reply.js';

type Item = Record<string, unknown>;

const ID_LISTS: Record<string, string> = {
  parentIds: 'parentId',
  rootIds: 'rootId',
  assetIds: 'assetIds',
  dataSetIds: 'dataSetId',
  assetSubtreeIds: 'rootId',
};

/** `[1, 2]`, `[{id: 1}]` or `[{externalId: "x"}]` to a test on an item's id-valued field. */
function idTest(field: string, refs: unknown, target: string): (item: Item) => boolean {
  if (!Array.isArray(refs)) throw new HttpError(400, `filter.${field} must be a list`);
  const ids = new Set<unknown>();
  const externalIds = new Set<unknown>();
  for (const r of refs) {
    if (typeof r === 'number') ids.add(r);
    else if (r && typeof r === 'object' && 'id' in r) ids.add((r as Item).id);
    else if (r && typeof r === 'object' && 'externalId' in r) externalIds.add((r as Item).externalId);
  }
  const single = target === 'assetIds' ? 'assetId' : target;
  return (item) => {
    const values = Array.isArray(item[target]) ? (item[target] as unknown[]) : [item[target] ?? item[single]];
    const exts = [item[`${single.replace(/Id$/, '')}ExternalId`]];
    return values.some((v) => ids.has(v)) || exts.some((v) => v !== undefined && externalIds.has(v));
  };
}

function rangeTest(field: string, range: unknown): (item: Item) => boolean {
  if (range === null || typeof range !== 'object') throw new HttpError(400, `filter.${field} must be {min, max}`);
  const { min, max } = range as { min?: number; max?: number };
  return (item) => {
    const v = item[field];
    return typeof v === 'number' && (min === undefined || v >= min) && (max === undefined || v <= max);
  };
}

/** A predicate for CDF's `filter` object; unknown fields compare by equality. */
export function filterOf(filter: unknown): ((item: Item) => boolean) | null {
  if (filter === undefined || filter === null) return null;
  if (typeof filter !== 'object' || Array.isArray(filter)) throw new HttpError(400, 'filter must be an object');
  const tests: Array<(item: Item) => boolean> = [];
  for (const [field, want] of Object.entries(filter as Item)) {
    if (field === 'externalIdPrefix') {
      if (typeof want !== 'string') throw new HttpError(400, 'filter.externalIdPrefix must be a string');
      tests.push((item) => typeof item.externalId === 'string' && item.externalId.startsWith(want));
    } else if (field === 'metadata') {
      if (want === null || typeof want !== 'object') throw new HttpError(400, 'filter.metadata must be an object');
      const pairs = Object.entries(want as Item);
      tests.push((item) => pairs.every(([k, v]) => (item.metadata as Item | undefined)?.[k] === v));
    } else if (field in ID_LISTS) tests.push(idTest(field, want, ID_LISTS[field]));
    else if (want !== null && typeof want === 'object' && !Array.isArray(want)) tests.push(rangeTest(field, want));
    else tests.push((item) => item[field] === want);
  }
  return tests.length === 0 ? null : (item) => tests.every((t) => t(item));
}

const words = (text: string) => text.toLowerCase().split(/\s+/).filter(Boolean);
const contains = (value: unknown, terms: string[]) =>
  typeof value === 'string' && terms.every((t) => value.toLowerCase().includes(t));

/** CDF's `search` object (`name`, `description`, `query`): every word, case-insensitively. */
export function searchOf(search: unknown): ((item: Item) => boolean) | null {
  if (search === undefined || search === null) return null;
  if (typeof search !== 'object' || Array.isArray(search)) throw new HttpError(400, 'search must be an object');
  const tests: Array<(item: Item) => boolean> = [];
  for (const [field, text] of Object.entries(search as Item)) {
    if (typeof text !== 'string') throw new HttpError(400, `search.${field} must be a string`);
    const terms = words(text);
    if (field === 'query')
      tests.push((item) => ['name', 'description', 'externalId'].some((f) => contains(item[f], terms)));
    else tests.push((item) => contains(item[field], terms));
  }
  return tests.length === 0 ? null : (item) => tests.every((t) => t(item));
}
