import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './error.js';
import { markConfigured, perFigureSources } from './limits.js';
import { otelOverlay } from './otel-env.js';
import { isMapping, show } from './schema.js';
import type { GatewayConfig } from './types.js';
import { validateConfig } from './validate.js';

const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));

/** The environment variables the gateway reads, and the key each one sets (they win over every file). */
const ENV_KEYS: ReadonlyArray<readonly [name: string, key: string, kind: 'string' | 'number']> = [
  ['CDF_BASE_URL', 'upstream.baseUrl', 'string'],
  ['HOST', 'server.host', 'string'],
  ['PORT', 'server.port', 'number'],
  ['LOG_LEVEL', 'log.level', 'string'],
  ['METRICS_PORT', 'metrics.port', 'number'],
  ['METRICS_TOKEN', 'metrics.token', 'string'],
];

const requireYaml = createRequire(import.meta.url);

/**
 * Parses YAML with the `yaml` package loaded for the call and released after it. Settings are read at
 * start-up and at a reload, never on the request path, but an import would keep yaml's 72 modules (0.9 MiB of
 * heap) resident in every idle sidecar for good: loaded through require, they leave with their cache entries.
 */
function parseYamlDocument(text: string) {
  const entry = requireYaml.resolve('yaml');
  try {
    return (requireYaml('yaml') as typeof import('yaml')).parseDocument(text, { prettyErrors: true });
  } finally {
    const root = dirname(dirname(entry)) + sep; // .../node_modules/yaml/ (the entry is dist/index.js)
    for (const id of Object.keys(requireYaml.cache)) if (id.startsWith(root)) delete requireYaml.cache[id];
  }
}

/** A YAML file's settings: a mapping (an empty file is none). Syntax errors are shown whole, every one. */
function readYaml(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `config file ${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
  const doc = parseYamlDocument(text);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map(
        (err) => `config file ${path}: not valid YAML: ${err.message.trimEnd().replace(/\n/g, '\n      ')}`,
      ),
    );
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (!isMapping(value)) {
    throw new ConfigError(
      `config file ${path}: expected a mapping of settings (server:, upstream:, limits:, ... as in config/default.yaml), got ${show(value)}`,
    );
  }
  return value;
}

/** Mappings merge key by key; lists and scalars from the overlay replace the base's. */
export function layer(base: unknown, overlay: unknown): unknown {
  if (overlay === undefined) return base;
  if (!isMapping(base) || !isMapping(overlay)) return overlay;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overlay)) out[key] = layer(base[key], value);
  return out;
}

export interface LoadOptions {
  /** A user's YAML file layered over the defaults; wins over GATEWAY_CONFIG (it is the --config option). */
  file?: string;
  /** Extra settings layered over the file (used by tests, the demo and benchmarks). */
  overrides?: unknown;
  env?: NodeJS.ProcessEnv;
}

/**
 * Sets `key` (dotted) to `value` in `raw`, only where the parents are mappings: a parent the file set to
 * something else is reported by the schema as it is, not hidden behind the environment's value.
 */
function setKey(raw: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node: Record<string, unknown> = raw;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (!isMapping(next)) return;
    node[part] = { ...next };
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

export function loadConfig(options: LoadOptions = {}): GatewayConfig {
  const env = options.env ?? process.env;
  const issues: string[] = [];
  // The table's figures keep the origin the defaults give them; a figure a user's layer writes is configured.
  let raw = perFigureSources(readYaml(DEFAULT_CONFIG_PATH)) as unknown;
  const file = options.file ?? env.GATEWAY_CONFIG;
  if (file) raw = layer(raw, markConfigured(readYaml(file)));
  raw = layer(raw, markConfigured(options.overrides));
  if (!isMapping(raw)) throw new ConfigError(`config: expected a mapping of settings, got ${show(raw)}`);
  raw = { ...raw };
  /** Where a key's value came from the environment, problems name the variable and its value. */
  const fromEnv = new Map<string, string>();
  for (const [name, key, kind] of ENV_KEYS) {
    const text = env[name];
    if (!text) continue;
    fromEnv.set(key, `${name}=${text}`);
    if (kind === 'number') {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) {
        issues.push(`${name}: expected a number, got ${JSON.stringify(text)}`);
        continue;
      }
      setKey(raw as Record<string, unknown>, key, n);
    } else setKey(raw as Record<string, unknown>, key, text);
  }
  // The standard OpenTelemetry variables, layered like the gateway's own (tracing.*).
  try {
    const tracing = otelOverlay(env);
    if (tracing) (raw as Record<string, unknown>).tracing = layer((raw as Record<string, unknown>).tracing, tracing);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues.push(...err.issues);
  }
  try {
    const config = validateConfig(raw);
    if (issues.length > 0) throw new ConfigError(issues);
    return config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const named = err.issues.map((issue) => {
      for (const [key, source] of fromEnv) {
        if (issue.startsWith(`${key}: `)) return `${source} (sets ${key}): ${issue.slice(key.length + 2)}`;
      }
      return issue;
    });
    throw new ConfigError([...issues, ...named]);
  }
}
