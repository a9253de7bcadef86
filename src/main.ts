#!/usr/bin/env -S node --v8-pool-size=1
import { parseArgs } from 'node:util';
import { buildGateway } from './app.js';
import { ConfigError, ConfigReloader, loadConfig } from './config/index.js';
import { cliHeapPolicy } from './heap.js';

const HELP = `Usage: cdf-gateway [--config FILE]   (npm start -- [options])

A reverse proxy in front of Cognite Data Fusion's REST API: point your apps' CDF base URL at it and
they share the project's quota as one good citizen.

Options:
  -c, --config FILE   YAML settings layered over config/default.yaml (wins over GATEWAY_CONFIG)
  -h, --help          show this help and exit

Environment (wins over every file):
  GATEWAY_CONFIG      the settings file, when --config is not given
  CDF_BASE_URL        upstream.baseUrl, the CDF cluster (default https://api.cognitedata.com)
  HOST, PORT          server.host and server.port (default 127.0.0.1:8080)
  LOG_LEVEL           log.level: fatal, error, warn, info, debug, trace or silent

Every key, with its default and meaning: config/default.yaml. A configuration problem is reported
with the key (or variable) that caused it, all problems at once, and exit code 2.
`;

/** Start-up problems an operator must fix get exit code 2 and a message naming each key. */
function startupFailure(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`cdf-gateway: ${err instanceof ConfigError ? 'configuration error: ' : ''}${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let configFile: string | undefined;
  try {
    const { values } = parseArgs({
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(HELP);
      return;
    }
    configFile = values.config;
  } catch (err) {
    startupFailure(new ConfigError(`command line: ${(err as Error).message} (see --help)`));
  }
  let gateway: Awaited<ReturnType<typeof buildGateway>>;
  try {
    const config = loadConfig({ file: configFile });
    gateway = await buildGateway(config, { heapPolicy: cliHeapPolicy() });
  } catch (err) {
    startupFailure(err);
  }
  try {
    const url = await gateway.listen();
    gateway.log.info({ url, upstream: gateway.config.upstream.baseUrl }, 'cdf-gateway listening');
  } catch (err) {
    const source = process.env.PORT ? ` (PORT=${process.env.PORT})` : '';
    startupFailure(
      new ConfigError(
        `server.port${source}: cannot listen on ${gateway.config.server.host}:${gateway.config.server.port} (${(err as Error).message})`,
      ),
    );
  }

  // SIGHUP and a change of the user's file reload the configuration without a restart.
  const reloader = new ConfigReloader({
    load: () => loadConfig({ file: configFile }),
    apply: (next) => gateway.reconfigure(next),
    onResult: (result) => gateway.telemetry.configReload(result),
    log: gateway.log,
    file: configFile ?? process.env.GATEWAY_CONFIG ?? null,
  });
  reloader.watch();
  process.on('SIGHUP', () => reloader.reload('SIGHUP'));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    reloader.close();
    gateway.log.info(
      { signal, graceMs: gateway.config.server.shutdownGraceMs },
      'draining: finishing requests in flight',
    );
    gateway.close().then(
      () => {
        gateway.log.info('stopped');
        gateway.log.flush?.();
        process.exit(0);
      },
      (err) => {
        gateway.log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
