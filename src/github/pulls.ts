import type { RepoRequest } from './app.js';
import { splitRepo } from './app.js';

/** What a task is about on GitHub, fixed once per task (the pin) so every attempt and report agrees. */
export type Subject =
  | {
      type: 'pull';
      /** The head commit the task runs on and reports against. */
      sha: string;
      baseRef: string;
      /** `owner/name` of the head repository; null when the fork was deleted. */
      headRepo: string | null;
      fork: boolean;
    }
  | { type: 'issue' };

const SHA = /^[0-9a-f]{40}$/;

/**
 * Resolves `number` as a pull request (`GET /repos/{o}/{r}/pulls/{n}`): its head sha, base branch
 * and head repository. A 404 there means the number is an issue. `knownSha` (a pull request event's
 * own head.sha) wins over the current head, so a task runs on the commit its event was about.
 */
export async function resolveSubject(github: RepoRequest, repo: string, number: number, knownSha?: string): Promise<Subject> {
  const [owner, name] = splitRepo(repo);
  try {
    const { data } = await github('GET /repos/{owner}/{repo}/pulls/{pull_number}', { owner, repo: name, pull_number: number });
    const headRepo = data.head.repo?.full_name ?? null;
    return {
      type: 'pull',
      sha: knownSha && SHA.test(knownSha) ? knownSha : data.head.sha,
      baseRef: data.base.ref,
      headRepo,
      fork: headRepo === null || headRepo.toLowerCase() !== data.base.repo.full_name.toLowerCase(),
    };
  } catch (error) {
    if ((error as { status?: number }).status === 404) return { type: 'issue' };
    throw error;
  }
}
