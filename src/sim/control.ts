import { readJson } from './body.js';
import type { Core } from './core.js';
import { checkFault, SimInputError } from './options.js';
import { type Call, HttpError } from './reply.js';

/** /_sim/*: the Simulator methods over HTTP, for the demo and other processes. No token, never throttled. */
export async function control(core: Core, call: Call, method: string, path: string, query = ''): Promise<void> {
  try {
    switch (`${method} ${path}`) {
      case 'GET /_sim/stats':
        // ?requests=0 leaves out the last requests: a benchmark reading the counters every second skips them.
        return call.json(200, core.stats.snapshot(new URLSearchParams(query).get('requests') !== '0'));
      case 'POST /_sim/reset':
        await readJson(call.req);
        core.reset();
        return call.send(200, '{}');
      case 'POST /_sim/faults': {
        const fault = checkFault(await readJson(call.req));
        core.faults.add(fault);
        return call.json(200, fault);
      }
      case 'GET /_sim/options':
        return call.json(200, core.options);
      case 'POST /_sim/options':
        core.update(await readJson(call.req));
        // JSON has no Infinity: unlimited limit fields come back as null, which the setter reads as unlimited.
        return call.json(200, core.options);
    }
    throw new HttpError(404, `Unknown path: ${method} ${path}`);
  } catch (err) {
    call.fail(err instanceof SimInputError ? new HttpError(400, err.message) : err);
  }
}
