import type { OperationClass } from '../cdf/index.js';
import type { ThrottleKind } from './hint.js';
import type { OperationCount } from './tally.js';

/** The levels of CDF's tree a bucket can stand for: one operation, one class of an API, or the API. */
export type Level = 'operation' | 'class' | 'api';

/** A bucket on the throttled call's path, as the decision sees it (its state before this 429's charge). */
export interface Candidate {
  readonly level: Level;
  /** Deeper is narrower: learned operations, exact paths, aggregation, classes, the API level, fallbacks. */
  readonly depth: number;
  /** Its figure for the 429's kind: the learned one for a learned bucket, else the configured one. */
  readonly figure: number;
  /** Its effective figure of that kind now (what tightest means). */
  readonly effective: number;
  /** Under a quarter of its burst left, or nine tenths of its slots taken. */
  readonly near: boolean;
  readonly learned: boolean;
  /** A learned bucket whose figure of the 429's kind was learned (or stated), not taken from its parents. */
  readonly learnedKind: boolean;
  /** A learned operation bucket held at or under `figure`, learned before the call was sent. */
  readonly heldSince: boolean;
  /** CDF states this budget's rate in its 429s: a rate 429 naming none is not this budget's. */
  readonly statesRate: boolean;
}

/** A learned budget of the call's API, on its path or not. */
export interface LearnedBudget {
  readonly level: Level;
  readonly cls: OperationClass;
  /** Its figure for the 429's kind. */
  readonly figure: number;
  /** Learned for this very operation, its class or its API (it applies to the call, sent before it existed). */
  readonly covers: boolean;
  /** Learned for this operation. */
  readonly own: boolean;
}

export interface ThrottleFacts {
  readonly kind: ThrottleKind;
  readonly stated: number | null;
  /** The call's operation class. */
  readonly cls: OperationClass;
  /** Whether the call matched an operation of CDF's description (else it cannot have an operation bucket). */
  readonly hasOperation: boolean;
  /** The path's buckets in the scope the message names (all of them when it names none). */
  readonly candidates: readonly Candidate[];
  /** The API's learned budgets. */
  readonly learned: readonly LearnedBudget[];
  /** Answers per operation of the API over the window, this 429 included; the call's own operation first. */
  readonly operations: readonly OperationCount[];
  /** Passed calls per second of the other operations of the API (is a stated budget shared with them?). */
  readonly siblingsPerSecond: number;
  /** How long the API's answers have been counted (since its first 429 lately). */
  readonly tallyAgeMs: number;
}

/** What to do with a 429. `index` is a candidate's. */
export type Attribution =
  /** Cut this bucket (its estimators learn from the 429). */
  | { readonly action: 'cut'; readonly index: number }
  /** Its tokens follow CDF's down; its figures stay. */
  | { readonly action: 'follow'; readonly index: number }
  /** A learned bucket for this level (made, or charged when it exists). */
  | { readonly action: 'learn'; readonly level: Level }
  /** The operations' learned buckets with this figure give way to one for the class or the API. */
  | { readonly action: 'merge'; readonly level: 'class' | 'api' }
  | { readonly action: 'none' };

/** A stated figure names a bucket whose figure is within this share of it. */
const SAME_FIGURE = 0.02;
/** At least this many 429s on the operation within the window before a level is chosen. */
export const MIN_THROTTLED = 3;
/** Siblings need this many answers in the window to tell anything ... */
const MIN_CALLS = 5;
/** ... and are waited for this long at most. */
const SETTLE_MS = 1000;
/** A sibling passes freely when its share of 429s is under a quarter of the throttled operation's (or 5 %). */
const FREE_RATIO = 0.25;
const FREE_FLOOR = 0.05;
/** Other operations passing at least this share of a stated rate share its budget. */
const SIBLING_SHARE = 0.1;
/** A stated rate above this share of the operation's learned one names a wider budget, not the operation's. */
const WIDER = 0.8;

const same = (a: number, b: number) => Math.abs(a - b) <= b * SAME_FIGURE;

/**
 * Which budget a 429 is charged to: the narrowest level its own traffic explains (docs/design.md has the
 * table). Pure: the tree gathers the facts and carries out the answer.
 */
export function attribute(f: ThrottleFacts): Attribution {
  return f.stated === null ? withoutFigure(f) : withFigure(f, f.stated);
}

