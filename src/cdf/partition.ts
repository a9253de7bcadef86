/**
 * `partition=m/n` checks. CDF advises at most 10 partitions; a malformed value would be answered 400
 * by CDF anyway, but only after it took quota, so it is refused here.
 */
export function partitionProblem(value: unknown, max: number): string | null {
  if (typeof value !== 'string') return `partition: expected "m/n" with 1 <= m <= n, got ${JSON.stringify(value)}`;
  const m = /^(\d{1,9})\/(\d{1,9})$/.exec(value);
  const part = m ? Number(m[1]) : 0;
  const of = m ? Number(m[2]) : 0;
  if (!m || part < 1 || of < 1 || part > of)
    return `partition: expected "m/n" with 1 <= m <= n, got ${JSON.stringify(value)}`;
  if (max > 0 && of > max)
    return `partition: at most ${max} partitions are allowed, got ${of} (CDF advises at most 10)`;
  return null;
}

/**
 * Every `partition` value of a query string (repeated parameters included, percent-encoded names decoded);
 * the query is parsed only when it could hold one.
 */
function partitionsInQuery(query: string): string[] {
  if (!query.includes('partition') && !query.includes('%')) return [];
  return new URLSearchParams(query).getAll('partition');
}

/** The first problem among a query's `partition` values, or null. */
export function queryPartitionProblem(query: string, max: number): string | null {
  for (const value of partitionsInQuery(query)) {
    const problem = partitionProblem(value, max);
    if (problem) return problem;
  }
  return null;
}
