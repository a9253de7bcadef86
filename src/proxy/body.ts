import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { GatewayErrors } from '../errors.js';
import type { BufferBudget } from './buffer-budget.js';

/**
 * A request body: none, read whole (can be sent again), sent as it arrives and kept (can be sent again once
 * it has all arrived), or streamed through as it arrives (cannot).
 */
export type RequestBody = null | HeldBody | TeeBody | Readable;

const EMPTY = Buffer.alloc(0);

/**
 * A body read whole, kept as the chunks it arrived in. It goes upstream as those chunks, so an upload is
 * never copied (a join would hold the chunks and the copy at once, twice the budget at the peak). It is
 * joined into one Buffer once, and only when something reads it whole (a cache key, the partition check of
 * a read). A retry sends the same chunks.
 */
export class HeldBody {
  private joined: Buffer | null;

  constructor(
    private readonly chunks: readonly Buffer[],
    readonly length: number,
  ) {
    this.joined = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0] : null;
  }

  /** The whole body as one Buffer (joined on first use). */
  bytes(): Buffer {
    this.joined ??= Buffer.concat(this.chunks, this.length);
    return this.joined;
  }

  /** What undici sends: one Buffer when there is one (written at once), else the chunks, written in turn. */
  get payload(): Buffer | readonly Buffer[] {
    return this.joined ?? this.chunks;
  }
}

/**
 * A write's body sent upstream as it arrives and kept, so that a retry (after a 429) can send it again. The
 * upload and the call overlap as in a plain proxy, so a queued upload holds no memory before its turn and
 * the call does not wait for the whole upload. It is taken only for writes with a declared length: a read's
 * body is read first, because its partition and cache key are checked before it queues. While it is still
 * arriving, the app's upload holds the call's slot as any streamed body does, and the idle watchdog ends it
 * if it stalls.
 *
 * The first pass sends the app's chunks themselves and copies each into `kept`, a buffer of the budget's
 * (BufferBudget.takeUploadBuffer) reused by later uploads, so that the chunks die young as in a plain proxy
 * rather than being kept until the call ends. A retry sends views of `kept`: undici may hold them after the
 * call, so a buffer lent to a retry is not reused.
 */
export class TeeBody {
  /** The bytes that have arrived are kept[0, size). null once released. */
  private kept: Buffer | null;
  private size = 0;
  /** Whether views of `kept` went upstream. */
  private lent = false;
  /** What is left of the app's upload; null once it has all arrived. */
  private source: AsyncIterator<Buffer> | null;

  constructor(req: IncomingMessage, kept: Buffer) {
    this.kept = kept;
    this.source = req[Symbol.asyncIterator]();
  }

  /** Whether every byte has arrived (and a retry can send it again). */
  get arrived(): boolean {
    return this.source === null;
  }

  /**
   * One attempt's pass over the body: what has arrived so far (a retry), then the rest as it arrives. The
   * kept bytes go first, so a pass that starts after finish() pulled (or while it pulls) sends them in order.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (let sent = 0; ; ) {
      if (sent < this.size && this.kept !== null) {
        this.lent = true;
        const view = this.kept.subarray(sent, this.size);
        sent = this.size;
        yield view;
        continue;
      }
      const chunk = await this.pull();
      if (chunk === null) {
        if (sent >= this.size) return;
        continue;
      }
      // Pulled here and nowhere else in between: it is kept[sent, size), sent as it came.
      if (this.size - chunk.length === sent) {
        sent = this.size;
        yield chunk;
      }
    }
  }

  /** Reads the rest of the upload, so that the body can be sent again. Rejects if the app goes away. */
  async finish(): Promise<void> {
    while ((await this.pull()) !== null);
  }

  /**
   * The call is done: its buffer, for reuse when no view of it went upstream, else null (and no later chunk
   * is copied into it).
   */
  release(): Buffer | null {
    const kept = this.kept;
    this.kept = null;
    return this.lent ? null : kept;
  }

  /** Copies the app's next chunk into the kept bytes and returns it; null when the upload has ended. */
  private async pull(): Promise<Buffer | null> {
    if (this.source === null) return null;
    const next = await this.source.next();
    if (this.kept === null) throw new Error('the call is over');
    if (next.done) {
      this.source = null;
      return null;
    }
    const chunk = next.value as Buffer;
    this.size += chunk.copy(this.kept, this.size);
    return chunk;
  }
}

/** Who holds the bytes taken from the budget, to give them back when the request is done. */
export interface BufferHolder {
  bufferedBytes: number;
}

/**
 * Reads the body whole when it is at most `bufferUpTo` bytes and its bytes fit in the shared `budget`, so
 * that it can be retried and keyed; other bodies stream straight through (not read before their turn
 * upstream, so a queue of large uploads holds no memory), still held to `limit`. A declared
 * Content-Length over the limit was refused before reading. The bytes taken are recorded on `holder`.
 * A body of a declared `teeFrom` bytes or more that would be kept is a TeeBody instead: kept as it goes
 * upstream, not read before.
 */
export function readRequestBody(
  req: IncomingMessage,
  bufferUpTo: number,
  limit: number,
  budget: BufferBudget,
  holder: BufferHolder,
  teeFrom = Number.POSITIVE_INFINITY,
): Promise<RequestBody> {
  const declared = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (declared === undefined && !chunked) return Promise.resolve(null);
  const length = declared === undefined ? -1 : Number(declared);
  if (length > bufferUpTo) return Promise.resolve(limited(req, [], 0, limit));
  if (length >= teeFrom) {
    const kept = budget.takeUploadBuffer(length);
    if (kept === null) return Promise.resolve(limited(req, [], 0, limit));
    holder.bufferedBytes += kept.length;
    return Promise.resolve(new TeeBody(req, kept));
  }
  if (length >= 0) {
    if (!budget.tryTake(length)) return Promise.resolve(limited(req, [], 0, limit));
    holder.bufferedBytes += length;
  }
  return new Promise<RequestBody>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
      if (length < 0 && size <= bufferUpTo) {
        // A chunked body takes from the budget as it arrives; when it no longer fits, it streams.
        if (budget.tryTake(chunk.length)) holder.bufferedBytes += chunk.length;
        else {
          cleanup();
          req.pause();
          resolve(limited(req, chunks, size, limit));
          return;
        }
      }
      if (size > limit) {
        // Checked on every chunk: the limit may be below bufferUpTo (a chunked body has no declared size).
        cleanup();
        req.pause();
        reject(new GatewayErrors.BODY_TOO_LARGE(limit));
      } else if (size > bufferUpTo) {
        // Too big to keep: stream what was read and the rest.
        cleanup();
        req.pause();
        resolve(limited(req, chunks, size, limit));
      }
    };
    const onEnd = () => {
      cleanup();
      resolve(new HeldBody(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(new GatewayErrors.BODY_INCOMPLETE());
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function limited(req: IncomingMessage, head: Buffer[], already: number, limit: number): Readable {
  if (head.length === 0 && req.headers['content-length'] !== undefined) return req;
  const out = new PassThrough();
  for (const chunk of head) out.write(chunk);
  let size = already;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > limit) {
      out.destroy(new GatewayErrors.BODY_TOO_LARGE(limit));
      req.destroy();
      return;
    }
    if (!out.write(chunk)) req.pause();
  });
  out.on('drain', () => req.resume());
  req.on('end', () => out.end());
  req.on('error', (err) => out.destroy(err));
  req.resume();
  return out;
}
