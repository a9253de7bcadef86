import { describe, expect, it } from 'vitest';
import { attribute, type Candidate, readHint, type ThrottleFacts } from '../src/quota/index.js';
import type { OperationCount } from '../src/quota/tally.js';

/**
 * Where a 429 goes, row by row of the table in docs/design.md ("Where a 429 goes"). The decision is pure:
 * each row is a set of facts and the answer.
 */
const api = (over: Partial<Candidate> = {}): Candidate => ({
  level: 'api',
  depth: 0,
  figure: 50,
  effective: 50,
  near: false,
  learned: false,
  learnedKind: false,
  heldSince: false,
  statesRate: false,
  ...over,
});
const cls = (over: Partial<Candidate> = {}): Candidate =>
  api({ level: 'class', depth: 1, figure: 30, effective: 30, ...over });
const op = (over: Partial<Candidate> = {}): Candidate =>
  api({ level: 'operation', depth: 5, figure: 10, effective: 10, learned: true, ...over });
const count = (calls: number, throttled: number, c: OperationCount['cls'] = 'analytical'): OperationCount => ({
  cls: c,
  calls,
  throttled,
  passedPerSecond: (calls - throttled) / 2,
});
const facts = (over: Partial<ThrottleFacts>): ThrottleFacts => ({
  kind: 'rate',
  stated: null,
  cls: 'analytical',
  hasOperation: true,
  candidates: [api()],
  learned: [],
  operations: [count(10, 5)],
  siblingsPerSecond: 0,
  tallyAgeMs: 5000,
  ...over,
});

describe('attribution: a 429 that states a figure', () => {
  it('goes to the bucket on the path with that figure, leaving its parents alone', () => {
    expect(attribute(facts({ stated: 30, candidates: [api(), cls()] }))).toEqual({ action: 'cut', index: 1 });
  });

  it('only follows CDF down at a learned bucket already at or under the figure (CDF is in debt, not lower)', () => {
    expect(attribute(facts({ stated: 10, candidates: [api(), op({ figure: 10 })] }))).toEqual({
      action: 'follow',
      index: 1,
    });
  });

  it("merges an operation's budget with its API's when it is met again while the API's other operations pass", () => {
    const d = attribute(facts({ stated: 10, candidates: [api(), op({ heldSince: true })], siblingsPerSecond: 5 }));
    expect(d).toEqual({ action: 'merge', level: 'api' });
  });

  it('learns a bucket for the operation when the figure is tighter than every configured one', () => {
    expect(attribute(facts({ stated: 8, candidates: [api(), cls()] }))).toEqual({
      action: 'learn',
      level: 'operation',
    });
  });

  it('merges into the class (or the API) when other operations of the API learned the same figure', () => {
    const same = { level: 'operation' as const, figure: 8, covers: false, own: false };
    expect(attribute(facts({ stated: 8, learned: [{ ...same, cls: 'analytical' }] }))).toEqual({
      action: 'merge',
      level: 'class',
    });
    expect(attribute(facts({ stated: 8, learned: [{ ...same, cls: 'crud' }] }))).toEqual({
      action: 'merge',
      level: 'api',
    });
  });

  it('gives it to a budget learned since the call was sent, from the same storm', () => {
    const learned = [{ level: 'operation' as const, cls: 'analytical' as const, figure: 8, covers: true, own: true }];
    expect(attribute(facts({ stated: 8, learned }))).toEqual({ action: 'learn', level: 'operation' });
  });

  it('charges the tightest bucket under a looser figure than ours (other consumers share it)', () => {
    expect(attribute(facts({ stated: 40, candidates: [api(), cls()] }))).toEqual({ action: 'cut', index: 1 });
  });
});

