/**
 * Issue #7: the Docker image and the compose file, checked without a Docker engine.
 * The files are parsed and their promises checked; the image's start command is run the way the
 * image runs it (npm pack, npm ci --omit=dev --ignore-scripts, node dist/main.js with its environment).
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../src/config/index.js';
import { type Simulator, startSimulator } from '../src/sim/index.js';
import { args, envOf, healthcheckCommand, runStage, stages } from './dockerfile.js';
import { httpGet } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const run = promisify(execFile);

// --- docker-compose.yml ------------------------------------------------------------------------

interface Service {
  image?: string;
  build?: string | { context: string };
  command?: string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: number };
  profiles?: string[];
  stop_grace_period?: string;
  init?: boolean;
  user?: string;
}

const compose = parse(read('docker-compose.yml')) as { name?: string; services: Record<string, Service> };
const services = compose.services;

/** `${VAR:-default}` as compose resolves it with VAR unset; `${VAR}` is empty. */
const unset = (s: string) =>
  s.replace(/\$\{[A-Z0-9_]+(?::?-([^}]*))?\}/g, (_m, dflt: string | undefined) => dflt ?? '');

/** A volume's host path (resolved with defaults), the path in the container, and whether it is read-only. */
function mounts(service: Service): Array<{ host: string; target: string; readOnly: boolean }> {
  return (service.volumes ?? []).map((v) => {
    const [host, target, mode] = unset(v).split(':');
    return { host, target, readOnly: mode === 'ro' };
  });
}

function dependsOn(service: Service): Record<string, string | undefined> {
  const d = service.depends_on ?? [];
  return Array.isArray(d)
    ? Object.fromEntries(d.map((name) => [name, undefined]))
    : Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v?.condition]));
}

/** Compose durations: "30s", "1m30s", "500ms". */
function durationMs(value: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  expect(parts.map((p) => p[0]).join(''), `duration ${value}`).toBe(value);
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * units[unit], 0);
}

const GATEWAYS = ['gateway', 'gateway-2'];
/** Files mounted by the other engineer's monitoring work: asserted, they exist at merge. */
const MONITORING_FILES = ['config/prometheus.yml', 'config/grafana/provisioning', 'config/grafana/dashboards'];

