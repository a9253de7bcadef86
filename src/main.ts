#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { buildGateway } from './app.js';
import { ConfigError, ConfigReloader, loadConfig } from './config/index.js';

/** Start-up problems an operator must fix get exit code 2 and one line naming the key. */
function startupFailure(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`cdf-gateway: ${err instanceof ConfigError ? 'configuration error: ' : ''}${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let configFile: string | undefined;
  try {
    const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, strict: true });
    configFile = values.config;
  } catch (err) {
    startupFailure(new ConfigError(`command line: ${(err as Error).message}`));
  }
  let gateway: Awaited<ReturnType<typeof buildGateway>>;
  try {
    const config = loadConfig({ file: configFile });
    gateway = await buildGateway(config);
  } catch (err) {
    startupFailure(err);
  }
  try {
    const url = await gateway.listen();
    gateway.log.info({ url, upstream: gateway.config.upstream.baseUrl }, 'cdf-gateway listening');
  } catch (err) {
    startupFailure(
      new Error(
        `server.port: cannot listen on ${gateway.config.server.host}:${gateway.config.server.port} (${(err as Error).message})`,
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
