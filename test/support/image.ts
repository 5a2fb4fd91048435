import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { docker } from './docker.js';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Tag derived from everything that goes into the image, so a stale image is never reused. */
function contentTag(): string {
  const hash = createHash('sha256');
  const inputs = [
    'Dockerfile',
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
    ...filesUnder(join(ROOT, 'src')).map((p) => relative(ROOT, p)),
  ].sort();
  for (const file of inputs) hash.update(file).update(readFileSync(join(ROOT, file)));
  return `berth:test-${hash.digest('hex').slice(0, 12)}`;
}

function holderAlive(lock: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  } catch {
    return true; // between mkdir and writing the pid: give the holder the benefit of the doubt
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function imageExists(tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch {
    return false;
  }
}

/**
 * The worker image, built from the project's own Dockerfile (on a base made from the host's
 * Node when no registry is reachable). Built once per content; test files share it through a
 * lock directory because node --test runs files as separate processes.
 */
export async function ensureWorkerImage(): Promise<string> {
  const tag = process.env.BERTH_TEST_IMAGE ?? contentTag();
  if (await imageExists(tag)) return tag;
  const lock = '/tmp/berth-test-image.lock';
  for (let waited = 0; ; waited += 500) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      if (await imageExists(tag)) return tag;
      // A lock left by a build that was killed (a stopped session) is broken at once.
      if (!holderAlive(lock) || waited > 300_000) rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    if (!(await imageExists(tag))) execFileSync(join(ROOT, 'scripts/build-image.sh'), [tag], { stdio: ['ignore', 'ignore', 'inherit'], cwd: ROOT });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return tag;
}

/** The V8 flags berth's processes run with: those of the image's entrypoint (the one place they are set). */
export function berthNodeFlags(): string {
  const entrypoint = /^ENTRYPOINT \[(.*)\]$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))![1]!;
  return (JSON.parse(`[${entrypoint}]`) as string[]).slice(1).join(' ');
}
