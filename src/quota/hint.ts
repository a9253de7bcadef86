/**
 * What a 429 tells, read from CDF's message or, when the body is not CDF's JSON, from its text. Messages are
 * a hint: any of these may be missing, and a 429 without them is still a 429 that learning uses.
 */
export type ThrottleKind = 'rate' | 'concurrency';

export interface ThrottleHint {
  kind: ThrottleKind;
  /** The limit the message names, if it names one. */
  stated: number | null;
  /** Whose budget it was, when the message says: the project's or the caller's. */
  scope: 'project' | 'identity' | null;
}

/** Only the head of a long body is read: CDF's messages are one sentence. */
const READ_CHARS = 4096;
const CONCURRENCY = /concurren|parallel|simultaneous|in[- ]flight/i;
/** Ways a figure is named: CDF's own wording first, then the usual others. */
const FIGURES = [
  /maximum number\s*=\s*'?(\d+(?:\.\d+)?)/i,
  /(\d+(?:\.\d+)?)\s*(?:requests?|calls?|req)\s*(?:\/\s*|per\s+)(?:s\b|sec|second)/i,
  /(\d+(?:\.\d+)?)\s+(?:concurrent|parallel|simultaneous)/i,
  /\b(?:limit|max(?:imum)?|quota|allowed)\b(?:\s+(?:is|of|at|=))?\s*[:=(]?\s*'?(\d+(?:\.\d+)?)(?![\d.])(?!'?\s*(?:%|minutes?|min\b|hours?|h\b|seconds?|ms\b|[kmg]i?b\b|bytes?))/i,
];
const IDENTITY = /\b(?:identity|principal|user|client)\b/i;
const PROJECT = /\bproject\b/i;

export function readHint(message: string | null): ThrottleHint {
  if (message === null || message.length === 0) return { kind: 'rate', stated: null, scope: null };
  const text = message.length > READ_CHARS ? message.slice(0, READ_CHARS) : message;
  return {
    kind: CONCURRENCY.test(text) ? 'concurrency' : 'rate',
    stated: statedFigure(text),
    scope: IDENTITY.test(text) ? 'identity' : PROJECT.test(text) ? 'project' : null,
  };
}

function statedFigure(text: string): number | null {
  for (const re of FIGURES) {
    const m = re.exec(text);
    if (m === null) continue;
    const n = Number(m[1]);
    if (Number.isFinite(n) && n > 0 && n !== 429) return n;
  }
  return null;
}
