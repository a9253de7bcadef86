export { ConfigError } from './error.js';
export { type LoadOptions, layer, loadConfig } from './load.js';
export {
  ConfigReloader,
  effectiveConfig,
  type ReloaderOptions,
  type ReloadResult,
  restartOnlyChanges,
} from './reload.js';
export type * from './types.js';
export { isCdfVersion } from './validate.js';
