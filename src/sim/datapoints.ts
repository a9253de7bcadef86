import { readJson } from './body.js';
import { decodeTimeCursor, encodeTimeCursor } from './cursor.js';
import { type Dataset, datapointValue } from './data.js';
import { itemsOf, limitOf, optionalString, type Ref, refOf } from './params.js';
import type { Point } from './points.js';
import { type Call, HttpError } from './reply.js';

// Every series has one datapoint per whole second since the epoch: any window is deterministic.
const STEP_MS = 1000;
const MAX_ITEMS = 100;
const RAW_LIMIT = { fallback: 100, max: 100_000 };
const AGGREGATE_LIMIT = { fallback: 100, max: 10_000 };
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Routes under /timeseries/data; `rest` is the path after `data`. */
export async function datapoints(call: Call, data: Dataset, method: string, rest: string[]) {
  if (method !== 'POST' || rest.length > 1) throw new HttpError(404, `Unknown path: ${method} timeseries/data`);
  const body = await readJson(call.req);
  const op = rest[0] ?? '';
  if (op === 'list') return call.json(200, { items: list(data, body) });
  if (op === 'latest') return call.json(200, { items: latest(data, body) });
  if (op === '') {
    insert(data, body);
    return call.send(200, '{}');
  }
  if (op === 'delete') {
    remove(data, body);
    return call.send(200, '{}');
  }
  throw new HttpError(404, `Unknown path: ${method} timeseries/data/${op}`);
}

/** CDF time: epoch ms, "now", or "<n><unit>-ago". */
function timeOf(raw: unknown, fallback: number, now: number, name: string): number {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw === 'number' && Number.isInteger(raw)) return raw;
  if (typeof raw === 'string') {
    if (raw === 'now') return now;
    if (/^-?[0-9]+$/.test(raw)) return Number(raw);
    const m = /^([0-9]+)(ms|s|m|h|d|w)-ago$/.exec(raw);
    if (m) return now - Number(m[1]) * UNIT_MS[m[2]];
  }
  throw new HttpError(400, `Invalid ${name}: ${JSON.stringify(raw)}`);
}

function granularityOf(raw: unknown): number {
  const m = typeof raw === 'string' ? /^([0-9]*)(s|m|h|d|second|minute|hour|day)s?$/.exec(raw) : null;
  if (!m) throw new HttpError(400, `Invalid granularity: ${JSON.stringify(raw)}`);
  const n = m[1] === '' ? 1 : Number(m[1]);
  const ms = UNIT_MS[m[2][0]];
  if (n < 1) throw new HttpError(400, `Invalid granularity: ${JSON.stringify(raw)}`);
  return n * ms;
}

interface Series {
  id: number;
  externalId?: string;
  isStep?: boolean;
  unit?: string;
}

/** Resolves every item's series first so unknown ids fail the whole request, as CDF does. */
function resolve(data: Dataset, body: Record<string, unknown>, max = MAX_ITEMS) {
  const items = itemsOf(body, max);
  const ignoreUnknown = body.ignoreUnknownIds === true;
  const found: Array<{ item: Record<string, unknown>; series: Series }> = [];
  const absent: Ref[] = [];
  for (const item of items) {
    const ref = refOf(item);
    const id = 'id' in ref ? ref.id : data.idOfExternalId('timeseries', ref.externalId);
    const json = id === undefined ? undefined : data.get('timeseries', id);
    if (json === undefined) absent.push(ref);
    else found.push({ item, series: JSON.parse(json) as Series });
  }
  if (absent.length > 0 && !ignoreUnknown) throw new HttpError(400, 'Ids not found', { missing: absent });
  return found;
}

function header(series: Series) {
  return {
    id: series.id,
    externalId: series.externalId,
    isString: false,
    isStep: series.isStep ?? false,
    unit: series.unit,
  };
}

function list(data: Dataset, body: Record<string, unknown>) {
  const now = Date.now();
  return resolve(data, body).map(({ item, series }) => {
    const start = timeOf(item.start ?? body.start, 0, now, 'start');
    const end = timeOf(item.end ?? body.end, now, now, 'end');
    const aggregates = item.aggregates ?? body.aggregates;
    const cursor = optionalString(item.cursor, 'cursor');
    let from: number | undefined;
    if (cursor !== undefined) {
      from = decodeTimeCursor(cursor);
      if (from === undefined) throw new HttpError(400, `Invalid cursor: ${cursor}`);
    }
    if (aggregates === undefined) {
      const limit = limitOf(item.limit ?? body.limit, RAW_LIMIT.fallback, RAW_LIMIT.max);
      return rawPage(data, series, start, end, limit, from);
    }
    if (!Array.isArray(aggregates) || !aggregates.every((a) => typeof a === 'string')) {
      throw new HttpError(400, 'aggregates must be an array of strings');
    }
    const step = granularityOf(item.granularity ?? body.granularity);
    const limit = limitOf(item.limit ?? body.limit, AGGREGATE_LIMIT.fallback, AGGREGATE_LIMIT.max);
    if (!data.isGenerated(series.id)) return insertedAggregates(data, series, start, end, step, limit, aggregates);
    return page(series, start, end, step, limit, from, (ts) => {
      const point: Record<string, number> = { timestamp: ts };
      // Stand-in numbers, deterministic like the raw points: enough for clients that page and parse.
      for (const name of aggregates as string[])
        point[name] = name === 'count' ? step / STEP_MS : datapointValue(series.id, ts);
      return point;
    });
  });
}

function page(
  series: Series,
  start: number,
  end: number,
  step: number,
  limit: number,
  from: number | undefined,
  point: (timestamp: number) => object,
) {
  let ts = Math.max(0, Math.ceil(start / step) * step);
  if (from !== undefined && from > ts) ts = from;
  const points: object[] = [];
  for (; ts < end && points.length < limit; ts += step) points.push(point(ts));
  return { ...header(series), datapoints: points, ...(ts < end ? { nextCursor: encodeTimeCursor(ts) } : {}) };
}

