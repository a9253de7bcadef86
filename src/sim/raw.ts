/**
 * CDF RAW: databases, tables and rows (`/raw/dbs/...`), kept in memory. Rows are `{key, columns,
 * lastUpdatedTime}`; an insert with an existing key replaces the row, as in CDF. Bounded: past MAX_ROWS
 * an insert is refused with 400 rather than growing without end.
 */
import { readJson } from './body.js';
import { itemsOf, limitOf, optionalString } from './params.js';
import { type Call, HttpError } from './reply.js';

const MAX_ROWS = 200_000;
const MAX_NAMES = 1000;
type Row = { key: string; columns: Record<string, unknown>; lastUpdatedTime: number };
type Table = Map<string, Row>;
type Database = { tables: Map<string, Table>; createdTime: number };

export class RawStore {
  readonly dbs = new Map<string, Database>();
  rows = 0;

  clear(): void {
    this.dbs.clear();
    this.rows = 0;
  }
}

const offsetCursor = (offset: number) => Buffer.from(`r${offset}`).toString('base64url');

/** A page of `values` from the `cursor` query/body parameter, CDF-style. */
function paged<T>(values: T[], limitRaw: unknown, cursorRaw: unknown, max: number) {
  const limit = limitOf(limitRaw, 25, max);
  const cursor = optionalString(cursorRaw, 'cursor');
  let from = 0;
  if (cursor !== undefined) {
    const m = /^r([0-9]{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
    if (!m) throw new HttpError(400, `Invalid cursor: ${cursor}`);
    from = Number(m[1]);
  }
  const items = values.slice(from, from + limit);
  return { items, ...(from + limit < values.length ? { nextCursor: offsetCursor(from + limit) } : {}) };
}

function names(body: Record<string, unknown>): string[] {
  return itemsOf(body, MAX_NAMES).map((item) => {
    if (typeof item.name !== 'string' || item.name === '' || item.name.length > 32)
      throw new HttpError(400, 'Each item needs a name of 1 to 32 characters');
    return item.name;
  });
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `Invalid path segment: ${segment}`);
  }
}

