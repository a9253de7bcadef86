import { HttpError } from './reply.js';

/** A limit from a query string or JSON body; absent means `fallback`. */
export function limitOf(raw: unknown, fallback: number, max: number): number {
  if (raw === undefined || raw === null || raw === '') return fallback;
  const n = typeof raw === 'string' && /^-?[0-9]+$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max) {
    throw new HttpError(400, `Invalid limit '${String(raw)}': must be an integer between 1 and ${max}`);
  }
  return n;
}

export function optionalString(raw: unknown, name: string): string | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') throw new HttpError(400, `${name} must be a string`);
  return raw;
}

/** The `items` array of a request body, 1..max long, every element an object. */
export function itemsOf(body: Record<string, unknown>, max: number): Record<string, unknown>[] {
  const items = body.items;
  if (!Array.isArray(items) || items.length < 1 || items.length > max) {
    throw new HttpError(400, `items must be an array of 1 to ${max} objects`);
  }
  for (const item of items) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw new HttpError(400, 'items must be an array of objects');
    }
  }
  return items as Record<string, unknown>[];
}

/** `{id}` or `{externalId}` as sent, for CDF's `missing` list. */
export type Ref = { id: number } | { externalId: string };

export function refOf(item: Record<string, unknown>): Ref {
  if (typeof item.id === 'number' && Number.isInteger(item.id)) return { id: item.id };
  if (typeof item.externalId === 'string') return { externalId: item.externalId };
  throw new HttpError(400, 'Each item needs an integer id or a string externalId');
}
