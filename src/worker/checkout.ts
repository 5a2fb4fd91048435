import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { EXIT } from '../core/exit-codes.js';

export interface CheckoutPlan {
  repo: string;
  /** e.g. https://github.com; the remote is `<serverUrl>/<repo>.git`. */
  serverUrl: string;
  dir: string;
  /** Commits per branch; 0 = full history. */
  depth: number;
  /** A pull request task: its number and the head commit and base branch pinned before launch. */
  pull?: { number: number; sha: string; baseRef: string };
  /** A branch, tag or sha to check out instead of the default branch. */
  ref?: string;
}

export type CheckoutResult = { ok: true; head: string; summary: string } | { ok: false; exitCode: number; error: string };

/**
 * git asks this helper for credentials when the server answers 401. It reads the token from the
 * environment when git runs, so the token is never in argv, in the remote URL or in .git/config;
 * the agent's own git commands (fetch, push) authenticate the same way.
 */
export const CREDENTIAL_HELPER = '!f() { test "$1" = get || exit 0; echo username=x-access-token; echo "password=$GITHUB_TOKEN"; }; f';

class GitError extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
  ) {
    super(stderr.trim().split('\n').filter(Boolean).pop() ?? `git ${args[0]} failed`);
  }
}

function git(args: string[], options: { cwd?: string; env: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd: options.cwd, env: options.env, maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new GitError(args, `${stderr}\n${(error as Error).message}`));
      else resolve(stdout.trim());
    });
  });
}

/**
 * Clones the task's repository into `dir` before the agent starts: a pull request at its pinned
 * head (fetched through `refs/pull/<n>/head`, with the base branch as a local branch and deepened
 * until their merge base is present, so `git diff <base>...HEAD` works on a shallow clone), an
 * explicit ref, or the default branch as a local branch.
 */
export async function checkout(plan: CheckoutPlan, baseEnv: NodeJS.ProcessEnv): Promise<CheckoutResult> {
  const env: NodeJS.ProcessEnv = { ...baseEnv, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '', SSH_ASKPASS: '', GIT_CONFIG_NOSYSTEM: '1' };
  const server = plan.serverUrl.replace(/\/$/, '');
  const run = (args: string[]) => git(args, { cwd: plan.dir, env });
  const depth = plan.depth > 0 ? [`--depth=${plan.depth}`] : [];
  try {
    mkdirSync(plan.dir, { recursive: true });
    await run(['init', '-q']);
    await run(['config', `credential.${server}/.helper`, CREDENTIAL_HELPER]);
    await run(['config', 'user.name', 'berth']);
    await run(['config', 'user.email', 'berth@users.noreply.github.com']);
    await run(['remote', 'add', 'origin', `${server}/${plan.repo}.git`]);
    if (plan.pull) {
      const { number, sha, baseRef } = plan.pull;
      const refspecs = [`+refs/pull/${number}/head:refs/remotes/origin/pull/${number}/head`, `+refs/heads/${baseRef}:refs/remotes/origin/${baseRef}`];
      await run(['fetch', '-q', '--no-tags', ...depth, 'origin', ...refspecs]);
      // The pull request moved after the pin: fetch the pinned commit itself (GitHub serves reachable shas).
      if (!(await has(run, sha))) await run(['fetch', '-q', '--no-tags', ...depth, 'origin', sha]);
      await run(['checkout', '-q', '--detach', sha]);
      await run(['branch', '-f', baseRef, `origin/${baseRef}`]);
      if (plan.depth > 0) await deepenToMergeBase(run, baseRef, plan.depth, refspecs);
      return { ok: true, head: sha, summary: `pull request #${number} at ${sha.slice(0, 12)} (base ${baseRef})` };
    }
    if (plan.ref) {
      await run(['fetch', '-q', '--no-tags', ...depth, 'origin', plan.ref]);
      await run(['checkout', '-q', '--detach', 'FETCH_HEAD']);
      const head = await run(['rev-parse', 'HEAD']);
      return { ok: true, head, summary: `${plan.ref} at ${head.slice(0, 12)}` };
    }
    const symref = await run(['ls-remote', '--symref', 'origin', 'HEAD']);
    const branch = /^ref: refs\/heads\/(\S+)\s+HEAD/m.exec(symref)?.[1] ?? 'main';
    await run(['fetch', '-q', '--no-tags', ...depth, 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
    await run(['checkout', '-q', '--track', '-B', branch, `origin/${branch}`]);
    const head = await run(['rev-parse', 'HEAD']);
    return { ok: true, head, summary: `${branch} at ${head.slice(0, 12)}` };
  } catch (error) {
    return classifyCheckoutError(plan.repo, error);
  }
}

async function has(run: (args: string[]) => Promise<string>, sha: string): Promise<boolean> {
  return run(['cat-file', '-e', `${sha}^{commit}`]).then(
    () => true,
    () => false,
  );
}

/** Shallow histories may not reach the merge base; deepen a few times, then fetch everything. */
async function deepenToMergeBase(run: (args: string[]) => Promise<string>, baseRef: string, depth: number, refspecs: string[]): Promise<void> {
  for (let round = 0; round < 6; round++) {
    const found = await run(['merge-base', 'HEAD', baseRef]).then(
      () => true,
      () => false,
    );
    if (found) return;
    await run(['fetch', '-q', '--no-tags', `--deepen=${depth * 2 ** round}`, 'origin', ...refspecs]);
  }
  await run(['fetch', '-q', '--no-tags', '--unshallow', 'origin', ...refspecs]).catch(() => {});
}

/** Not found or no access will not change by retrying; anything else (network, 5xx) may. */
export function classifyCheckoutError(repo: string, error: unknown): CheckoutResult & { ok: false } {
  const text = error instanceof GitError ? error.stderr : String((error as Error)?.message ?? error);
  const last = error instanceof GitError ? error.message : (text.split('\n').pop() ?? '');
  // The status wins over any text a server sent with it.
  if (/returned error: (5\d\d|429)/.test(text)) return { ok: false, exitCode: EXIT.tempFail, error: `checkout: ${last}` };
  if (/repository '.*' not found|Repository not found|returned error: 404/i.test(text))
    return { ok: false, exitCode: EXIT.noRetry, error: `checkout: repository ${repo} not found or no access` };
  if (/Authentication failed|returned error: 40[13]|could not read Username|terminal prompts disabled/i.test(text))
    return { ok: false, exitCode: EXIT.noRetry, error: `checkout: no access to ${repo} (the token was refused)` };
  if (/couldn't find remote ref|not our ref|unadvertised object|did not match any|invalid reference/i.test(text))
    return { ok: false, exitCode: EXIT.noRetry, error: `checkout: ${last}` };
  if (/ENOSPC|No space left/i.test(text)) return { ok: false, exitCode: EXIT.noRetry, error: 'checkout: no space left in /work (raise WORKER_TMPFS_SIZE)' };
  return { ok: false, exitCode: EXIT.tempFail, error: `checkout: ${last}` };
}
