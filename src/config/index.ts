export { ConfigError } from './error.js';
export { DEFAULT_CONFIG_PATH, type LoadOptions, layer, loadConfig } from './load.js';
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
