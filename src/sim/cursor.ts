/** A contiguous id range still to be listed, both ends inclusive. */
export interface IdRange {
  next: number;
  end: number;
}

// Cursors are opaque to clients; carrying the partition end lets a cursor alone continue a partition.
export function encodeCursor(range: IdRange): string {
  return Buffer.from(`${range.next}:${range.end}`).toString('base64url');
}

export function decodeCursor(cursor: string, count: number): IdRange | undefined {
  const m = /^([0-9]{1,15}):([0-9]{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  if (!m) return undefined;
  const next = Number(m[1]);
  const end = Math.min(Number(m[2]), count);
  return next >= 1 && next <= end + 1 ? { next, end } : undefined;
}

/** "m/n" (1-based m): the m-th of n contiguous slices of 1..count; undefined when malformed. */
export function parsePartition(partition: string, count: number): IdRange | undefined {
  const m = /^([0-9]{1,6})\/([0-9]{1,6})$/.exec(partition);
  if (!m) return undefined;
  const part = Number(m[1]);
  const parts = Number(m[2]);
  if (part < 1 || parts < 1 || part > parts) return undefined;
  return { next: Math.floor(((part - 1) * count) / parts) + 1, end: Math.floor((part * count) / parts) };
}

/** Datapoint cursors carry the next timestamp; the client repeats start/end with them. */
export function encodeTimeCursor(timestamp: number): string {
  return Buffer.from(`t${timestamp}`).toString('base64url');
}

export function decodeTimeCursor(cursor: string): number | undefined {
  const m = /^t(-?[0-9]{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  return m ? Number(m[1]) : undefined;
}