function withFigure(f: ThrottleFacts, stated: number): Attribution {
  const named = narrowest(f.candidates, (c) => same(c.figure, stated));
  if (named >= 0) {
    const c = f.candidates[named];
    // An operation's budget met again at its figure while the API's other operations get calls through:
    // the budget is theirs together.
    if (c.heldSince && f.kind === 'rate' && f.siblingsPerSecond >= stated * SIBLING_SHARE)
      return { action: 'merge', level: 'api' };
    // Already at or under it: CDF's bucket is in debt (throttled calls charged), not lower.
    if (c.learned && c.figure <= stated) return { action: 'follow', index: named };
    return { action: 'cut', index: named };
  }
  // Learned since the call was sent, from the same storm: that budget takes it.
  if (f.learned.some((l) => l.covers && same(l.figure, stated)))
    return { action: 'learn', level: coveringLevel(f, stated) };
  let least = Number.POSITIVE_INFINITY;
  for (const c of f.candidates) if (!c.learned) least = Math.min(least, c.figure);
  if (stated < least) {
    // Tighter than every configured budget on the path: one the table does not know.
    const own = f.learned.find((l) => l.own);
    if (own && f.kind === 'rate' && own.figure < stated * WIDER) return { action: 'learn', level: 'api' };
    const others = f.learned.filter((l) => !l.own && l.level !== 'api' && same(l.figure, stated));
    if (others.length === 0) return { action: 'learn', level: f.hasOperation ? 'operation' : 'class' };
    const sameClass = f.cls !== 'other' && others.every((l) => l.cls === f.cls);
    return { action: 'merge', level: sameClass ? 'class' : 'api' };
  }
  // CDF names a looser budget than ours: other consumers share it. The tightest under it takes the 429.
  const tightest = narrowest(f.candidates, (c) => c.figure <= stated);
  return tightest >= 0 ? { action: 'cut', index: tightest } : { action: 'none' };
}

function withoutFigure(f: ThrottleFacts): Attribution {
  // A budget whose rate CDF states would have named it.
  const eligible = (c: Candidate) => f.kind !== 'rate' || !c.statesRate;
  const own = f.operations[0];
  const near = narrowest(f.candidates, (c) => eligible(c) && c.near);
  if (own === undefined || own.throttled < MIN_THROTTLED) {
    // A budget learned for this kind that holds the calls back (near its limit) is where CDF's few 429s come
    // from: its estimator cuts gently at the edge, where following only would leave its figure over CDF's.
    const learned = narrowest(f.candidates, (c) => eligible(c) && c.learnedKind && c.near);
    if (learned >= 0) return { action: 'cut', index: learned };
    return near >= 0 ? { action: 'follow', index: near } : { action: 'none' };
  }
  // Other operations are answered, but too few yet to tell whether they pass: wait for them a while (CDF's
  // tokens are followed meanwhile), then decide with what there is.
  if (f.tallyAgeMs < SETTLE_MS && f.operations.some((o, i) => i > 0 && o.calls > 0 && o.calls < MIN_CALLS))
    return near >= 0 ? { action: 'follow', index: near } : { action: 'none' };
  const level = explainedLevel(f, own);
  if (level !== null) {
    const at = narrowest(f.candidates, (c) => eligible(c) && c.level === level);
    if (at >= 0) return { action: 'cut', index: at };
    if (level === 'operation' && !f.hasOperation) return { action: 'learn', level: 'class' };
    if (level === 'class' && f.cls === 'other') return { action: 'learn', level: 'operation' };
    return { action: 'learn', level };
  }
  // Spread over the API's operations alike: the bucket that held the calls back, else the API level.
  if (near >= 0) return { action: 'cut', index: near };
  const widest = widestConfigured(f.candidates, eligible);
  return widest >= 0 ? { action: 'cut', index: widest } : { action: 'learn', level: 'api' };
}

/**
 * The level the throttled operation's 429s single out, or null when they spread over the API alike. If an
 * operation of the same class passes freely, the budget is the operation's; if only operations of other
 * classes pass freely, it is the class's when the class's other operations are refused too, else the
 * operation's (the narrowest that covers the refused calls).
 */
function explainedLevel(f: ThrottleFacts, own: OperationCount): Level | null {
  const ratio = own.throttled / Math.max(1, own.calls);
  const free = (o: OperationCount) =>
    o.calls >= MIN_CALLS && o.throttled / o.calls <= Math.max(FREE_FLOOR, ratio * FREE_RATIO);
  const siblings = f.operations.slice(1);
  if (siblings.some((o) => o.cls === own.cls && free(o))) return 'operation';
  if (!siblings.some((o) => o.cls !== own.cls && free(o))) return null;
  const refusedAlike = siblings.some((o) => o.cls === own.cls && o.calls >= MIN_CALLS && !free(o));
  return refusedAlike ? 'class' : 'operation';
}

function coveringLevel(f: ThrottleFacts, stated: number): Level {
  let best: Level = 'api';
  for (const l of f.learned) {
    if (!l.covers || !same(l.figure, stated)) continue;
    if (l.level === 'operation') return 'operation';
    if (l.level === 'class') best = 'class';
  }
  return best;
}

/** The deepest candidate that `ok` accepts, the tightest of equals; -1 for none. */
function narrowest(cs: readonly Candidate[], ok: (c: Candidate) => boolean): number {
  let best = -1;
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i];
    if (!ok(c)) continue;
    const b = best < 0 ? undefined : cs[best];
    if (b === undefined || c.depth > b.depth || (c.depth === b.depth && c.effective < b.effective)) best = i;
  }
  return best;
}

/** The shallowest configured candidate (the API level), the tightest of equals. */
function widestConfigured(cs: readonly Candidate[], ok: (c: Candidate) => boolean): number {
  let best = -1;
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i];
    if (c.learned || !ok(c)) continue;
    const b = best < 0 ? undefined : cs[best];
    if (b === undefined || c.depth < b.depth || (c.depth === b.depth && c.effective < b.effective)) best = i;
  }
  return best;
}
