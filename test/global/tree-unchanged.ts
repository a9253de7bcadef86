import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { relative, resolve } from 'node:path';

/**
 * vitest's globalSetup: the run fails when the tests left the work tree other than they found it (a tracked
 * file rewritten, deleted or restored, or a new file outside the git-ignored paths such as test/artifacts/).
 * What was already uncommitted before the run is compared by content, so a developer's own changes pass.
 * DASHBOARD_SCREENSHOT (set by `npm run screenshot`) names the one file a run may rewrite on purpose.
 */

/** Each path `git status` reports, with its status and a hash of what it holds now. */
function snapshot(root: string): Map<string, string> {
  const out = execFileSync('git', ['status', '--porcelain=v1', '-z', '--untracked-files=all'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const entries = new Map<string, string>();
  const fields = out.split('\0');
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    if (field.length < 4) continue;
    const status = field.slice(0, 2);
    const path = field.slice(3);
    // A rename or copy is followed by the path it came from.
    if (status.includes('R') || status.includes('C')) i++;
    entries.set(path, `${status} ${contentHash(resolve(root, path))}`);
  }
  return entries;
}

function contentHash(file: string): string {
  if (!existsSync(file) || !statSync(file).isFile()) return 'absent';
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function gitRoot(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8', stdio: 'pipe' }).trim();
  } catch {
    // Not a checkout (e.g. a copy of the sources without .git): nothing to compare.
    return null;
  }
}

export default function setup(): (() => void) | undefined {
  const root = gitRoot();
  if (root === null) return undefined;
  const before = snapshot(root);
  const allowed = new Set<string>();
  const screenshot = process.env.DASHBOARD_SCREENSHOT;
  if (screenshot) allowed.add(relative(root, resolve(screenshot)));
  return () => {
    const after = snapshot(root);
    const changed: string[] = [];
    for (const path of new Set([...before.keys(), ...after.keys()])) {
      if (allowed.has(path) || before.get(path) === after.get(path)) continue;
      changed.push(`${path} (${before.get(path) ?? 'clean'} -> ${after.get(path) ?? 'clean'})`);
    }
    if (changed.length > 0) {
      // vitest only logs an error thrown here ("error during close"): the exit code is set for it.
      process.exitCode = 1;
      throw new Error(
        `the tests changed the work tree; nothing in npm test may write a tracked file (write to test/artifacts/):\n  ${changed.join('\n  ')}`,
      );
    }
  };
}
