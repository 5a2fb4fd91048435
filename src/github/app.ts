import { createAppAuth } from '@octokit/auth-app';
import { request } from '@octokit/request';

export interface GithubAppCredentials {
  appId: string;
  privateKey: string;
  /** REST base URL: https://api.github.com, or https://HOST/api/v3 on GitHub Enterprise Server. */
  baseUrl: string;
}

/** GitHub's installation-token permissions, as `POST /app/installations/{id}/access_tokens` takes them. */
export type TokenPermissions = Record<string, 'read' | 'write'>;

export type RepoRequest = typeof request;

/**
 * berth as a GitHub App: every call it makes to GitHub goes through one of these. Installation
 * tokens are minted per repository (never installation-wide) with only the permissions the caller
 * names; @octokit/auth-app caches them in memory until shortly before they expire, so reporting
 * does not mint a token per call. Nothing here writes a token anywhere.
 */
export class GithubApp {
  private readonly appRequest;
  private readonly auth;
  private readonly installations = new Map<string, number>();

  constructor(readonly credentials: GithubAppCredentials) {
    const base = request.defaults({ baseUrl: credentials.baseUrl });
    this.auth = createAppAuth({ appId: credentials.appId, privateKey: credentials.privateKey, request: base });
    this.appRequest = base.defaults({ request: { hook: this.auth.hook } });
  }

  get appId(): string {
    return this.credentials.appId;
  }

  /** The installation that covers `repo`: the delivery's own, or looked up (and remembered). */
  async installationFor(repo: string, installationId?: number): Promise<number> {
    if (installationId !== undefined) return installationId;
    const known = this.installations.get(repo.toLowerCase());
    if (known !== undefined) return known;
    const [owner, name] = splitRepo(repo);
    const id = (await this.appRequest('GET /repos/{owner}/{repo}/installation', { owner, repo: name })).data.id;
    this.installations.set(repo.toLowerCase(), id);
    return id;
  }

  /**
   * An installation token for this one repository with exactly `permissions`. `fresh`: minted for
   * this caller alone and never cached — a worker's token is its own, and is revoked when its
   * container exits.
   */
  async token(repo: string, installationId: number, permissions: TokenPermissions, options: { fresh?: boolean } = {}): Promise<string> {
    const [, name] = splitRepo(repo);
    // No permissions named: the token gets what the installation grants (GitHub's default).
    const scope = { repositories: [name], ...(Object.keys(permissions).length ? { permissions } : {}) };
    if (options.fresh) {
      // Straight from GitHub, not through auth-app: even with `refresh` it hands concurrent callers
      // of the same repository and permissions one shared token, and caches it, so two workers
      // starting at once would share a token and the first to exit would revoke the other's.
      const { data } = await this.appRequest('POST /app/installations/{installation_id}/access_tokens', { installation_id: installationId, ...scope });
      return data.token;
    }
    const { token } = await this.auth({
      type: 'installation',
      installationId,
      repositoryNames: scope.repositories,
      ...(scope.permissions ? { permissions: scope.permissions } : {}),
    });
    return token;
  }

  /** A request function authenticated for one repository with `permissions`. */
  async forRepo(repo: string, installationId: number | undefined, permissions: TokenPermissions): Promise<RepoRequest> {
    const id = await this.installationFor(repo, installationId);
    const token = await this.token(repo, id, permissions);
    return request.defaults({ baseUrl: this.credentials.baseUrl, headers: { authorization: `token ${token}` } });
  }

  /**
   * Runs `use` with a token minted for it alone (one repository, `permissions`), revoked when it is
   * done: a token that outlives its use is one more thing to leak.
   */
  async withFreshToken<T>(
    repo: string,
    installationId: number | undefined,
    permissions: TokenPermissions,
    use: (request: RepoRequest) => Promise<T>,
    onRevokeFailed?: (error: unknown) => void,
  ): Promise<T> {
    const id = await this.installationFor(repo, installationId);
    const token = await this.token(repo, id, permissions, { fresh: true });
    try {
      return await use(request.defaults({ baseUrl: this.credentials.baseUrl, headers: { authorization: `token ${token}` } }));
    } finally {
      await this.revoke(token).catch((error) => onRevokeFailed?.(error));
    }
  }

  /** Revokes an installation token (`DELETE /installation/token`, authenticated with the token itself). */
  async revoke(token: string): Promise<void> {
    try {
      await request('DELETE /installation/token', { baseUrl: this.credentials.baseUrl, headers: { authorization: `token ${token}` } });
    } catch (error) {
      // 401: the token is no longer valid; the worker gave it back itself, or it expired. Done either way.
      if ((error as { status?: number }).status !== 401) throw error;
    }
  }

  /** App-level calls (JWT), e.g. the App's own webhook deliveries. */
  get asApp() {
    return this.appRequest;
  }
}

export function splitRepo(repo: string): [string, string] {
  const slash = repo.indexOf('/');
  return [repo.slice(0, slash), repo.slice(slash + 1)];
}

/** The App the config describes, or null without App credentials. */
export function githubAppFromConfig(config: { GITHUB_APP_ID?: string; githubAppPrivateKey: string | null; GITHUB_API_URL: string }): GithubApp | null {
  if (!config.GITHUB_APP_ID || !config.githubAppPrivateKey) return null;
  return new GithubApp({ appId: config.GITHUB_APP_ID, privateKey: config.githubAppPrivateKey, baseUrl: config.GITHUB_API_URL });
}
