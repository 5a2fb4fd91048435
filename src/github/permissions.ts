import { roleFromGithub, type RepoRole } from '../core/permission.js';
import { type GithubApp, type RepoRequest, splitRepo } from './app.js';
import { describeGithubError } from './errors.js';

/** Looked-up roles are reused this long: a removed collaborator loses access within a minute. */
const ROLE_TTL_MS = 60_000;
const MAX_CACHED = 10_000;

export type RoleAnswer = { role: RepoRole } | { error: string };

/**
 * The role GitHub reports for a person on a repository, asked with a metadata-read token for that
 * one repository and cached briefly per (repository, login). A lookup that fails is an error the
 * caller refuses on, never a role: a guess would let a GitHub outage widen who may start agents.
 */
export class ActorRoles {
  private readonly cache = new Map<string, { role: RepoRole; until: number }>();

  constructor(
    private readonly app: GithubApp,
    private readonly ttlMs = ROLE_TTL_MS,
  ) {}

  async roleOf(repo: string, login: string, installationId: number | undefined): Promise<RoleAnswer> {
    const key = `${repo.toLowerCase()}\n${login.toLowerCase()}`;
    const cached = this.cache.get(key);
    if (cached && cached.until > Date.now()) return { role: cached.role };
    let request: RepoRequest;
    try {
      request = await this.app.forRepo(repo, installationId, { metadata: 'read' });
    } catch (error) {
      return { error: `berth could not get a token for ${repo} to ask GitHub for ${login}'s permission (${describeGithubError(error)})` };
    }
    try {
      const [owner, name] = splitRepo(repo);
      const { data } = await request('GET /repos/{owner}/{repo}/collaborators/{username}/permission', { owner, repo: name, username: login });
      const role = roleFromGithub(data as { permission?: unknown; role_name?: unknown });
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, { role, until: Date.now() + this.ttlMs });
      return { role };
    } catch (error) {
      // 404: GitHub says the login is no collaborator (or does not exist): no role at all.
      if ((error as { status?: number }).status === 404) return { role: 'none' };
      return { error: `GitHub could not tell ${login}'s permission on ${repo} (${describeGithubError(error)})` };
    }
  }
}
