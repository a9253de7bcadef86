import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, isCdfVersion, loadConfig } from '../src/config/index.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cdfgw-config-'));
let fileNo = 0;

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function yamlFile(text: string): string {
  const path = join(dir, `config-${++fileNo}.yaml`);
  writeFileSync(path, text);
  return path;
}

const load = (overrides: unknown, env: NodeJS.ProcessEnv = {}) => loadConfig({ env, overrides });

/** The ConfigError `fn` throws; fails when it throws nothing or something else. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

const limit = (extra: Record<string, unknown>) => ({
  limits: [{ name: 'a', match: '/**', per: 'project', rate: 10, burst: 1, concurrency: 1, ...extra }],
});

describe('loadConfig', () => {
  it('loads config/default.yaml as is', () => {
    const config = load(undefined);
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 8080, bodyLimitBytes: 104857600 });
    expect(config.upstream.baseUrl).toBe('https://api.cognitedata.com');
    expect(config.cdfVersion).toEqual({ default: null, override: false, routes: [] });
    expect(config.partitions.max).toBe(10);
    expect(config.limits.find((l) => l.name === 'assets')).toMatchObject({
      rate: 200,
      concurrency: 40,
      per: 'project',
    });
  });

  it('names the key, the value and the expectation for bad values', () => {
    const cases: Array<[unknown, string]> = [
      [limit({ rate: 'fast' }), 'limits[0].rate: expected a number > 0, got "fast"'],
      [limit({ rate: 0 }), 'limits[0].rate: expected a number > 0, got 0'],
      [limit({ concurrency: 1.5 }), 'limits[0].concurrency: expected an integer >= 1, got 1.5'],
      [limit({ per: 'app' }), 'limits[0].per: expected one of "project", "identity", got "app"'],
      [
        limit({ match: 'assets' }),
        'limits[0].match: expected a path pattern starting with "/" (globs * and **), got "assets"',
      ],
      [
        { limits: [{ name: 'a', match: '/**', per: 'project', burst: 1, concurrency: 1 }] },
        'limits[0].rate: expected a number > 0, got nothing',
      ],
      [{ server: { port: 70000 } }, 'server.port: expected an integer >= 0 and <= 65535, got 70000'],
      [{ server: { port: '8080' } }, 'server.port: expected an integer >= 0 and <= 65535, got "8080"'],
      [{ server: { bodyLimitBytes: '1MB' } }, 'server.bodyLimitBytes: expected an integer >= 1, got "1MB"'],
      [{ retry: { maxAttempts: 0 } }, 'retry.maxAttempts: expected an integer >= 1, got 0'],
      [
        { log: { level: 'loud' } },
        'log.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"',
      ],
      [{ partitions: { max: -1 } }, 'partitions.max: expected an integer >= 0, got -1'],
      [{ adaptive: { decrease: 1.5 } }, 'adaptive.decrease: expected a number > 0 and <= 1, got 1.5'],
      [
        { server: null },
        'server: expected a mapping of host, port, bodyLimitBytes, shutdownGraceMs, keepAliveTimeoutMs, responseIdleTimeoutMs, got null',
      ],
    ];
    for (const [overrides, message] of cases) {
      expect(configError(() => load(overrides)).message).toBe(message);
    }
  });

  it('refuses a bad upstream URL, naming upstream.baseUrl', () => {
    for (const baseUrl of [
      'not a url',
      'ftp://cdf.example',
      'https://user:pw@cdf.example',
      'https://cdf.example/?x=1',
    ]) {
      const message = configError(() => load({ upstream: { baseUrl } })).message;
      expect(message).toMatch(/^upstream\.baseUrl: expected an http\(s\)/);
      expect(message).toContain(JSON.stringify(baseUrl));
    }
    expect(load({ upstream: { baseUrl: 'http://127.0.0.1:9/cdf/' } }).upstream.baseUrl).toBe('http://127.0.0.1:9/cdf');
  });

  it('treats unknown keys as errors, at every level', () => {
    expect(configError(() => load({ servr: { port: 1 } })).message).toMatch(
      /^servr: unknown key \(expected one of server, upstream/,
    );
    expect(configError(() => load({ server: { hots: 'x' } })).message).toMatch(
      /^server\.hots: unknown key \(expected one of host, port/,
    );
    expect(configError(() => load(limit({ ratee: 5 }))).message).toMatch(/^limits\[0\]\.ratee: unknown key/);
    expect(
      configError(() => load({ cdfVersion: { routes: [{ match: '/x', version: '20230101', overide: true }] } }))
        .message,
    ).toMatch(/^cdfVersion\.routes\[0\]\.overide: unknown key/);
  });

  it('refuses bad cdf-versions and accepts good ones', () => {
    for (const bad of ['2023-01-01', '20231301', '20230230', '2023011', '20230101-gamma', 'latest', '']) {
      const message = configError(() => load({ cdfVersion: { default: bad } })).message;
      expect(message).toBe(
        `cdfVersion.default: expected a cdf-version YYYYMMDD with optional -beta or -alpha, got ${JSON.stringify(bad)}`,
      );
      expect(isCdfVersion(bad)).toBe(false);
    }
    // Unquoted in YAML, a version is a number: the message says so instead of showing the same digits.
    expect(configError(() => load({ cdfVersion: { default: 20230101 } })).message).toBe(
      'cdfVersion.default: expected a cdf-version string such as "20230101"; YAML reads 20230101 unquoted as a number: write it in quotes, "20230101"',
    );
    const route = configError(() => load({ cdfVersion: { routes: [{ match: '/models/**', version: '2023-01-01' }] } }));
    expect(route.message).toMatch(/^cdfVersion\.routes\[0\]\.version: expected a cdf-version .* got "2023-01-01"$/);
    for (const good of ['20230101', '20240229', '20230101-beta', '20230101-alpha'])
      expect(isCdfVersion(good)).toBe(true);
    const config = load({
      cdfVersion: { default: '20240229', routes: [{ match: '/models/**', version: '20230101-beta' }] },
    });
    expect(config.cdfVersion.default).toBe('20240229');
    expect(config.cdfVersion.routes).toEqual([{ match: ['/models/**'], version: '20230101-beta', override: false }]);
  });

  it('refuses duplicate limit names and retry.maxDelayMs below retry.baseDelayMs', () => {
    const twice = { limits: [limit({}).limits[0], limit({}).limits[0]] };
    expect(configError(() => load(twice)).message).toBe('limits[1].name: expected a unique name, got "a" twice');
    expect(configError(() => load({ retry: { baseDelayMs: 500, maxDelayMs: 100 } })).message).toMatch(
      /^retry\.maxDelayMs: expected a number >= retry\.baseDelayMs \(500\), got 100$/,
    );
  });

  it('layers a user file over the defaults (file option and GATEWAY_CONFIG)', () => {
    const file = yamlFile(
      [
        'server:',
        '  bodyLimitBytes: 2048',
        'cdfVersion:',
        '  default: "20230101"',
        'limits:',
        '  - { name: only, match: ["/assets/**"], per: project, rate: 5, burst: 5, concurrency: 2 }',
      ].join('\n'),
    );
    for (const config of [loadConfig({ file, env: {} }), loadConfig({ env: { GATEWAY_CONFIG: file } })]) {
      expect(config.server.bodyLimitBytes).toBe(2048);
      // Keys the file leaves out keep their defaults; lists are replaced, not merged.
      expect(config.server.port).toBe(8080);
      expect(config.server.host).toBe('127.0.0.1');
      expect(config.retry.maxAttempts).toBe(6);
      expect(config.cdfVersion).toEqual({ default: '20230101', override: false, routes: [] });
      expect(config.limits.map((l) => l.name)).toEqual(['only']);
    }
    // The file option wins over GATEWAY_CONFIG.
    const other = yamlFile('server:\n  bodyLimitBytes: 4096\n');
    expect(loadConfig({ file: other, env: { GATEWAY_CONFIG: file } }).server.bodyLimitBytes).toBe(4096);
    // An empty file is no change.
    expect(loadConfig({ file: yamlFile(''), env: {} }).server.bodyLimitBytes).toBe(104857600);
  });

  it('reports bad values in a user file by key', () => {
    const file = yamlFile(
      'limits:\n  - { name: a, match: "/**", per: project, rate: fast, burst: 1, concurrency: 1 }\n',
    );
    expect(configError(() => loadConfig({ file, env: {} })).message).toBe(
      'limits[0].rate: expected a number > 0, got "fast"',
    );
    const unknown = yamlFile('server:\n  prot: 80\n');
    expect(configError(() => loadConfig({ file: unknown, env: {} })).message).toMatch(/^server\.prot: unknown key/);
  });

  it('refuses unreadable and invalid YAML files, naming the file', () => {
    const missing = join(dir, 'does-not-exist.yaml');
    expect(configError(() => loadConfig({ file: missing, env: {} })).message).toBe(
      `config file ${missing}: cannot be read (ENOENT)`,
    );
    expect(configError(() => loadConfig({ file: dir, env: {} })).message).toMatch(/cannot be read \(EISDIR\)/);
    const broken = yamlFile('server: [1, 2\n');
    expect(configError(() => loadConfig({ file: broken, env: {} })).message).toMatch(
      new RegExp(`^config file ${broken}: not valid YAML`),
    );
  });

  it('lets CDF_BASE_URL, PORT, HOST and LOG_LEVEL win over the file', () => {
    const file = yamlFile(
      [
        'server: { host: 0.0.0.0, port: 1234 }',
        'upstream: { baseUrl: "https://file.cognitedata.com" }',
        'log: { level: debug }',
      ].join('\n'),
    );
    const fromFile = loadConfig({ file, env: {} });
    expect(fromFile.server.host).toBe('0.0.0.0');
    expect(fromFile.server.port).toBe(1234);
    expect(fromFile.upstream.baseUrl).toBe('https://file.cognitedata.com');
    expect(fromFile.log.level).toBe('debug');

    const env = { CDF_BASE_URL: 'http://127.0.0.1:9999', PORT: '4321', HOST: '::1', LOG_LEVEL: 'error' };
    const fromEnv = loadConfig({ file, env });
    expect(fromEnv.upstream.baseUrl).toBe('http://127.0.0.1:9999');
    expect(fromEnv.server.port).toBe(4321);
    expect(fromEnv.server.host).toBe('::1');
    expect(fromEnv.log.level).toBe('error');
    // The environment also wins over programmatic overrides.
    expect(loadConfig({ file, env, overrides: { server: { port: 1 } } }).server.port).toBe(4321);
  });

  it('checks values from the environment like the file’s', () => {
    expect(configError(() => load(undefined, { PORT: 'abc' })).message).toBe('PORT: expected a number, got "abc"');
    // Problems in a value the environment set name the variable, its value and the key it sets.
    expect(configError(() => load(undefined, { PORT: '99999' })).message).toMatch(
      /^PORT=99999 \(sets server\.port\): expected .* got 99999$/,
    );
    expect(configError(() => load(undefined, { LOG_LEVEL: 'verbose' })).message).toMatch(
      /^LOG_LEVEL=verbose \(sets log\.level\): expected one of .* got "verbose"$/,
    );
    expect(configError(() => load(undefined, { CDF_BASE_URL: 'cdf' })).message).toMatch(
      /^CDF_BASE_URL=cdf \(sets upstream\.baseUrl\): .*"cdf"$/,
    );
    // The same problem from a file names the key only.
    expect(configError(() => load({ log: { level: 'verbose' } })).message).toMatch(/^log\.level: expected one of/);
  });
});

describe('a configuration with several mistakes', () => {
  it('gets every problem in one message, each naming its key', () => {
    const file = yamlFile(
      [
        'server:',
        '  port: "8080"',
        '  hots: 0.0.0.0',
        'cdfVersion:',
        '  default: 20230101',
        'limits:',
        '  - { name: a, match: "/assets/**", per: app, rate: fast, burst: 1, concurrency: 1 }',
        '  - { name: a, match: "/events/**", per: project, rate: 1, burst: 1, concurrency: 0 }',
        'retry: { maxAttempts: 0, baseDelayMs: 500, maxDelayMs: 100 }',
      ].join('\n'),
    );
    const err = configError(() => loadConfig({ file, env: { LOG_LEVEL: 'verbose' } }));
    const keys = err.issues.map((issue) => issue.slice(0, issue.indexOf(':')));
    expect(keys).toEqual(
      expect.arrayContaining([
        'server.hots',
        'server.port',
        'LOG_LEVEL=verbose (sets log.level)',
        'cdfVersion.default',
        'limits[0].per',
        'limits[0].rate',
        'limits[1].concurrency',
        'limits[1].name',
        'retry.maxAttempts',
        'retry.maxDelayMs',
      ]),
    );
    expect(err.issues).toHaveLength(10);
    expect(err.message.split('\n')[0]).toBe('10 problems:');
    for (const issue of err.issues) expect(err.message).toContain(issue);
  });

  it('reports every mistake of the buckets of a limits mapping at once; burst and per may be left out', () => {
    const file = yamlFile(
      [
        'limits:',
        '  mine: { match: "/assets/***", rate: fast, concurrency: 0 }',
        '  other: { match: "/events/**", rate: 5, concurrency: 2, prt: identity }',
        '  ok: { match: "/events/**", rate: 5, concurrency: 2 }',
      ].join('\n'),
    );
    const err = configError(() => loadConfig({ file, env: {} }));
    expect(err.issues.map((i) => i.slice(0, i.indexOf(':')))).toEqual(
      expect.arrayContaining(['limits.mine.match', 'limits.mine.rate', 'limits.mine.concurrency', 'limits.other.prt']),
    );
    expect(err.issues).toHaveLength(4);
    const good = loadConfig({
      file: yamlFile('limits:\n  ok: { match: "/events/**", rate: 5, concurrency: 2 }\n'),
      env: {},
    });
    expect(good.limits.find((l) => l.name === 'ok')).toMatchObject({ per: 'project', rate: 5, burst: 5 });
  });

  it('says so when the file is a list, a scalar, or a section is a scalar', () => {
    for (const text of ['- server\n- port\n', 'just text\n', '8080\n']) {
      const file = yamlFile(text);
      expect(configError(() => loadConfig({ file, env: {} })).message).toMatch(
        new RegExp(`^config file ${file}: expected a mapping of settings .* got `),
      );
    }
    // `server: 8080` is one problem about `server`, also with HOST set in the environment.
    const err = configError(() => loadConfig({ file: yamlFile('server: 8080\n'), env: { HOST: '0.0.0.0' } }));
    expect(err.issues).toEqual([
      'server: expected a mapping of host, port, bodyLimitBytes, shutdownGraceMs, keepAliveTimeoutMs, responseIdleTimeoutMs, got 8080',
    ]);
  });

  it('shows every YAML syntax error whole, with the line and a caret', () => {
    const file = yamlFile('server: [1, 2\nlog: {level: x\n');
    const err = configError(() => loadConfig({ file, env: {} }));
    expect(err.issues.length).toBeGreaterThanOrEqual(1);
    expect(err.message).toContain('not valid YAML');
    expect(err.message).toContain('server: [1, 2');
    expect(err.message).toMatch(/\n\s*\^/);
    expect(err.message).toMatch(/line \d+, column \d+/);
  });

  it.each([
    ['/api/v1/projects/*/assets/**', 'patterns apply to the path after /api/v1/projects/{project}', '/assets/**'],
    ['/api/v1/projects/my-project/assets', 'patterns apply to the path after', '/assets'],
    ['/assets/***', '"*" is one segment and "**" any number of segments; "***" means neither', '/assets/**'],
    ['/assets**', '"**" stands for whole segments only', '/**'],
    ['/assets/{id}', 'a path parameter such as {id} is written "*"', '/assets/*'],
    ['/assets//byids', 'it has an empty segment', '/assets/byids'],
    ['/asset/**', 'CDF has no API "/asset"', '/assets/**'],
    ['/TimeSeries/list', 'CDF has no API "/TimeSeries"', '/timeseries/list'],
  ])('refuses %s, which can never match a CDF path', (pattern, why, fix) => {
    for (const overrides of [
      limit({ match: pattern }),
      { cache: { rules: [{ match: [pattern], ttlMs: 1 }] } },
      { cdfVersion: { routes: [{ match: pattern, version: '20230101' }] } },
    ]) {
      const message = configError(() => load(overrides)).message;
      expect(message).toContain(`${JSON.stringify(pattern)} can never match a CDF path: ${why}`);
      expect(message).toContain(`write ${JSON.stringify(fix)}`);
    }
  });

  it('accepts the patterns of the default table and plain globs', () => {
    for (const pattern of ['/', '/**', '/assets', '/assets/*', '/streams/*/records', '/models/**', '/x/**/y']) {
      expect(load(limit({ match: pattern })).limits[0].match).toEqual([pattern]);
    }
  });
});

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node dist/main.js` with the given environment and arguments; killed if it does not exit by itself. */
function runMain(env: Record<string, string>, args: string[] = []): Promise<Exit> {
  const base = { ...process.env };
  for (const name of ['GATEWAY_CONFIG', 'CDF_BASE_URL', 'PORT', 'HOST', 'LOG_LEVEL']) delete base[name];
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [MAIN, ...args], {
      env: { ...base, PORT: '0', HOST: '127.0.0.1', CDF_BASE_URL: 'http://127.0.0.1:9', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => {
      stdout += c;
    });
    proc.stderr.on('data', (c: Buffer) => {
      stderr += c;
    });
    const guard = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the command line', () => {
  it('exits 2 naming limits[0].rate for a bad value in GATEWAY_CONFIG', async () => {
    const file = yamlFile('limits: [{name: a, match: "/**", per: project, rate: fast, burst: 1, concurrency: 1}]\n');
    const run = await runMain({ GATEWAY_CONFIG: file });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('limits[0].rate');
    expect(run.stderr).toContain('expected a number > 0, got "fast"');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('exits 2 for an unknown key, in GATEWAY_CONFIG or --config', async () => {
    const file = yamlFile('server:\n  hots: 127.0.0.1\n');
    for (const run of [await runMain({ GATEWAY_CONFIG: file }), await runMain({}, ['--config', file])]) {
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('server.hots: unknown key');
    }
  });

  it('exits 2 for an unreadable config file', async () => {
    const missing = join(dir, 'nope', 'gateway.yaml');
    const run = await runMain({ GATEWAY_CONFIG: missing });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(missing);
    expect(run.stderr).toContain('cannot be read');
  });

  it('exits 2 for a bad PORT, LOG_LEVEL or command-line option', async () => {
    const port = await runMain({ PORT: 'abc' });
    expect(port.code).toBe(2);
    expect(port.stderr).toContain('PORT: expected a number, got "abc"');
    const level = await runMain({ LOG_LEVEL: 'loud' });
    expect(level.code).toBe(2);
    expect(level.stderr).toContain('log.level');
    const option = await runMain({}, ['--no-such-option']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('no-such-option');
  });

  it('answers --help with the options and exit 0', async () => {
    for (const flag of ['--help', '-h']) {
      const run = await runMain({}, [flag]);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('--config');
      expect(run.stdout).toContain('GATEWAY_CONFIG');
      expect(run.stdout).toContain('config/default.yaml');
    }
  });

  it('exits 2 with every problem of a file in one message', async () => {
    const file = yamlFile(
      'server: { bodyLimitBytes: "x" }\nlimits: [{name: a, match: "/assets/***", per: project, rate: 0, burst: 1, concurrency: 1}]\n',
    );
    const run = await runMain({ GATEWAY_CONFIG: file, LOG_LEVEL: 'verbose' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('4 problems');
    for (const key of [
      'server.bodyLimitBytes:',
      'limits[0].match:',
      'limits[0].rate:',
      'LOG_LEVEL=verbose (sets log.level):',
    ])
      expect(run.stderr).toContain(key);
  });

  it('exits 2 naming metrics.port when the admin port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const run = await runMain({ GATEWAY_CONFIG: yamlFile(`metrics: { port: ${port} }\n`) });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`metrics.port: cannot listen on 127.0.0.1:${port}`);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('exits 2 naming server.port when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const run = await runMain({ PORT: String(port) });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('server.port');
      expect(run.stderr).toContain(String(port));
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});
