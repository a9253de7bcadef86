import type { GatewayError } from '../errors.js';
import type { Exchange } from './exchange.js';
import type { UpstreamAnswer } from './types.js';

const noop = () => {};

/** Writes the answer; the body streams with backpressure and is dropped if the app goes away. */
export function sendAnswer(ex: Exchange, answer: UpstreamAnswer): void {
  const res = ex.res;
  ex.status = answer.status;
  if (res.destroyed) {
    if (!Buffer.isBuffer(answer.body)) answer.body.destroy();
    return;
  }
  res.writeHead(answer.status, answer.headers);
  if (Buffer.isBuffer(answer.body)) {
    res.end(answer.body);
    return;
  }
  // pipe() rather than stream.pipeline(), which makes an AbortController and a DOMException per call. The app
  // going away destroys the body in the record stage (Pipeline); a body that breaks off ends the app's
  // connection here.
  const body = answer.body;
  body.once('error', (err: NodeJS.ErrnoException) => {
    ex.error ??= `response stream: ${err.code ?? err.message}`;
    res.destroy();
  });
  body.pipe(res);
}

/** The gateway's own answer, in CDF's error shape, with the request id the app can quote. */
export function sendError(
  ex: Exchange,
  err: GatewayError,
  headers: Readonly<Record<string, string>> = err.headers,
): void {
  const res = ex.res;
  ex.status = err.status;
  ex.error ??= err.message;
  ex.errorCode ??= err.code;
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = err.body();
  res.writeHead(err.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': ex.requestId,
    ...headers,
  });
  res.end(body, noop);
}