function latest(data: Dataset, body: Record<string, unknown>) {
  const now = Date.now();
  return resolve(data, body).map(({ item, series }) => {
    const before = timeOf(item.before, now, now, 'before');
    const inserted = data.points.range(series.id, Number.MIN_SAFE_INTEGER, before).at(-1);
    const ts = Math.floor((before - 1) / STEP_MS) * STEP_MS;
    const generated: Point | undefined =
      data.isGenerated(series.id) && ts >= 0 ? [ts, datapointValue(series.id, ts)] : undefined;
    const last = inserted && (!generated || inserted[0] >= generated[0]) ? inserted : generated;
    const datapoints = last ? [{ timestamp: last[0], value: last[1] }] : [];
    return { ...header(series), datapoints };
  });
}

const MAX_INSERT_POINTS = 100_000;

/** `{items: [{id|externalId, datapoints: [{timestamp, value}]}]}`: all the series must exist. */
function insert(data: Dataset, body: Record<string, unknown>) {
  const found = resolve(data, { items: body.items }, 10_000);
  let total = 0;
  const writes = found.map(({ item, series }) => {
    if (!Array.isArray(item.datapoints)) throw new HttpError(400, 'Each item needs a datapoints list');
    const points = item.datapoints.map((p: unknown): Point => {
      const { timestamp, value } = (p ?? {}) as { timestamp?: unknown; value?: unknown };
      const ts = typeof timestamp === 'string' ? Date.parse(timestamp) : timestamp;
      if (typeof ts !== 'number' || !Number.isInteger(ts))
        throw new HttpError(400, `Invalid datapoint timestamp: ${JSON.stringify(timestamp)}`);
      if (typeof value !== 'number' && typeof value !== 'string')
        throw new HttpError(400, `Invalid datapoint value: ${JSON.stringify(value)}`);
      return [ts, value];
    });
    total += points.length;
    return { id: series.id, points };
  });
  if (total > MAX_INSERT_POINTS) throw new HttpError(400, `At most ${MAX_INSERT_POINTS} datapoints per request`);
  for (const { id, points } of writes) data.points.insert(id, points);
}

/** `{items: [{id|externalId, inclusiveBegin, exclusiveEnd}]}`: deletes inserted points in the range. */
function remove(data: Dataset, body: Record<string, unknown>) {
  const now = Date.now();
  for (const { item, series } of resolve(data, { items: body.items }, 10_000)) {
    const start = timeOf(item.inclusiveBegin, 0, now, 'inclusiveBegin');
    const end = item.exclusiveEnd === undefined ? start + 1 : timeOf(item.exclusiveEnd, now, now, 'exclusiveEnd');
    data.points.delete(series.id, start, end);
  }
}

/**
 * Raw points of one series: the generated ones (one per second, for generated series) merged with the
 * inserted ones, which win on the same timestamp; created series have only what was inserted.
 */
function rawPage(data: Dataset, series: Series, start: number, end: number, limit: number, from?: number) {
  let ts = Math.max(0, Math.ceil(start / STEP_MS) * STEP_MS);
  if (from !== undefined && from > ts) ts = from;
  const lower = from !== undefined && from > start ? from : start;
  const inserted = data.points.range(series.id, lower, end);
  const synthetic = data.isGenerated(series.id);
  let nextSynthetic = synthetic ? ts : Number.POSITIVE_INFINITY;
  let i = 0;
  const points: Array<{ timestamp: number; value: number | string }> = [];
  while (points.length < limit) {
    const a = nextSynthetic < end ? nextSynthetic : Number.POSITIVE_INFINITY;
    const b = i < inserted.length ? inserted[i][0] : Number.POSITIVE_INFINITY;
    if (a === Number.POSITIVE_INFINITY && b === Number.POSITIVE_INFINITY) break;
    if (b <= a) {
      points.push({ timestamp: b, value: inserted[i][1] });
      i++;
      if (a === b) nextSynthetic += STEP_MS;
    } else {
      points.push({ timestamp: a, value: datapointValue(series.id, a) });
      nextSynthetic += STEP_MS;
    }
  }
  const next = Math.min(nextSynthetic < end ? nextSynthetic : Number.POSITIVE_INFINITY, inserted[i]?.[0] ?? Infinity);
  return {
    ...header(series),
    datapoints: points,
    ...(next !== Number.POSITIVE_INFINITY ? { nextCursor: encodeTimeCursor(next) } : {}),
  };
}

/** Aggregates of a created series, computed from its inserted numeric points per granularity window. */
function insertedAggregates(
  data: Dataset,
  series: Series,
  start: number,
  end: number,
  step: number,
  limit: number,
  aggregates: string[],
) {
  const windows = new Map<number, number[]>();
  for (const [ts, value] of data.points.range(series.id, start, end)) {
    if (typeof value !== 'number') continue;
    const w = Math.floor(ts / step) * step;
    const list = windows.get(w) ?? [];
    list.push(value);
    windows.set(w, list);
  }
  const datapoints = [...windows.entries()].slice(0, limit).map(([timestamp, values]) => {
    const sum = values.reduce((a, b) => a + b, 0);
    const point: Record<string, number> = { timestamp };
    for (const name of aggregates) {
      if (name === 'count') point.count = values.length;
      else if (name === 'sum') point.sum = sum;
      else if (name === 'min') point.min = Math.min(...values);
      else if (name === 'max') point.max = Math.max(...values);
      else point[name] = sum / values.length;
    }
    return point;
  });
  return { ...header(series), datapoints };
}