describe('docker-compose.yml', () => {
  it('has the app, the gateway and the profiled services', () => {
    expect(Object.keys(services).sort()).toEqual([
      'app',
      'gateway',
      'gateway-2',
      'grafana',
      'prometheus',
      'redis',
      'sim',
    ]);
    expect(services.app.profiles).toBeUndefined();
    expect(services.gateway.profiles).toBeUndefined();
    expect(services['gateway-2'].profiles).toEqual(['cluster']);
    expect(services.redis.profiles).toEqual(['cluster']);
    expect(services.prometheus.profiles).toEqual(['monitoring']);
    expect(services.grafana.profiles).toEqual(['monitoring']);
    expect(services.sim.profiles).toEqual(['sim']);
  });

  it('builds the gateway, its second replica and the simulator from the Dockerfile as one image', () => {
    for (const name of [...GATEWAYS, 'sim']) {
      const s = services[name];
      const context = typeof s.build === 'string' ? s.build : s.build?.context;
      expect(context, name).toBe('.');
      expect(s.image, name).toBe('cdf-gateway:local');
    }
    expect(services.sim.command).toEqual(['node', 'dist/sim/main.js', '--host', '0.0.0.0', '--port', '4000']);
    expect(existsSync(join(ROOT, 'src/sim/main.ts'))).toBe(true);
  });

  it('pins the images it pulls', () => {
    expect(services.app.image).toBe('node:22-slim');
    expect(services.redis.image).toBe('redis:7-alpine');
    expect(services.prometheus.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    expect(services.grafana.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
  });

  it('publishes the gateways on 8080, on loopback only', () => {
    expect(services.gateway.ports).toEqual([`127.0.0.1:\${GATEWAY_PORT:-8080}:8080`]);
    expect(services['gateway-2'].ports?.map(unset)).toEqual(['127.0.0.1:8081:8080']);
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) expect(unset(p), name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  it('checks the health of both gateway replicas on /healthz, with tools the image has', () => {
    for (const name of GATEWAYS) {
      const test = services[name].healthcheck?.test ?? [];
      expect(test.slice(0, 3), name).toEqual(['CMD', 'node', '-e']);
      expect(test[3], name).toContain('http://127.0.0.1:8080/healthz');
      expect(test[3], name).toContain('process.exit(1)');
    }
    expect(services.redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('starts the app once the gateway is healthy and points it at the gateway', () => {
    expect(dependsOn(services.app)).toEqual({ gateway: 'service_healthy' });
    expect(services.app.environment?.GATEWAY_URL).toBe('http://gateway:8080');
    expect(services.app.environment?.CDF_PROJECT).toMatch(/^\$\{CDF_PROJECT/);
    expect(services.app.command).toEqual(['node', '/app/sidecar-app.mjs']);
    expect(mounts(services.app)).toEqual([
      { host: './examples/sidecar-app.mjs', target: '/app/sidecar-app.mjs', readOnly: true },
    ]);
    expect(dependsOn(services['gateway-2'])).toEqual({ redis: 'service_healthy' });
    expect(dependsOn(services.prometheus)).toHaveProperty('gateway');
    expect(dependsOn(services.grafana)).toHaveProperty('prometheus');
  });

  it('configures the gateways from the environment and a read-only YAML file', () => {
    for (const name of GATEWAYS) {
      const env = services[name].environment ?? {};
      expect(env.CDF_BASE_URL, name).toBe(`\${CDF_BASE_URL:-https://api.cognitedata.com}`);
      expect(env.LOG_LEVEL, name).toBe(`\${LOG_LEVEL:-info}`);
      expect(env.GATEWAY_CONFIG, name).toBe('/etc/cdf-gateway/config.yaml');
      const config = mounts(services[name]).find((m) => m.target === '/etc/cdf-gateway/config.yaml');
      expect(config?.readOnly, name).toBe(true);
    }
    expect(services.gateway.volumes).toContain(
      `\${GATEWAY_CONFIG_FILE:-./config/example.yaml}:/etc/cdf-gateway/config.yaml:ro`,
    );
    // Unless GATEWAY_CONFIG_FILE names one file for both, the second replica gets the cluster file.
    expect(services['gateway-2'].volumes).toContain(
      `\${GATEWAY_CONFIG_FILE:-./config/cluster.yaml}:/etc/cdf-gateway/config.yaml:ro`,
    );
  });

  it('mounts files that exist in the repository', () => {
    const missing: string[] = [];
    for (const [name, s] of Object.entries(services)) {
      for (const m of mounts(s)) {
        if (!m.host.startsWith('./') || MONITORING_FILES.includes(m.host.slice(2))) continue;
        if (!existsSync(join(ROOT, m.host))) missing.push(`${name}: ${m.host}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('mounts the monitoring configuration where Prometheus and Grafana read it', () => {
    expect(mounts(services.prometheus)).toContainEqual({
      host: './config/prometheus.yml',
      target: '/etc/prometheus/prometheus.yml',
      readOnly: true,
    });
    expect(mounts(services.grafana).map((m) => m.host)).toEqual([
      './config/grafana/provisioning',
      './config/grafana/dashboards',
    ]);
    // config/prometheus.yml and config/grafana/ come with the monitoring work: they must exist at merge.
    for (const path of MONITORING_FILES) expect(existsSync(join(ROOT, path)), `${path} exists`).toBe(true);
  });

  it('gives the gateways longer to stop than server.shutdownGraceMs of their configuration', () => {
    for (const name of GATEWAYS) {
      const file = mounts(services[name]).find((m) => m.target === '/etc/cdf-gateway/config.yaml')!.host;
      const config = loadConfig({ file: join(ROOT, file), env: {} });
      const grace = services[name].stop_grace_period;
      expect(grace, name).toBeDefined();
      expect(durationMs(grace!), name).toBeGreaterThan(config.server.shutdownGraceMs);
    }
  });

  it('documents every variable it uses in .env.example', () => {
    const used = new Set([...read('docker-compose.yml').matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]));
    const documented = new Set([...read('.env.example').matchAll(/^#?([A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect([...used].filter((v) => !documented.has(v))).toEqual([]);
    expect(documented.has('COMPOSE_PROFILES')).toBe(true);
  });
});

describe('config files for compose', () => {
  it('config/example.yaml is a valid configuration showing a few overrides', () => {
    const config = loadConfig({ file: join(ROOT, 'config/example.yaml'), env: {} });
    const defaults = loadConfig({ env: {} });
    expect(config.cdfVersion.default).toMatch(/^\d{8}$/);
    expect(config.cache.rules.length).toBeGreaterThan(0);
    expect(config.limits).not.toEqual(defaults.limits);
    // A mapping merges with the default table: every default bucket stays, two figures change, one is added.
    const names = config.limits.map((l) => l.name);
    expect(names).toEqual(expect.arrayContaining(defaults.limits.map((l) => l.name)));
    expect(names.length).toBe(defaults.limits.length + 1);
    const byName = (list: typeof config.limits, name: string) => list.find((l) => l.name === name)!;
    expect(byName(config.limits, 'datapoints').rate).toBeGreaterThan(byName(defaults.limits, 'datapoints').rate);
    expect(byName(config.limits, 'datapoints').match).toEqual(byName(defaults.limits, 'datapoints').match);
    expect(config.limits.filter((l) => l.fallback)).toHaveLength(1);
    expect(config.cluster.redisUrl).toBeNull();
  });

  it('the ConfigMaps and the gateway configuration in docs/deploy.md are valid configurations', () => {
    const blocks = [...read('docs/deploy.md').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
    const docs = blocks.flatMap((block) => parseAllDocuments(block).map((d) => d.toJS()));
    // The sidecars' shared gateway.yaml, and every ConfigMap's config.yaml.
    const configs: string[] = blocks.filter((b) => b.startsWith('# gateway.yaml'));
    for (const d of docs) if (d?.kind === 'ConfigMap') configs.push(d.data['config.yaml']);
    expect(configs.length).toBeGreaterThanOrEqual(3);
    const dir = mkdtempSync(join(tmpdir(), 'cdf-gateway-docs-'));
    try {
      for (const text of configs) {
        writeFileSync(join(dir, 'config.yaml'), text);
        expect(() => loadConfig({ file: join(dir, 'config.yaml'), env: {} })).not.toThrow();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const deployments = docs.filter((d) => d?.kind === 'Deployment');
    expect(deployments.length).toBeGreaterThanOrEqual(2);
    for (const deployment of deployments) {
      const pod = deployment.spec.template.spec;
      const grace = loadConfig({ env: {} }).server.shutdownGraceMs;
      expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(grace);
      const gateway = pod.initContainers.find((c: { name: string }) => c.name === 'cdf-gateway');
      expect(gateway.restartPolicy).toBe('Always');
      expect(gateway.readinessProbe.httpGet.path).toBe('/readyz');
      expect(gateway.livenessProbe.httpGet.path).toBe('/healthz');
    }
  });

  it('config/cluster.yaml shares the quota of two replicas in the compose Redis', () => {
    const config = loadConfig({ file: join(ROOT, 'config/cluster.yaml'), env: {} });
    expect(config.cluster.redisUrl).toBe('redis://redis:6379');
    expect(config.cluster.expectedReplicas).toBe(2);
  });
});

// --- docker-compose.yml, read by docker-compose ----------------------------------------------------

const haveCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;
if (!haveCompose && !process.env.CI) {
  console.warn(
    'docker.test.ts: no docker-compose, so no compose implementation reads the compose file here. ' +
      'Install it with: apt-get install docker-compose',
  );
}

describe.skipIf(!haveCompose && !process.env.CI)('docker-compose.yml, as docker-compose reads it', () => {
  let dir: string;
  /** docker-compose on the file as a user runs it from the repository, without their environment or .env. */
  const composeRun = (profiles: string[], ...argv: string[]) =>
    run(
      'docker-compose',
      [
        '--project-directory',
        ROOT,
        '--file',
        join(dir, 'docker-compose.yml'),
        '--env-file',
        join(dir, 'empty.env'),
        ...profiles.flatMap((p) => ['--profile', p]),
        ...argv,
      ],
      { env: { PATH: process.env.PATH } },
    );

  beforeAll(() => {
    expect(haveCompose, 'CI checks the compose file with docker-compose: apt-get install docker-compose').toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'cdf-gateway-compose-'));
    // Debian 12's docker-compose (1.29) predates the Compose Specification's top-level `name` (Compose v2
    // reads it); it reads the rest of the file as written, and the name is checked against the spec below.
    const text = read('docker-compose.yml');
    const withoutName = text.replace(/^name: .*\n/m, '');
    expect(text.length - withoutName.length).toBe(`name: ${compose.name}\n`.length);
    writeFileSync(join(dir, 'docker-compose.yml'), withoutName);
    writeFileSync(join(dir, 'empty.env'), '');
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('names the project as the Compose Specification allows', () => {
    expect(compose.name).toMatch(/^[a-z0-9][a-z0-9_-]*$/);
  });

  it('is valid with every profile, and each set of services it starts has what those depend on', async () => {
    const profiles = (await composeRun([], 'config', '--profiles')).stdout.trim().split('\n');
    expect(profiles).toEqual(['cluster', 'monitoring', 'sim']);
    for (const active of [[], ...profiles.map((p) => [p]), profiles]) {
      const { stdout, stderr } = await composeRun(active, 'config');
      // No warning either: every variable has a default.
      expect(stderr, `profiles ${active}`).toBe('');
      const resolved = (parse(stdout) as { services: Record<string, Service> }).services;
      const started = Object.keys(resolved).filter(
        (name) => !resolved[name].profiles || resolved[name].profiles!.some((p) => active.includes(p)),
      );
      for (const name of started) {
        for (const dep of Object.keys(dependsOn(resolved[name]))) {
          expect(started, `${name} depends on ${dep} (profiles: ${active})`).toContain(dep);
        }
        // Paths resolved by compose: the build context is the repository, every mounted file exists.
        const s = resolved[name];
        if (s.build) expect(typeof s.build === 'string' ? s.build : s.build.context).toBe(ROOT);
        for (const m of mounts(s)) expect(existsSync(m.host), `${name}: ${m.host}`).toBe(true);
      }
    }
  });

  it('publishes the defaults of .env.example, on loopback', async () => {
    const resolved = (parse((await composeRun(['cluster'], 'config')).stdout) as { services: Record<string, Service> })
      .services;
    expect(resolved.gateway.ports).toEqual(['127.0.0.1:8080:8080/tcp']);
    expect(resolved['gateway-2'].ports).toEqual(['127.0.0.1:8081:8080/tcp']);
    expect(mounts(resolved.gateway).map((m) => m.host)).toContain(join(ROOT, 'config/example.yaml'));
  });
});

// --- the Kubernetes recipes, typed as Kubernetes objects ----------------------------------------

/** YAML documents of the docs' ```yaml blocks, with where they come from. */
function yamlDocuments(path: string): Array<{ where: string; doc: Record<string, unknown> }> {
  const blocks = [...read(path).matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
  return blocks.flatMap((block, b) =>
    parseAllDocuments(block).map((d, i) => ({
      where: `${path}, yaml block ${b + 1}, document ${i + 1}`,
      doc: d.toJS(),
    })),
  );
}

/**
 * TypeScript's checks against kubernetes-types (the API's types, generated from Kubernetes' OpenAPI): the
 * kinds, every field's name (an object literal may name no field its type lacks) and its type. A program
 * of one file that is not on disk; the diagnostics it gives, as text, each with where its object comes from.
 */
function typecheck(declarations: Array<{ name: string; where: string; type: string; value: unknown }>): string[] {
  const file = join(ROOT, 'test', 'kubernetes-recipes.generated.ts');
  const text = [
    "import type * as apps_v1 from 'kubernetes-types/apps/v1';",
    "import type * as core_v1 from 'kubernetes-types/core/v1';",
    ...declarations.map((d) => `export const ${d.name}: ${d.type} = ${JSON.stringify(d.value, null, 2)};`),
  ].join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, version, ...rest) =>
    name === file ? ts.createSourceFile(name, text, version) : getSourceFile(name, version, ...rest);
  host.fileExists = (name) => name === file || fileExists(name);
  host.readFile = (name) => (name === file ? text : readFile(name));
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file?.fileName !== file || d.start === undefined) return message;
    // The declaration the error is in: the last one that starts before it.
    const line = d.file.getLineAndCharacterOfPosition(d.start).line;
    const lines = text.split('\n').slice(0, line + 1);
    const name = /^export const (\w+)/.exec(lines.findLast((l) => l.startsWith('export const ')) ?? '')?.[1];
    return `${declarations.find((x) => x.name === name)?.where ?? name}: ${message}`;
  });
}

describe('the Kubernetes recipes of docs/deploy.md and the README, as Kubernetes objects', () => {
  it('type-check as the kinds they name, with the fields they use', { timeout: 30_000 }, () => {
    const TYPES: Record<string, string> = {
      'v1 ConfigMap': 'core_v1.ConfigMap',
      'apps/v1 Deployment': 'apps_v1.Deployment',
    };
    const objects = yamlDocuments('docs/deploy.md').filter(({ doc }) => doc?.apiVersion || doc?.kind);
    const kinds = objects.map(({ doc }) => `${doc.apiVersion} ${doc.kind}`);
    expect([...new Set(kinds)].sort()).toEqual(Object.keys(TYPES).sort());
    expect(kinds.filter((k) => k === 'apps/v1 Deployment').length).toBeGreaterThanOrEqual(2);
    const declarations = objects.map(({ where, doc }, i) => ({
      name: `deploy${i}`,
      type: TYPES[`${doc.apiVersion} ${doc.kind}`],
      value: doc,
      where,
    }));
    // The README's snippet is a pod template: its spec and nothing else.
    const readme = yamlDocuments('README.md').filter(({ doc }) => Object.keys(doc ?? {}).join() === 'spec');
    expect(readme).toHaveLength(1);
    declarations.push({
      name: 'readme0',
      type: 'core_v1.PodTemplateSpec',
      value: readme[0].doc,
      where: readme[0].where,
    });
    // And one with a misspelt field, which must be the only error: the check is as strict as it says.
    const misspelt = structuredClone(declarations.find((d) => d.type === 'apps_v1.Deployment')!.value) as {
      spec: { template: { spec: { initContainers: Array<Record<string, unknown>> } } };
    };
    misspelt.spec.template.spec.initContainers[0].restartPolcy = 'Always';
    const errors = typecheck([
      ...declarations,
      { name: 'misspelt', where: 'the misspelt copy', type: 'apps_v1.Deployment', value: misspelt },
    ]);
    expect(errors.filter((e) => !e.startsWith('the misspelt copy: '))).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^the misspelt copy: .*'"?restartPolcy"?' does not exist in type 'Container'/s);
  });
});

// --- Dockerfile ----------------------------------------------------------------------------------

describe('Dockerfile', () => {
  it('builds in one stage and runs in another, both on node:22-slim', () => {
    expect(stages.length).toBe(2);
    expect(stages[0][0].args).toBe('node:22-slim AS build');
    expect(runStage[0].args).toBe('node:22-slim');
  });

  it('builds with the dev dependencies', () => {
    const build = args('RUN', stages[0]);
    expect(build.findIndex((r) => r.startsWith('npm ci'))).toBeGreaterThanOrEqual(0);
    expect(build.findIndex((r) => r.startsWith('npm ci'))).toBeLessThan(build.indexOf('npm run build'));
    expect(build.some((r) => r.includes('--omit=dev'))).toBe(false);
  });

  it('runs with the production dependencies, dist/ and config/ only', () => {
    expect(args('RUN').some((r) => r.startsWith('npm ci --omit=dev --ignore-scripts'))).toBe(true);
    expect(args('COPY')).toEqual([
      'package.json package-lock.json ./',
      '--from=build /app/dist ./dist',
      'config ./config',
    ]);
  });

  it('gives npm in both stages the CA of the build secret npm_ca, which no layer keeps', () => {
    for (const stage of stages) {
      const npmCi = stage.filter((i) => i.op === 'RUN' && i.args.startsWith('npm ci'));
      expect(npmCi.map((i) => i.flags)).toEqual([['--mount=type=secret,id=npm_ca']]);
      // A build argument, not ENV: the image's configuration does not keep it. npm skips a cafile that
      // does not exist, which is the case when the build is given no secret.
      expect(args('ARG', stage)).toEqual(['npm_config_cafile=/run/secrets/npm_ca']);
      expect(Object.keys(envOf(stage)).filter((k) => /cafile|_CA_/i.test(k))).toEqual([]);
    }
  });

  it('runs as the non-root node user with the gateway reachable on 0.0.0.0:8080', () => {
    expect(args('USER')).toEqual(['node']);
    const env = envOf(runStage);
    expect(env).toMatchObject({ HOST: '0.0.0.0', PORT: '8080', NODE_ENV: 'production' });
    expect(args('EXPOSE')).toEqual(['8080']);
  });

  it('checks /healthz with node alone', () => {
    const cmd = healthcheckCommand();
    expect(cmd.slice(0, 2)).toEqual(['node', '-e']);
    expect(cmd[2]).toContain('/healthz');
    expect(cmd[2]).toContain('process.exit(1)');
  });

  it('starts node itself (exec form) so SIGTERM reaches it, with a sidecar runtime', () => {
    expect(args('CMD').map((c) => JSON.parse(c))).toEqual([['node', '--v8-pool-size=1', 'dist/main.js']]);
    expect(args('ENTRYPOINT')).toEqual([]);
  });

  it('launches node as npm start and the package bin do (one launch, measured by the benchmarks)', () => {
    const cmd = JSON.parse(args('CMD')[0]) as string[];
    const pkg = JSON.parse(read('package.json')) as { scripts: { start: string }; bin: Record<string, string> };
    expect(pkg.scripts.start).toBe(cmd.join(' '));
    expect(pkg.bin['cdf-gateway']).toBe(cmd.at(-1));
    // The bin runs through its first line: env -S splits the flags off for node (coreutils 8.30+, BSD env).
    const flags = cmd.slice(1, -1).join(' ');
    expect(read('src/main.ts').split('\n', 1)[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
    expect(read('dist/main.js').split('\n', 1)[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
  });

  it('.dockerignore keeps what the build does not need out of the context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const path of ['node_modules', 'dist', 'test', 'bench', 'docs', '.git', '.ci', '.env'])
      expect(ignored).toContain(path);
    for (const path of ['src', 'config', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
      expect(ignored).not.toContain(path);
    }
    // Nor what any COPY takes from the context, or a folder it is in (issue #28: scripts/ was ignored).
    const sources = stages.flatMap((stage) =>
      args('COPY', stage)
        .filter((a) => !a.startsWith('--from='))
        .flatMap((a) => a.split(/\s+/).slice(0, -1)),
    );
    expect(sources).toContain('scripts/copy-static.mjs');
    for (const source of sources) {
      const parts = source.split('/');
      for (let i = 1; i <= parts.length; i++) expect(ignored, source).not.toContain(parts.slice(0, i).join('/'));
    }
  });
});

// --- the image's start command, run the way the image runs it ------------------------------------

/** Resolves with the first JSON stdout line for which `pick` returns a value. */
function waitForLine<T>(
  child: ChildProcess,
  pick: (line: Record<string, unknown>) => T | undefined,
  what: string,
): Promise<T> {
  return new Promise((done, fail) => {
    let buffered = '';
    let stderr = '';
    const timer = setTimeout(() => fail(new Error(`no ${what} within 20 s; stderr: ${stderr}`)), 20_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line);
        } catch {
          continue;
        }
        const value = pick(parsed);
        if (value !== undefined) {
          clearTimeout(timer);
          done(value);
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`exited with ${code} before ${what}; stderr: ${stderr}`));
    });
  });
}

const exitCode = (child: ChildProcess) =>
  new Promise<number | null>((done) => {
    if (child.exitCode !== null) done(child.exitCode);
    else child.once('exit', (code) => done(code));
  });

describe('the image start command', () => {
  let dir: string;
  let pkg: string;
  let sim: Simulator;
  let gateway: ChildProcess | undefined;
  let files: string[] = [];

  // npm ci from the local cache takes 10-40 s; from the registry, longer.
  beforeAll(async () => {
    expect(existsSync(join(ROOT, 'dist/main.js')), 'dist/ is built (npm run build)').toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'cdf-gateway-image-'));
    sim = await startSimulator({ port: 0 });
    // --ignore-scripts: prepare would rebuild dist/, which npm test has just done.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: ROOT,
    });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    files = packed.files.map((f) => f.path);
    await run('tar', ['-xzf', join(dir, packed.filename), '-C', dir]);
    pkg = join(dir, 'package');
    // The tarball has no lock file; the image copies the repository's.
    copyFileSync(join(ROOT, 'package-lock.json'), join(pkg, 'package-lock.json'));
    await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: pkg,
      env: { ...process.env, NODE_ENV: 'production' },
      maxBuffer: 16 * 1024 * 1024,
    });
  }, 240_000);

  afterAll(async () => {
    if (gateway && gateway.exitCode === null) gateway.kill('SIGKILL');
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('packs dist/ and config/ and installs the production dependencies only', () => {
    expect(files).toContain('dist/main.js');
    expect(files).toContain('dist/sim/main.js');
    expect(files).toContain('config/default.yaml');
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false);
    expect(existsSync(join(pkg, 'node_modules/fastify'))).toBe(true);
    expect(existsSync(join(pkg, 'node_modules/vitest'))).toBe(false);
  });

  it('runs as the installed bin, through the env -S of its first line', async () => {
    // npm makes a bin executable when it installs the package; the unpacked tarball is not installed.
    chmodSync(join(pkg, 'dist/main.js'), 0o755);
    const { stdout } = await run(join(pkg, 'dist/main.js'), ['--help'], { cwd: pkg });
    expect(stdout).toContain('Usage: cdf-gateway');
  });

  it('serves /healthz and a proxied call, passes its health checks, and exits 0 on SIGTERM', {
    timeout: 60_000,
  }, async () => {
    const env = envOf(runStage);
    // The image's environment; loopback and a free port for the test, the compose file's config file.
    gateway = spawn(process.execPath, JSON.parse(args('CMD')[0]).slice(1), {
      cwd: pkg,
      env: {
        PATH: process.env.PATH,
        ...env,
        HOST: '127.0.0.1',
        PORT: '0',
        CDF_BASE_URL: sim.url,
        GATEWAY_CONFIG: join(ROOT, 'config/example.yaml'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const url = await waitForLine(
      gateway,
      (l) => (l.msg === 'cdf-gateway listening' && typeof l.url === 'string' ? l.url : undefined),
      'listening line',
    );
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    expect((await httpGet(`${url}/healthz`)).status).toBe(200);
    expect((await httpGet(`${url}/readyz`)).status).toBe(200);
    const proxied = await httpGet(`${url}/api/v1/projects/p/assets?limit=1`, { authorization: 'Bearer t' });
    expect(proxied.status).toBe(200);
    expect(JSON.parse(proxied.body).items).toHaveLength(1);

    // The Dockerfile's HEALTHCHECK and the compose healthcheck, run as written.
    const port = new URL(url).port;
    const [node, ...hcArgs] = healthcheckCommand();
    expect(node).toBe('node');
    await expect(run(process.execPath, hcArgs, { env: { PATH: process.env.PATH, PORT: port } })).resolves.toBeDefined();
    const composeTest = services.gateway
      .healthcheck!.test.slice(2)
      .map((a) => a.replace('127.0.0.1:8080', `127.0.0.1:${port}`));
    await expect(run(process.execPath, composeTest)).resolves.toBeDefined();

    // The example app, as the compose file runs it, gets its asset through the gateway.
    const app = spawn(process.execPath, [join(ROOT, 'examples/sidecar-app.mjs')], {
      env: { PATH: process.env.PATH, GATEWAY_URL: url, CDF_PROJECT: 'p', CDF_TOKEN: 't', INTERVAL_MS: '200' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const status = await waitForLine(app, (l) => (l.msg === 'assets listed' ? l.status : undefined), 'assets listed');
      expect(status).toBe(200);
    } finally {
      app.kill('SIGTERM');
      expect(await exitCode(app)).toBe(0);
    }

    const start = Date.now();
    gateway.kill('SIGTERM');
    expect(await exitCode(gateway)).toBe(0);
    expect(Date.now() - start).toBeLessThan(10_000);

    // Stopped: the health check fails with exit code 1.
    await expect(run(process.execPath, hcArgs, { env: { PATH: process.env.PATH, PORT: port } })).rejects.toMatchObject({
      code: 1,
    });
  });
});
