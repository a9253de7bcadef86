import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// src/proxy/upstream.ts loads three of undici's own files instead of its index and puts its request API
// on the dispatcher prototype as the index does. That holds only for the version pinned in package.json:
// these tests fail when undici moves, and say which part of the patch no longer matches.
const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

describe("undici's files that proxy/upstream.ts loads", () => {
  it('are those of the exact version package.json pins', () => {
    expect(pkg.dependencies.undici).toMatch(/^\d+\.\d+\.\d+$/);
    expect(require('undici/package.json').version).toBe(pkg.dependencies.undici);
  });

  it("are the index's own Pool and Dispatcher, and the API the index assigns onto the prototype", () => {
    const index = require('undici');
    const api = require('undici/lib/api/index.js');
    expect(require('undici/lib/dispatcher/pool.js')).toBe(index.Pool);
    expect(require('undici/lib/dispatcher/dispatcher.js')).toBe(index.Dispatcher);
    expect(Object.keys(api).sort()).toEqual(['connect', 'pipeline', 'request', 'stream', 'upgrade']);
    for (const [name, fn] of Object.entries(api)) expect(index.Dispatcher.prototype[name]).toBe(fn);
    // The one assignment upstream.ts repeats.
    const source = readFileSync(require.resolve('undici'), 'utf8');
    expect(source).toContain("const api = require('./lib/api')");
    expect(source).toContain('Object.assign(Dispatcher.prototype, api)');
  });
});
