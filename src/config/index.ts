export { ConfigError, collectIssues } from './error.js';
export { DEFAULT_CONFIG_PATH, ENV_KEYS, type LoadOptions, layer, loadConfig } from './load.js';
export { pathPattern } from './path-pattern.js';
export {
  ConfigReloader,
  changedSections,
  effectiveConfig,
  RESTART_ONLY,
  type ReloaderOptions,
  type ReloadResult,
  restartOnlyChanges,
} from './reload.js';
export type * from './types.js';
export { isCdfVersion, validateConfig } from './validate.js';
