import type { CdfVersionConfig } from '../config/index.js';
import { PatternIndex } from './pattern.js';

export interface VersionChoice {
  version: string;
  override: boolean;
}

/** Picks the cdf-version header for a request from the configuration, once compiled. */
export class VersionPolicy {
  private readonly routes: PatternIndex<VersionChoice>;
  private readonly fallback: VersionChoice | null;

  constructor(config: CdfVersionConfig) {
    this.routes = new PatternIndex(
      config.routes.map((r) => ({ match: r.match, version: r.version, override: r.override })),
      (r) => r.match,
    );
    this.fallback = config.default ? { version: config.default, override: config.override } : null;
  }

  /** The version to send upstream, given what the app sent (undefined when it sent none). */
  choose(rest: string | null, sent: string | undefined): string | undefined {
    const choice = (rest !== null && this.routes.matchFirst(rest)) || this.fallback;
    if (!choice) return sent;
    if (sent === undefined || choice.override) return choice.version;
    return sent;
  }
}
