import { Readable } from 'node:stream';
import type { UpstreamResponse } from './upstream.js';

/** Failed answers up to this size are read whole to decide on them; larger ones go on to the app as they come. */
const INSPECT_LIMIT = 65_536;

/**
 * Reads a failed answer's body to decide on it (retry, learn from a 429): whole when it is at most
 * INSPECT_LIMIT, else a stream of what was read and the rest, so the app still gets CDF's bytes. Null when it
 * is not read: the request cannot be sent again anyway, or CDF declared the body larger than the limit.
 */
export function inspectBody(res: UpstreamResponse, replayable: boolean): Promise<Buffer | Readable> | null {
  const declared = res.headers['content-length'];
  if (!replayable || (declared !== undefined && Number(declared) > INSPECT_LIMIT)) return null;
  return readUpTo(res.body, INSPECT_LIMIT);
}

async function readUpTo(body: Readable, limit: number): Promise<Buffer | Readable> {
  const head: Buffer[] = [];
  let size = 0;
  const it = body[Symbol.asyncIterator]();
  for (;;) {
    const next = await it.next();
    if (next.done) return Buffer.concat(head, size);
    head.push(next.value as Buffer);
    size += (next.value as Buffer).length;
    if (size > limit) {
      async function* replay() {
        yield* head;
        for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
      }
      return Readable.from(replay(), { objectMode: false });
    }
  }
}
