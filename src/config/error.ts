/**
 * A configuration problem: start-up prints the message and exits with code 2. One error carries every
 * problem found in a configuration (`issues`, each `key: what was expected, what was found`), so an
 * operator fixes them all in one go instead of one per run.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly issues: readonly string[];
  /** What the check produced for the parts that were valid (lets later checks look at the rest). */
  partial?: unknown;

  constructor(issues: string | readonly string[], partial?: unknown) {
    const list = typeof issues === 'string' ? [issues] : [...new Set(issues)];
    super(list.length === 1 ? list[0] : `${list.length} problems:\n${list.map((i) => `  - ${i}`).join('\n')}`);
    this.issues = list;
    this.partial = partial;
  }
}

/**
 * Runs each check, collecting the problems of all of them; throws one ConfigError listing every problem.
 * Errors that are not ConfigErrors count only when no problem was found: a later check may trip over
 * a part an earlier one already refused.
 */
export function collectIssues(checks: ReadonlyArray<() => void>): void {
  const issues: string[] = [];
  let unexpected: unknown = null;
  for (const check of checks) {
    try {
      check();
    } catch (err) {
      if (err instanceof ConfigError) issues.push(...err.issues);
      else unexpected ??= err;
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  if (unexpected !== null) throw unexpected;
}
