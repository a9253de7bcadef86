/** CDF's error shape: `{"error": {"code": 429, "message": "..."}}`. */
export function cdfErrorBody(code: number, message: string, extra?: Record<string, unknown>): string {
  return JSON.stringify({ error: { code, message, ...extra } });
}

/** The `message` of a CDF error body, or null when the body is not one. */
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