describe('attribution: a 429 that names no figure', () => {
  it('only follows CDF down at the narrowest near bucket until the operation has a few 429s', () => {
    const candidates = [api({ near: true }), cls({ near: true })];
    expect(attribute(facts({ candidates, operations: [count(4, 2)] }))).toEqual({ action: 'follow', index: 1 });
    expect(attribute(facts({ candidates: [api()], operations: [count(4, 2)] }))).toEqual({ action: 'none' });
  });

  it('cuts a bucket learned for the kind, near its limit, at once: its few 429s are its own', () => {
    const candidates = [api({ near: true }), op({ learnedKind: true, near: true })];
    expect(attribute(facts({ candidates, operations: [count(10, 1)] }))).toEqual({ action: 'cut', index: 1 });
    // One that holds nothing back is not what CDF refuses (a wider budget is), nor one whose rate is its
    // parents' (it was learned for its concurrency): CDF's tokens are followed at the near bucket.
    for (const learned of [op({ learnedKind: true }), op({ learnedKind: false, near: true })])
      expect(attribute(facts({ candidates: [api({ near: true }), learned], operations: [count(10, 1)] }))).toEqual(
        learned.near ? { action: 'follow', index: 1 } : { action: 'follow', index: 0 },
      );
  });

  it('waits while the other operations have too few answers to tell, then decides with what there is', () => {
    const young = facts({
      candidates: [api({ near: true })],
      operations: [count(10, 5), count(3, 0)],
      tallyAgeMs: 200,
    });
    expect(attribute(young)).toEqual({ action: 'follow', index: 0 });
    expect(attribute({ ...young, tallyAgeMs: 1500 })).toEqual({ action: 'cut', index: 0 });
  });

  it('goes to the operation when another operation of its class passes freely', () => {
    const operations = [count(10, 5), count(20, 0)];
    expect(attribute(facts({ operations }))).toEqual({ action: 'learn', level: 'operation' });
    // A configured bucket of that operation (an exact path) takes it instead.
    const exact = api({ level: 'operation', depth: 3 });
    expect(attribute(facts({ operations, candidates: [api(), exact] }))).toEqual({ action: 'cut', index: 1 });
  });

  it('goes to the class when only other classes pass freely and its own operations are refused alike', () => {
    const operations = [count(10, 5), count(10, 4), count(20, 0, 'crud')];
    expect(attribute(facts({ operations }))).toEqual({ action: 'learn', level: 'class' });
    expect(attribute(facts({ operations, candidates: [api(), cls()] }))).toEqual({ action: 'cut', index: 1 });
    // Alone in its class: the narrowest level that covers the refused calls, its own.
    expect(attribute(facts({ operations: [count(10, 5), count(20, 0, 'crud')] }))).toEqual({
      action: 'learn',
      level: 'operation',
    });
  });

  it('charges the endpoint, not the API bucket near its limit, when the rest of the API passes (issue #27)', () => {
    // labels at its real figure is always near; /labels/list answers figureless 429s, creates pass.
    const d = attribute(facts({ candidates: [api({ near: true })], operations: [count(12, 6), count(40, 0, 'crud')] }));
    expect(d).toEqual({ action: 'learn', level: 'operation' });
  });

  it('charges the bucket that held the calls back when every operation is refused alike (a parent is cut)', () => {
    const operations = [count(10, 4), count(10, 4, 'crud')];
    expect(attribute(facts({ operations, candidates: [api({ near: true }), cls()] }))).toEqual({
      action: 'cut',
      index: 0,
    });
    // Nothing near: the widest configured bucket (CDF is under every figure on the path).
    expect(attribute(facts({ operations, candidates: [api(), cls()] }))).toEqual({ action: 'cut', index: 0 });
    // Nothing configured on the path: a learned bucket for the API.
    expect(attribute(facts({ operations, candidates: [] }))).toEqual({ action: 'learn', level: 'api' });
  });

  it('never charges a rate 429 that names no figure to a budget whose rate CDF states', () => {
    const d = attribute(facts({ candidates: [api({ near: true }), op({ near: true, statesRate: true })] }));
    expect(d).toEqual({ action: 'cut', index: 0 });
  });
});

describe("reading a 429's message: a hint, never required", () => {
  it("reads CDF's wording: kind, figure, and whose budget", () => {
    expect(readHint("Project exceeded maximum number='50' of concurrent requests. Please try again later.")).toEqual({
      kind: 'concurrency',
      stated: 50,
      scope: 'project',
    });
    expect(readHint("Identity exceeded maximum number='12.5' of requests per second.")).toEqual({
      kind: 'rate',
      stated: 12.5,
      scope: 'identity',
    });
  });

  it('reads a figure named in other wordings, and in plain text', () => {
    expect(readHint('Rate limit of 400 requests/s exceeded for project').stated).toBe(400);
    expect(readHint('Too many concurrent requests (max 80)')).toMatchObject({ kind: 'concurrency', stated: 80 });
    expect(readHint('429 Too Many Requests: limit 25 requests per second').stated).toBe(25);
    expect(readHint('Too many requests: 30 concurrent calls allowed')).toMatchObject({
      kind: 'concurrency',
      stated: 30,
    });
  });

  it('takes no figure from a message that names none, nor from durations, sizes or the status', () => {
    expect(readHint('Project exceeded the request rate limit. Please try again later.')).toEqual({
      kind: 'rate',
      stated: null,
      scope: 'project',
    });
    expect(readHint('429 Too Many Requests').stated).toBeNull();
    expect(readHint('data rate limit of 10 minutes exceeded').stated).toBeNull();
    expect(readHint('quota 8 GB per 10 minutes used').stated).toBeNull();
    expect(readHint(null)).toEqual({ kind: 'rate', stated: null, scope: null });
    expect(readHint('')).toEqual({ kind: 'rate', stated: null, scope: null });
  });

  it('reads only the head of a long body', () => {
    const padded = `${'x'.repeat(10_000)} maximum number='7' of requests per second`;
    expect(readHint(padded).stated).toBeNull();
    expect(readHint(`maximum number='7' of requests per second ${'x'.repeat(100_000)}`).stated).toBe(7);
  });
});
