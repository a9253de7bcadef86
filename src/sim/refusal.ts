import type { OutgoingHttpHeaders } from 'node:http';
import { errorBody } from './reply.js';
import type { Rejection } from './throttle.js';
import type { SimOptions } from './types.js';

type RefusalOptions = Pick<SimOptions, 'figures' | 'statesFigures' | 'wording' | 'throttleBody'>;

/** Whether the 429 for `r` names its figure: the budget's own choice, else `statesFigures`, else `figures`. */
export function statesFigure(r: Rejection, o: Pick<SimOptions, 'figures' | 'statesFigures'>): boolean {
  const own = r.budget.figures?.[r.kind];
  if (own !== undefined) return own === 'always';
  if (!o.statesFigures) return false;
  if (r.kind === 'concurrency') return o.figures.concurrency === 'always';
  return o.figures.rate === 'always' || (o.figures.rate === 'budget' && r.budget.statesRate);
}

/**
 * CDF's words ("Project exceeded maximum number='30' of requests per second. Please try again later."), or
 * another service's that names the figure elsewhere ("Rate limit of 30 requests/s exceeded for project").
 */
export function refusalMessage(r: Rejection, o: Pick<RefusalOptions, 'figures' | 'statesFigures' | 'wording'>) {
  const stated = statesFigure(r, o);
  if (o.wording === 'alternate') {
    const who = r.scope === 'Project' ? 'project' : 'identity';
    if (r.kind === 'rate')
      return stated ? `Rate limit of ${r.figure} requests/s exceeded for ${who}` : `Rate limit exceeded for ${who}`;
    const whose = r.scope === 'Project' ? '' : ' for this identity';
    return stated ? `Too many concurrent requests${whose} (max ${r.figure})` : `Too many concurrent requests${whose}`;
  }
  if (r.kind === 'rate') {
    return stated
      ? `${r.scope} exceeded maximum number='${r.figure}' of requests per second. Please try again later.`
      : `${r.scope} exceeded the request rate limit. Please try again later.`;
  }
  return stated
    ? `${r.scope} exceeded maximum number='${r.figure}' of concurrent requests. Please try again later.`
    : `${r.scope} exceeded the concurrent requests limit. Please try again later.`;
}

// Past the 64 KiB a reader may stop at; the padding comes before the message so the message lies beyond it.
const PADDING = 'x'.repeat(70 * 1024);

/** The body and content type of a throttle 429. */
export function refusalBody(message: string, o: Pick<RefusalOptions, 'throttleBody'>): [string, OutgoingHttpHeaders] {
  if (o.throttleBody === 'text') return [`Too many requests: ${message}`, TEXT];
  if (o.throttleBody === 'large-json') {
    return [`{"error":{"code":429,"padding":"${PADDING}","message":${JSON.stringify(message)}}}`, JSON_TYPE];
  }
  return [errorBody(429, message), JSON_TYPE];
}

const TEXT: OutgoingHttpHeaders = Object.freeze({ 'content-type': 'text/plain; charset=utf-8' });
const JSON_TYPE: OutgoingHttpHeaders = Object.freeze({ 'content-type': 'application/json' });
