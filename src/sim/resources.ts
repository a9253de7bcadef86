import { readJson } from './body.js';
import { decodeCursor, encodeCursor, type IdRange, parsePartition } from './cursor.js';
import { DataError, type Dataset, hasId, type Kind } from './data.js';
import { datapoints } from './datapoints.js';
import { itemsOf, limitOf, optionalString, type Ref, refOf } from './params.js';
import { filterOf, searchOf } from './query.js';
import { type Call, HttpError } from './reply.js';
import type { Stats } from './stats.js';

export interface Env {
  data: Dataset;
  stats: Stats;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** Routes under /{assets|events|timeseries|datasets|labels|relationships|sequences}; `rest` is the path after the family. */
export async function resources(call: Call, env: Env, method: string, kind: Kind, rest: string[], query: string) {
  try {
    return await route(call, env, method, kind, rest, query);
  } catch (err) {
    if (err instanceof DataError) throw new HttpError(err.status, err.message, err.extra);
    throw err;
  }
}

async function route(call: Call, env: Env, method: string, kind: Kind, rest: string[], query: string) {
  const req = call.req;
  if (rest.length === 0) {
    if (method === 'GET') {
      const q = new URLSearchParams(query);
      return list(call, env.data, kind, q.get('limit'), q.get('cursor'), q.get('partition'));
    }
    if (method === 'POST') return create(call, env, kind, await readJson(req));
  } else if (rest.length === 1 && method === 'POST') {
    switch (rest[0]) {
      case 'list': {
        const body = await readJson(req);
        const filter = filterOf(body.filter);
        if (filter) return filtered(call, env.data, kind, filter, body.limit, body.cursor, body.partition);
        return list(call, env.data, kind, body.limit, body.cursor, body.partition);
      }
      case 'search': {
        const body = await readJson(req);
        const tests = [filterOf(body.filter), searchOf(body.search)].filter((t) => t !== null);
        const limit = limitOf(body.limit, DEFAULT_LIMIT, MAX_LIMIT);
        const items: string[] = [];
        for (const item of env.data.scan(kind)) {
          if (items.length >= limit) break;
          if (tests.every((t) => t(item))) items.push(JSON.stringify(item));
        }
        return call.send(200, `{"items":[${items.join(',')}]}`);
      }
      case 'byids':
        return byIds(call, env.data, kind, await readJson(req));
      case 'update': {
        const items = itemsOf(await readJson(req), MAX_LIMIT).map((item) => {
          const update = item.update;
          if (update === null || typeof update !== 'object' || Array.isArray(update))
            throw new HttpError(400, 'Each item needs an id or externalId and an update object');
          return { ref: refOf(item), update: update as Record<string, unknown> };
        });
        return call.send(200, `{"items":[${env.data.updateAll(kind, items).join(',')}]}`);
      }
      case 'delete': {
        const body = await readJson(req);
        env.data.deleteAll(kind, itemsOf(body, MAX_LIMIT).map(refOf), body.ignoreUnknownIds === true);
        return call.send(200, '{}');
      }
      case 'aggregate':
        await readJson(req);
        return call.send(200, `{"items":[{"count":${env.data.count}}]}`);
    }
  } else if (rest.length === 1 && method === 'GET' && hasId(kind) && /^[0-9]{1,16}$/.test(rest[0])) {
    const json = env.data.get(kind, Number(rest[0]));
    if (json === undefined) throw missing([{ id: Number(rest[0]) }]);
    return call.send(200, json);
  }
  if (kind === 'timeseries' && rest[0] === 'data') return datapoints(call, env.data, method, rest.slice(1));
  throw new HttpError(404, `Unknown path: ${method} ${kind}/${rest.join('/')}`);
}

// Cursors for the slow paths: an offset into the created items ("c") or into the filtered items ("f").
const offsetCursor = (tag: string, offset: number) => Buffer.from(`${tag}${offset}`).toString('base64url');
function offsetOf(cursor: string | undefined, tag: string): number | undefined {
  if (cursor === undefined) return undefined;
  const m = new RegExp(`^${tag}([0-9]{1,9})$`).exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

function filtered(
  call: Call,
  data: Dataset,
  kind: Kind,
  test: (item: Record<string, unknown>) => boolean,
  limitRaw: unknown,
  cursorRaw: unknown,
  partitionRaw: unknown,
) {
  const limit = limitOf(limitRaw, DEFAULT_LIMIT, MAX_LIMIT);
  const cursor = optionalString(cursorRaw, 'cursor');
  const from = cursor === undefined ? 0 : offsetOf(cursor, 'f');
  if (from === undefined) throw new HttpError(400, `Invalid cursor: ${cursor}`);
  const range = rangeOf(data, undefined, partitionRaw);
  const items: string[] = [];
  let seen = 0;
  let more = false;
  for (const item of data.scan(kind, range.next, range.end)) {
    if (!test(item)) continue;
    if (seen++ < from) continue;
    if (items.length === limit) {
      more = true;
      break;
    }
    items.push(JSON.stringify(item));
  }
  const next = more ? `,"nextCursor":"${offsetCursor('f', from + limit)}"` : '';
  call.send(200, `{"items":[${items.join(',')}]${next}}`);
}

function missing(refs: Ref[]): HttpError {
  return new HttpError(400, 'Ids not found', { missing: refs });
}

function rangeOf(data: Dataset, cursorRaw: unknown, partitionRaw: unknown): IdRange {
  const cursor = optionalString(cursorRaw, 'cursor');
  if (cursor !== undefined) {
    const range = decodeCursor(cursor, data.count);
    if (!range) throw new HttpError(400, `Invalid cursor: ${cursor}`);
    return range;
  }
  const partition = optionalString(partitionRaw, 'partition');
  if (partition !== undefined) {
    const range = parsePartition(partition, data.count);
    if (!range) throw new HttpError(400, `Invalid partition '${partition}': expected m/n with 1 <= m <= n`);
    return range;
  }
  return { next: 1, end: data.count };
}

function list(call: Call, data: Dataset, kind: Kind, limitRaw: unknown, cursorRaw: unknown, partitionRaw: unknown) {
  const limit = limitOf(limitRaw, DEFAULT_LIMIT, MAX_LIMIT);
  const createdFrom = offsetOf(optionalString(cursorRaw, 'cursor'), 'c');
  if (createdFrom !== undefined) return createdPage(call, data, kind, createdFrom, limit);
  const { next, end } = rangeOf(data, cursorRaw, partitionRaw);
  const to = Math.min(next + limit - 1, end);
  let nextCursor = to < end ? encodeCursor({ next: to + 1, end }) : undefined;
  // Created items follow the generated ones (in the last partition when partitioned).
  if (nextCursor === undefined && end === data.count && data.createdIds(kind).length > 0)
    nextCursor = offsetCursor('c', 0);
  call.send(200, data.page(kind, next, to, nextCursor));
}

function createdPage(call: Call, data: Dataset, kind: Kind, from: number, limit: number) {
  const ids = data.createdIds(kind);
  const items = ids.slice(from, from + limit).map((id) => data.get(kind, id));
  const next = from + limit < ids.length ? `,"nextCursor":"${offsetCursor('c', from + limit)}"` : '';
  call.send(200, `{"items":[${items.join(',')}]${next}}`);
}

/** byids answers the items as stored, in the order asked. */
function byIds(call: Call, data: Dataset, kind: Kind, body: Record<string, unknown>) {
  const items = itemsOf(body, MAX_LIMIT);
  const ignoreUnknown = body.ignoreUnknownIds === true;
  const found: string[] = [];
  const absent: Ref[] = [];
  for (const item of items) {
    const ref = refOf(item);
    const id = data.resolve(kind, ref);
    if (id !== undefined) found.push(data.get(kind, id) as string);
    else absent.push(ref);
  }
  if (absent.length > 0 && !ignoreUnknown) throw missing(absent);
  call.send(200, `{"items":[${found.join(',')}]}`);
}

/** All or nothing: an externalId that exists already (or twice in the request) is 409 `duplicated`. */
function create(call: Call, env: Env, kind: Kind, body: Record<string, unknown>) {
  const out = env.data.createAll(kind, itemsOf(body, MAX_LIMIT));
  env.stats.created += out.length;
  call.send(200, `{"items":[${out.join(',')}]}`);
}
