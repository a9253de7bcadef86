import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ConfigError } from './error.js';
import { otelOverlay } from './otel-env.js';
import type { GatewayConfig } from './types.js';
import { validateConfig } from './validate.js';

export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));

function readYaml(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `config file ${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
  try {
    return parse(text) ?? {};
  } catch (err) {
    throw new ConfigError(`config file ${path}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
}

/** Mappings merge key by key; lists and scalars from the overlay replace the base's. */
export function layer(base: unknown, overlay: unknown): unknown {
  if (overlay === undefined) return base;
  if (!isMapping(base) || !isMapping(overlay)) return overlay;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overlay)) out[key] = layer(base[key], value);
  return out;
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

function envNumber(name: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw new ConfigError(`${name}: expected a number, got ${JSON.stringify(value)}`);
  return n;
}

export interface LoadOptions {
  /** A user's YAML file layered over the defaults. */
  file?: string;
  /** Extra settings layered over the file (used by tests, the demo and benchmarks). */
  overrides?: unknown;
  env?: NodeJS.ProcessEnv;
}

export function loadConfig(options: LoadOptions = {}): GatewayConfig {
  const env = options.env ?? process.env;
  let raw = readYaml(DEFAULT_CONFIG_PATH);
  const file = options.file ?? env.GATEWAY_CONFIG;
  if (file) raw = layer(raw, readYaml(file));
  raw = layer(raw, options.overrides);
  const fromEnv: Record<string, Record<string, unknown>> = {};
  if (env.CDF_BASE_URL) fromEnv.upstream = { baseUrl: env.CDF_BASE_URL };
  if (env.HOST) fromEnv.server = { host: env.HOST };
  if (env.PORT) fromEnv.server = { ...fromEnv.server, port: envNumber('PORT', env.PORT) };
  if (env.LOG_LEVEL) fromEnv.log = { level: env.LOG_LEVEL };
  const tracing = otelOverlay(env);
  if (tracing) fromEnv.tracing = tracing;
  return validateConfig(layer(raw, fromEnv));
}
