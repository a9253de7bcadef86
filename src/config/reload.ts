import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from './error.js';
import type { GatewayConfig } from './types.js';

/**
 * Keys read once at start-up (sockets, pools, connections, exporters): a reload that changes them logs
 * them as needing a restart and applies the rest. Everything else changes in place.
 */
const RESTART_ONLY: readonly string[] = [
  'server.host',
  'server.port',
  'server.keepAliveTimeoutMs',
  'server.responseIdleTimeoutMs',
  'retry.maxBufferedBytes',
  'upstream',
  'log.pretty',
  'metrics',
  'cluster',
  'tracing',
];

function at(config: unknown, path: string): unknown {
  let v = config;
  for (const k of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[k];
  return v;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The restart-only keys whose value differs, named down to the changed leaf (`upstream.baseUrl`). */
export function restartOnlyChanges(running: GatewayConfig, next: GatewayConfig): string[] {
  const changed: string[] = [];
  for (const key of RESTART_ONLY) {
    const a = at(running, key);
    const b = at(next, key);
    if (same(a, b)) continue;
    if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a)) {
      for (const leaf of Object.keys({ ...a, ...b })) {
        if (!same((a as Record<string, unknown>)[leaf], (b as Record<string, unknown>)[leaf]))
          changed.push(`${key}.${leaf}`);
      }
    } else {
      changed.push(key);
    }
  }
  return changed;
}

/**
 * `next` with the restart-only keys kept at their running values: the configuration the gateway actually
 * runs after a reload, so nothing reads a value that is not in effect.
 */
export function effectiveConfig(running: GatewayConfig, next: GatewayConfig): GatewayConfig {
  const out: Record<string, unknown> = { ...next };
  for (const path of RESTART_ONLY) {
    const [section, key] = path.split('.');
    if (key === undefined) out[section] = running[section as keyof GatewayConfig];
    else out[section] = { ...(out[section] as object), [key]: at(running, path) };
  }
  return out as unknown as GatewayConfig;
}

export type ReloadResult = 'success' | 'failure' | 'unchanged';

export interface ReloaderOptions {
  /** Reads and validates the configuration as start-up did (defaults, file, environment); throws ConfigError. */
  load(): GatewayConfig;
  /** Applies a valid configuration to the running gateway; returns the restart-only keys it left alone. */
  apply(next: GatewayConfig): string[];
  /** Told of every reload that was tried (metrics). */
  onResult?(result: 'success' | 'failure'): void;
  log: Logger;
  /** The user's file (GATEWAY_CONFIG or --config), watched for changes; null: SIGHUP only. */
  file: string | null;
  /** Quiet time after the last file event before reloading (editors and ConfigMap swaps write in steps). */
  debounceMs?: number;
}

/**
 * Reloads the configuration on request (SIGHUP) and when the user's file changes. The file's directory is
 * watched rather than the file, so a file replaced by rename (editors, `kubectl` ConfigMap updates, which
 * swap the `..data` symlink atomically) is seen as well as one written in place; a reload only runs when
 * the file's content changed. A file that fails validation keeps the running configuration.
 */
export class ConfigReloader {
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastDigest: string | null;

  constructor(private readonly options: ReloaderOptions) {
    this.lastDigest = options.file ? this.digest() : null;
  }

  /** Re-reads, validates and applies; `reason` goes into the log line. */
  reload(reason: string): ReloadResult {
    const { log } = this.options;
    if (this.options.file) this.lastDigest = this.digest();
    let next: GatewayConfig;
    try {
      next = this.options.load();
    } catch (err) {
      this.options.onResult?.('failure');
      // One line, naming each key at fault (every issue of a ConfigError starts with its key).
      const problems = err instanceof ConfigError ? err.issues.join('; ') : (err as Error).message;
      log.error(
        { reason, file: this.options.file ?? undefined, err: problems },
        `config reload refused, the running configuration stays: ${problems}`,
      );
      return 'failure';
    }
    const restart = this.options.apply(next);
    this.options.onResult?.('success');
    if (restart.length > 0) {
      log.warn(
        { reason, keys: restart },
        `config reloaded; these keys need a restart to take effect: ${restart.join(', ')}`,
      );
    } else {
      log.info({ reason }, 'config reloaded');
    }
    return 'success';
  }

  /** Starts watching the user's file (no-op without one). */
  watch(): void {
    const file = this.options.file;
    if (!file || this.watcher) return;
    const dir = dirname(resolve(file));
    const name = basename(file);
    try {
      this.watcher = watch(dir, { persistent: false }, (_event, changed) => {
        // Any entry of the directory: the file itself, or `..data` / a temp file of an atomic swap.
        if (changed !== null && changed !== name && !String(changed).startsWith('..')) return;
        this.schedule();
      });
      this.watcher.on('error', (err) => this.options.log.warn({ err: err.message, dir }, 'config watch failed'));
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message, dir }, 'cannot watch the config file; SIGHUP still reloads');
    }
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      const digest = this.digest();
      if (digest === this.lastDigest) return;
      this.reload('file changed');
    }, this.options.debounceMs ?? 200);
    this.timer.unref();
  }

  /** A hash of the file's content (null when it cannot be read: the reload then reports why). */
  private digest(): string | null {
    try {
      return createHash('sha256')
        .update(readFileSync(this.options.file as string))
        .digest('hex');
    } catch {
      return null;
    }
  }
}
