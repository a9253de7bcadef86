/** A configuration problem: start-up prints the message and exits with code 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
