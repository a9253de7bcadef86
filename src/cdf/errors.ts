/** The `message` of a CDF error body (`{"error":{"code":429,"message":"..."}}`), or null when the body is not one. */
export function cdfErrorMessage(body: Buffer | string | null): string | null {
  if (body === null || body.length === 0) return null;
  try {
    const parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as {
      error?: { message?: unknown };
    };
    return typeof parsed?.error?.message === 'string' ? parsed.error.message : null;
  } catch {
    return null;
  }
}
