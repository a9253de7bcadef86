import { readJson } from './body.js';
import { decodeCursor, encodeCursor, type IdRange, parsePartition } from './cursor.js';
import type { Dataset, Kind } from './data.js';
import { datapoints } from './datapoints.js';
import { itemsOf, limitOf, optionalString, type Ref, refOf } from './params.js';
import { type Call, HttpError } from './reply.js';
import type { Stats } from './stats.js';

export interface Env {
  data: Dataset;
  stats: Stats;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** Routes under /{assets|events|timeseries}; `rest` is the path after the family. */
export async function resources(call: Call, env: Env, method: string, kind: Kind, rest: string[], query: string) {
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
        return list(call, env.data, kind, body.limit, body.cursor, body.partition);
      }
      case 'byids':
        return byIds(call, env.data, kind, await readJson(req), 'byids');
      case 'update':
        return byIds(call, env.data, kind, await readJson(req), 'update');
      case 'delete':
        itemsOf(await readJson(req), MAX_LIMIT);
        return call.send(200, '{}');
      case 'aggregate':
        await readJson(req);
        return call.send(200, `{"items":[{"count":${env.data.count}}]}`);
    }
  } else if (rest.length === 1 && method === 'GET' && /^[0-9]{1,16}$/.test(rest[0])) {
    const json = env.data.get(kind, Number(rest[0]));
    if (json === undefined) throw missing([{ id: Number(rest[0]) }]);
    return call.send(200, json);
  }
  if (kind === 'timeseries' && rest[0] === 'data') return datapoints(call, env.data, method, rest.slice(1));
  throw new HttpError(404, `Unknown path: ${method} ${kind}/${rest.join('/')}`);
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
  const { next, end } = rangeOf(data, cursorRaw, partitionRaw);
  const to = Math.min(next + limit - 1, end);
  const nextCursor = to < end ? encodeCursor({ next: to + 1, end }) : undefined;
  call.send(200, data.page(kind, next, to, nextCursor));
}

function lookup(data: Dataset, kind: Kind, ref: Ref): string | undefined {
  const id = 'id' in ref ? ref.id : data.idOfExternalId(kind, ref.externalId);
  return id === undefined ? undefined : data.get(kind, id);
}

/** byids and update both answer the items as stored; the simulator does not apply updates. */
function byIds(call: Call, data: Dataset, kind: Kind, body: Record<string, unknown>, op: 'byids' | 'update') {
  const items = itemsOf(body, MAX_LIMIT);
  const ignoreUnknown = op === 'byids' && body.ignoreUnknownIds === true;
  const found: string[] = [];
  const absent: Ref[] = [];
  for (const item of items) {
    const ref = refOf(item);
    const json = lookup(data, kind, ref);
    if (json !== undefined) found.push(json);
    else absent.push(ref);
  }
  if (absent.length > 0 && !ignoreUnknown) throw missing(absent);
  call.send(200, `{"items":[${found.join(',')}]}`);
}

function create(call: Call, env: Env, kind: Kind, body: Record<string, unknown>) {
  const items = itemsOf(body, MAX_LIMIT);
  const out = items.map((item) => env.data.create(kind, item));
  env.stats.created += out.length;
  call.send(200, `{"items":[${out.join(',')}]}`);
}
