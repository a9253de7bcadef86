import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Core } from './core.js';
import { checkFault, checkOptions, DEFAULT_OPTIONS } from './options.js';
import { createHandler } from './server.js';
import type { Fault, SimOptions, Simulator } from './types.js';

export type { OpClass } from './classify.js';
export { SimInputError } from './options.js';
export type {
  Fault,
  IdentityStats,
  RequestRecord,
  SimLimit,
  SimOptions,
  SimStats,
  SimTight,
  Simulator,
} from './types.js';

/** Starts a local stand-in for the parts of CDF the gateway uses; see types.ts for the options. */
export async function startSimulator(options: Partial<SimOptions> = {}): Promise<Simulator> {
  const opts: SimOptions = { ...DEFAULT_OPTIONS, ...checkOptions(options) };
  const core = new Core(opts);
  const server = createServer(createHandler(core));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  opts.port = address.port;
  return {
    url: `http://${urlHost(address)}:${address.port}`,
    options: opts,
    update: (partial) => core.update(partial),
    stats: () => core.stats.snapshot(),
    reset: () => core.reset(),
    inject: (fault: Fault) => core.faults.add(checkFault(fault)),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** A wildcard bind is reachable on loopback; IPv6 literals need brackets in a URL. */
function urlHost(address: AddressInfo): string {
  if (address.address === '0.0.0.0') return '127.0.0.1';
  if (address.address === '::') return '[::1]';
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}
