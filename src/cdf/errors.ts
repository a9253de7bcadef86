/**
 * What a CDF error body says, for the quota tree to read a figure from: the `message` of CDF's JSON error
 * shape (`{"error":{"code":429,"message":"..."}}`), else the body's text when it is not JSON (a proxy's
 * page in front of CDF), else null (empty, or JSON of another shape).
 */
export function cdfErrorText(body: Buffer | null): string | null {
  if (body === null || body.length === 0) return null;
  const text = body.toString('utf8');
  let parsed: { error?: { message?: unknown } } | null;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text;
  }
  return typeof parsed?.error?.message === 'string' ? parsed.error.message : null;
}
