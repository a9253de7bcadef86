import { Readable } from 'node:stream';

/** The upstream body read whole, or too large (handed on as a stream), or broken off. */
export type Collected =
  | { kind: 'whole'; body: Buffer }
  | { kind: 'over'; stream: Readable }
  | { kind: 'error'; error: Error };

/**
 * Reads a body into memory up to `limit` bytes. Past the limit it stops buffering and returns a stream
 * of the bytes read so far followed by the rest, with backpressure, so memory stays bounded.
 */
export function collect(body: Readable | Buffer, limit: number): Promise<Collected> {
  if (Buffer.isBuffer(body)) {
    return Promise.resolve(
      body.length <= limit
        ? { kind: 'whole', body }
        : { kind: 'over', stream: Readable.from([body], { objectMode: false }) },
    );
  }
  if (body.destroyed || body.readableEnded) {
    return Promise.resolve({ kind: 'error', error: new Error('the body was already consumed or destroyed') });
  }
  return new Promise<Collected>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: Collected) => {
      if (done) return;
      done = true;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buf.length;
      chunks.push(buf);
      if (size > limit) {
        body.pause();
        finish({ kind: 'over', stream: new Rejoined(chunks, body) });
      }
    };
    const onEnd = () => finish({ kind: 'whole', body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size) });
    const onError = (error: Error) => finish({ kind: 'error', error });
    const onClose = () => finish({ kind: 'error', error: new Error('premature close') });
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
  });
}

/** The chunks already read, then the rest of `source`; destroying it destroys the source. */
class Rejoined extends Readable {
  private ended = false;

  constructor(
    head: Buffer[],
    private readonly source: Readable,
  ) {
    super();
    for (const chunk of head) this.push(chunk);
    source.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) source.pause();
    });
    source.once('end', () => {
      this.ended = true;
      this.push(null);
    });
    source.once('error', (err) => this.destroy(err));
    source.once('close', () => {
      if (!this.ended) this.destroy(new Error('premature close'));
    });
  }

  override _read(): void {
    this.source.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.ended) this.source.destroy();
    callback(err);
  }
}
