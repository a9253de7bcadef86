import { readJson } from './body.js';
import { type Call, HttpError } from './reply.js';

// Calls are kept so they can be read back; a benchmark calling for minutes must not grow memory.
const MAX_CALLS = 10_000;
const FIRST_CALL_ID = 1;

/**
 * Function calls: `POST /functions/{id}/call` answers the finished call (after its route latency, which
 * stands in for the function's run time), `GET /functions/{id}/calls/{callId}` reads it back. Every function
 * id exists, as every project does.
 */
export class FunctionCalls {
  private readonly calls = new Map<number, { functionId: number; json: string }>();
  private nextId = FIRST_CALL_ID;

  /** `rest` is the path after `functions`; `ranMs` the time the call was held (its route latency). */
  async route(call: Call, method: string, rest: string[], ranMs: number): Promise<void> {
    const functionId = idOf(rest[0]);
    if (functionId !== undefined && method === 'POST' && rest.length === 2 && rest[1] === 'call') {
      await readJson(call.req);
      return call.send(201, this.record(functionId, ranMs));
    }
    if (functionId !== undefined && method === 'GET' && rest.length === 3 && rest[1] === 'calls') {
      const callId = idOf(rest[2]);
      const found = callId === undefined ? undefined : this.calls.get(callId);
      if (found === undefined || found.functionId !== functionId) {
        throw new HttpError(400, 'Function call not found', { missing: [{ id: callId ?? rest[2] }] });
      }
      return call.send(200, found.json);
    }
    throw new HttpError(404, `Unknown path: ${method} functions/${rest.join('/')}`);
  }

  clear(): void {
    this.calls.clear();
    this.nextId = FIRST_CALL_ID;
  }

  private record(functionId: number, ranMs: number): string {
    const id = this.nextId++;
    const endTime = Date.now();
    const json = JSON.stringify({ id, status: 'Completed', startTime: endTime - ranMs, endTime, functionId });
    if (this.calls.size >= MAX_CALLS) {
      const oldest = this.calls.keys().next().value;
      if (oldest !== undefined) this.calls.delete(oldest);
    }
    this.calls.set(id, { functionId, json });
    return json;
  }
}

function idOf(segment: string | undefined): number | undefined {
  return segment !== undefined && /^[0-9]{1,15}$/.test(segment) ? Number(segment) : undefined;
}
