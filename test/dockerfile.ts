/**
 * The Dockerfile, read the way Docker reads it: test/docker.test.ts checks what it says, test/image.test.ts
 * checks that the image built from it does so.
 */
import { readFileSync } from 'node:fs';

export interface Instruction {
  op: string;
  /** RUN's own options (--mount=..., --network=...), which come before the command. */
  flags: string[];
  args: string;
}

/** Instructions with continuation lines joined and comments dropped, split into stages at FROM. */
export function parseDockerfile(text: string): Instruction[][] {
  const stages: Instruction[][] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full === '' || full.startsWith('#')) continue;
    const [, word, rest] = /^(\S+)\s*(.*)$/.exec(full)!;
    const op = word.toUpperCase();
    let args = rest;
    const flags: string[] = [];
    if (op === 'RUN') {
      for (let m = /^(--\S+)\s+/.exec(args); m; m = /^(--\S+)\s+/.exec(args)) {
        flags.push(m[1]);
        args = args.slice(m[0].length);
      }
    }
    if (op === 'FROM') stages.push([]);
    stages.at(-1)?.push({ op, flags, args });
  }
  return stages;
}

export const stages = parseDockerfile(readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8'));
export const runStage = stages.at(-1) ?? [];

/** The arguments of every `op` instruction of a stage (the image's stage unless told). */
export const args = (op: string, stage = runStage) => stage.filter((i) => i.op === op).map((i) => i.args);

/** ENV KEY=value pairs of a stage. */
export const envOf = (stage: Instruction[]): Record<string, string> =>
  Object.fromEntries(
    args('ENV', stage).flatMap((a) => [...a.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)].map((m) => [m[1], m[2]])),
  );

/** The exec-form command of HEALTHCHECK [options] CMD [...]. */
export const healthcheckCommand = (): string[] =>
  JSON.parse(/\bCMD\s+(\[.*\])$/.exec(args('HEALTHCHECK')[0] ?? '')?.[1] ?? 'null');

/** The exec-form CMD of the image. */
export const cmd = (): string[] => JSON.parse(args('CMD')[0] ?? 'null');