/** Routes under /raw; `rest` is the path after `raw`. */
export async function raw(call: Call, store: RawStore, method: string, rest: string[], query: string) {
  const q = new URLSearchParams(query);
  if (rest[0] !== 'dbs') throw new HttpError(404, `Unknown path: ${method} raw/${rest.join('/')}`);
  const [, dbName, tablesSegment, tableName, rowsSegment, rowKey] = rest.map(decode);
  const now = Date.now();
  // /raw/dbs, /raw/dbs/delete
  if (rest.length === 1 && method === 'GET')
    return call.json(
      200,
      paged(
        [...store.dbs.keys()].map((name) => ({ name })),
        q.get('limit'),
        q.get('cursor'),
        1000,
      ),
    );
  if (rest.length === 1 && method === 'POST') {
    const wanted = names(await readJson(call.req));
    const duplicated = wanted.filter((n, i) => store.dbs.has(n) || wanted.indexOf(n) !== i).map((name) => ({ name }));
    if (duplicated.length > 0) throw new HttpError(400, 'Databases already created', { duplicated });
    for (const name of wanted) store.dbs.set(name, { tables: new Map(), createdTime: now });
    return call.json(200, { items: wanted.map((name) => ({ name })) });
  }
  if (rest.length === 2 && dbName === 'delete' && method === 'POST') {
    const body = await readJson(call.req);
    const wanted = names(body);
    const missing = wanted.filter((n) => !store.dbs.has(n)).map((name) => ({ name }));
    if (missing.length > 0) throw new HttpError(404, 'Databases not found', { missing });
    for (const name of wanted) {
      const db = store.dbs.get(name) as Database;
      if (db.tables.size > 0 && body.recursive !== true)
        throw new HttpError(400, `Database ${name} has tables: delete them first or set "recursive": true`);
    }
    for (const name of wanted) {
      for (const table of (store.dbs.get(name) as Database).tables.values()) store.rows -= table.size;
      store.dbs.delete(name);
    }
    return call.send(200, '{}');
  }
  if (tablesSegment !== 'tables' || dbName === undefined)
    throw new HttpError(404, `Unknown path: ${method} raw/${rest.join('/')}`);
  const ensureParent = q.get('ensureParent') === 'true';
  let db = store.dbs.get(dbName);
  if (!db && ensureParent && method === 'POST') {
    db = { tables: new Map(), createdTime: now };
    store.dbs.set(dbName, db);
  }
  if (!db) throw new HttpError(404, `Database not found: ${dbName}`, { missing: [{ name: dbName }] });
  // /raw/dbs/{db}/tables, /raw/dbs/{db}/tables/delete
  if (rest.length === 3 && method === 'GET')
    return call.json(
      200,
      paged(
        [...db.tables.keys()].map((name) => ({ name })),
        q.get('limit'),
        q.get('cursor'),
        1000,
      ),
    );
  if (rest.length === 3 && method === 'POST') {
    const wanted = names(await readJson(call.req));
    const duplicated = wanted.filter((n, i) => db.tables.has(n) || wanted.indexOf(n) !== i).map((name) => ({ name }));
    if (duplicated.length > 0) throw new HttpError(400, 'Tables already created', { duplicated });
    for (const name of wanted) db.tables.set(name, new Map());
    return call.json(200, { items: wanted.map((name) => ({ name })) });
  }
  if (rest.length === 4 && tableName === 'delete' && method === 'POST') {
    const wanted = names(await readJson(call.req));
    const missing = wanted.filter((n) => !db.tables.has(n)).map((name) => ({ name }));
    if (missing.length > 0) throw new HttpError(404, 'Tables not found', { missing });
    for (const name of wanted) {
      store.rows -= (db.tables.get(name) as Table).size;
      db.tables.delete(name);
    }
    return call.send(200, '{}');
  }
  if (tableName === undefined || rowsSegment !== 'rows')
    throw new HttpError(404, `Unknown path: ${method} raw/${rest.join('/')}`);
  let table = db.tables.get(tableName);
  if (!table && ensureParent && method === 'POST') {
    table = new Map();
    db.tables.set(tableName, table);
  }
  if (!table) throw new HttpError(404, `Table not found: ${dbName}/${tableName}`, { missing: [{ name: tableName }] });
  // /raw/dbs/{db}/tables/{t}/rows, .../rows/delete, .../rows/{key}
  if (rest.length === 5 && method === 'GET') {
    const min = Number(q.get('minLastUpdatedTime') ?? Number.NEGATIVE_INFINITY);
    const max = Number(q.get('maxLastUpdatedTime') ?? Number.POSITIVE_INFINITY);
    const columns = q.get('columns');
    const pick = columns === null ? null : columns.split(',').filter(Boolean);
    const rows = [...table.values()]
      .filter((r) => r.lastUpdatedTime >= min && r.lastUpdatedTime <= max)
      .map((r) => (pick === null ? r : { ...r, columns: Object.fromEntries(pick.map((c) => [c, r.columns[c]])) }));
    return call.json(200, paged(rows, q.get('limit'), q.get('cursor'), 10_000));
  }
  if (rest.length === 5 && method === 'POST') {
    const items = itemsOf(await readJson(call.req), 10_000);
    const rows = items.map((item): Row => {
      if (typeof item.key !== 'string' || item.key === '') throw new HttpError(400, 'Each row needs a non-empty key');
      if (item.columns === null || typeof item.columns !== 'object' || Array.isArray(item.columns))
        throw new HttpError(400, 'Each row needs a columns object');
      return { key: item.key, columns: item.columns as Record<string, unknown>, lastUpdatedTime: now };
    });
    const added = rows.filter((r) => !table.has(r.key)).length;
    if (store.rows + added > MAX_ROWS) throw new HttpError(400, `The simulator holds at most ${MAX_ROWS} rows`);
    for (const row of rows) {
      if (!table.has(row.key)) store.rows++;
      table.set(row.key, row);
    }
    return call.send(200, '{}');
  }
  if (rest.length === 6 && rowKey === 'delete' && method === 'POST') {
    for (const item of itemsOf(await readJson(call.req), 10_000)) {
      if (typeof item.key === 'string' && table.delete(item.key)) store.rows--;
    }
    return call.send(200, '{}');
  }
  if (rest.length === 6 && method === 'GET') {
    const row = table.get(rowKey);
    if (!row) throw new HttpError(404, `Row not found: ${rowKey}`, { missing: [{ key: rowKey }] });
    return call.json(200, row);
  }
  throw new HttpError(404, `Unknown path: ${method} raw/${rest.join('/')}`);
}
