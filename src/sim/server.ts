import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse, STATUS_CODES } from 'node:http';
import { performance } from 'node:perf_hooks';
import { classify } from './classify.js';
import { control } from './control.js';
import type { Core } from './core.js';
import { isKind } from './data.js';
import { simHelper } from './helpers.js';
import { budgetKeyOf, identityOf } from './identity.js';
import { raw } from './raw.js';
import { refusalBody, refusalMessage } from './refusal.js';
import { Call, HttpError } from './reply.js';
import { resources } from './resources.js';
import { type Held, isRejection } from './throttle.js';
import type { Fault, IdentityStats } from './types.js';

/** The node:http request listener: /_sim/* control, /api/* CDF, everything else 404. */
export function createHandler(core: Core): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && given !== '' ? given : randomUUID();
    if (path.startsWith('/api/')) {
      api(core, new ApiCall(req, res, requestId, core), url, path, q === -1 ? '' : url.slice(q + 1));
      return;
    }
    const call = new Call(req, res, requestId, undefined);
    if (path.startsWith('/_sim/'))
      void control(core, call, req.method ?? 'GET', path, q === -1 ? '' : url.slice(q + 1));
    else call.error(404, `Unknown path: ${path}`);
  };
}

/** An /api call: counted in flight, holding its throttle slots, until the response has closed. */
class ApiCall extends Call {
  private held: Held | undefined;
  /** "assets/crud" etc. when the simulator gave the call a class. */
  private cls: IdentityStats | undefined;
  /** "POST /assets/byids" etc. */
  private op: IdentityStats | undefined;

  constructor(req: IncomingMessage, res: ServerResponse, requestId: string, core: Core) {
    super(req, res, requestId, core.stats);
    res.once('close', () => {
      core.stats.end();
      if (this.held) core.throttle.release(this.held);
    });
  }

  override counted(status: number): void {
    super.counted(status);
    if (status >= 200 && status < 300) {
      if (this.cls) this.cls.ok++;
      if (this.op) this.op.ok++;
    }
  }

  /**
   * True when admitted; otherwise the 429 is (or will be) answered. `segments`: the path after the project.
   * Per-identity budgets are keyed by the identity's hash, as CDF keys them by principal, never by raw token.
   */
  admit(core: Core, project: string, identity: string, segments: string[]): boolean {
    const o = core.options;
    const method = this.req.method ?? 'GET';
    const c = classify(method, segments);
    this.op = core.stats.operation(method, segments);
    this.op.calls++;
    if (c.cls !== undefined) {
      this.cls = core.stats.classOf(`${c.api}/${c.cls}`);
      this.cls.calls++;
    }
    const result = core.throttle.admit(
      core.plan.budgetsOf(method, segments, c),
      project,
      budgetKeyOf(identity),
      o.chargeThrottled,
      performance.now(),
    );
    if (!isRejection(result)) {
      if (result.length > 0) this.held = result;
      return true;
    }
    core.stats.throttle(result.by);
    this.op.throttled++;
    if (this.cls) this.cls.throttled++;
    if (this.identity) this.identity.throttled++;
    const [body, type] = refusalBody(refusalMessage(result, o), o);
    const headers = o.retryAfterSeconds === null ? type : { ...type, 'retry-after': String(o.retryAfterSeconds) };
    later(core, () => this.send(429, body, headers));
    return false;
  }
}

function later(core: Core, fn: () => void, ms = core.options.latencyMs): void {
  if (ms > 0) setTimeout(fn, ms);
  else fn();
}

function api(core: Core, call: ApiCall, url: string, path: string, query: string): void {
  const method = call.req.method ?? 'GET';
  core.stats.begin(method, url, path, call.req.headers);
  const identity = identityOf(call.req.headers.authorization);
  if (identity === undefined) {
    later(core, () => call.error(401, 'Unauthorized'));
    return;
  }
  call.identity = core.stats.identity(identity);
  call.identity.calls++;
  const proceed = () => route(core, call, method, identity, path, query);
  const fault = core.faults.take(method, path);
  if (fault === undefined) {
    proceed();
    return;
  }
  core.stats.faults++;
  if (fault.delayMs) setTimeout(() => injected(core, call, fault, proceed), fault.delayMs);
  else injected(core, call, fault, proceed);
}

function route(core: Core, call: ApiCall, method: string, identity: string, path: string, query: string): void {
  // ['', 'api', 'v1', 'projects', project, family, ...rest]
  const segments = path.split('/');
  if (segments[2] === 'v1' && segments[3] === 'token' && segments[4] === 'inspect' && segments.length === 5) {
    later(core, () => call.json(200, { subject: identity, projects: [], capabilities: [] }));
    return;
  }
  const project = segments[4];
  const family = segments[5];
  if (segments[2] !== 'v1' || segments[3] !== 'projects' || !project || !family) {
    later(core, () => call.error(404, `Unknown path: ${path}`));
    return;
  }
  const after = segments.slice(5);
  if (family !== '_sim' && !call.admit(core, project, identity, after)) return;
  const ms = core.latency.msOf(method, after);
  later(
    core,
    () => dispatch(core, call, method, family, after.slice(1), query, ms).catch((err: unknown) => call.fail(err)),
    ms,
  );
}

async function dispatch(
  core: Core,
  call: Call,
  method: string,
  family: string,
  rest: string[],
  query: string,
  ms: number,
) {
  if (isKind(family)) return resources(call, core, method, family, rest, query);
  if (family === 'raw') return raw(call, core.raw, method, rest, query);
  if (family === 'functions') return core.functions.route(call, method, rest, ms);
  if (family === '_sim') return simHelper(call, method, rest, query);
  throw new HttpError(404, `Unknown path: ${method} ${family}/${rest.join('/')}`);
}

function injected(core: Core, call: Call, fault: Fault, proceed: () => void): void {
  if (fault.reset) {
    resetConnection(call, fault.afterHeaders === true);
    return;
  }
  const status = fault.status;
  if (status === undefined) {
    proceed();
    return;
  }
  const headers: OutgoingHttpHeaders = {};
  if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter;
  if (fault.autoRetryable) headers['cdf-is-auto-retryable'] = 'true';
  const extra = fault.autoRetryable ? { isAutoRetryable: true } : undefined;
  later(core, () => call.error(status, `Injected fault: ${STATUS_CODES[status] ?? status}`, extra, headers));
}

// Long enough for the partial body to reach the client before the RST, which would discard it in flight.
const PARTIAL_BODY_GRACE_MS = 20;

/** An RST rather than a FIN: the client sees ECONNRESET, as with a proxy or load balancer dying. */
function resetConnection(call: Call, afterHeaders: boolean): void {
  const { res } = call;
  const socket = res.socket;
  if (!socket || socket.destroyed) return;
  if (!afterHeaders || res.headersSent) {
    socket.resetAndDestroy();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': 4096, 'x-request-id': call.requestId });
  res.write('{"items":[{"id":1,"externalId":"asset-1","name":', () => {
    setTimeout(() => {
      if (!socket.destroyed) socket.resetAndDestroy();
    }, PARTIAL_BODY_GRACE_MS);
  });
}
