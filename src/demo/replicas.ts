import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

export interface Replica {
  url: string;
  process: ChildProcess;
  logFile: string;
}

/**
 * Gateway replicas as separate processes, the way they run in production, sharing their buckets in
 * Redis. Each logs to a file; its URL is read from its "listening" line there.
 */
export async function startReplicas(count: number, config: Record<string, unknown>): Promise<Replica[]> {
  const dir = mkdtempSync(join(tmpdir(), 'cdf-gateway-demo-'));
  const configFile = join(dir, 'gateway.yaml');
  // JSON is YAML: the config goes as it is.
  writeFileSync(configFile, JSON.stringify(config));
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const logFile = join(dir, `replica-${i + 1}.log`);
      const child = spawn(process.execPath, [MAIN], {
        env: { ...process.env, GATEWAY_CONFIG: configFile, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
        stdio: ['ignore', openSync(logFile, 'w'), 'inherit'],
      });
      for (let waited = 0; waited < 15_000; waited += 50) {
        const line = readFileSync(logFile, 'utf8')
          .split('\n')
          .find((l) => l.includes('cdf-gateway listening'));
        if (line) return { url: (JSON.parse(line) as { url: string }).url, process: child, logFile };
        if (child.exitCode !== null) break;
        await sleep(50);
      }
      child.kill('SIGKILL');
      throw new Error(`gateway replica ${i + 1} did not start; see ${logFile}`);
    }),
  );
}
