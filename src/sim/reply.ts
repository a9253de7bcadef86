import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Stats } from './stats.js';
import type { IdentityStats } from './types.js';

/** Thrown by handlers; answered in CDF's error shape. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export function errorBody(status: number, message: string, extra?: Record<string, unknown>): string {
  return JSON.stringify({ error: { code: status, message, ...extra } });
}

/** One request and its answer; counts 2xx answers for /api calls (stats is undefined for /_sim control calls). */
export class Call {
  identity: IdentityStats | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly requestId: string,
    private readonly stats: Stats | undefined,
  ) {}

  /** Call before writing the status line of any answer, including streamed ones. */
  counted(status: number): void {
    if (status >= 200 && status < 300 && this.stats) {
      this.stats.ok++;
      if (this.identity) this.identity.ok++;
    }
  }

  send(status: number, body: string | Buffer, headers?: OutgoingHttpHeaders): void {
    const res = this.res;
    // The client may have gone while we waited (latency, slow, fault delay).
    if (res.headersSent || res.destroyed) return;
    this.counted(status);
    const head: OutgoingHttpHeaders = {
      'content-type': 'application/json',
      'content-length': typeof body === 'string' ? Buffer.byteLength(body) : body.length,
      'x-request-id': this.requestId,
    };
    res.writeHead(status, headers ? Object.assign(head, headers) : head);
    res.end(body);
  }

  json(status: number, value: unknown): void {
    this.send(status, JSON.stringify(value));
  }

  error(status: number, message: string, extra?: Record<string, unknown>, headers?: OutgoingHttpHeaders): void {
    this.send(status, errorBody(status, message, extra), headers);
  }

  fail(err: unknown): void {
    if (err instanceof HttpError) this.error(err.status, err.message, err.extra);
    else this.error(500, `Simulator error: ${err instanceof Error ? err.message : String(err)}`);
  }
}
