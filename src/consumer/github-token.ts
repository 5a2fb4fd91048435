import { createAppAuth } from '@octokit/auth-app';
import { request } from '@octokit/request';
import type { TaskData } from '../core/task.js';

export interface GithubAppCredentials {
  appId: string;
  privateKey: string;
  baseUrl: string;
}

/**
 * Mints a GitHub App installation token limited to the task's repository, at launch. The token
 * goes only into the container's environment: never into job data, progress, logs or Redis.
 * Tasks from the API carry no installation id; it is looked up from the repository.
 */
/** The minter the config asks for, or undefined (and a log line saying so) without App credentials. */
export function githubTokenMinterFromConfig(
  config: { GITHUB_APP_ID?: string; githubAppPrivateKey: string | null; GITHUB_API_URL: string },
  logger: { info(message: string): void },
): ((task: TaskData) => Promise<Record<string, string>>) | undefined {
  if (config.GITHUB_APP_ID && config.githubAppPrivateKey) {
    return githubTokenMinter({ appId: config.GITHUB_APP_ID, privateKey: config.githubAppPrivateKey, baseUrl: config.GITHUB_API_URL });
  }
  logger.info('no GitHub App credentials: tasks run without a GitHub token (BERTH_GITHUB_AUTH=none)');
  return undefined;
}

export function githubTokenMinter(credentials: GithubAppCredentials): (task: TaskData) => Promise<Record<string, string>> {
  const githubRequest = request.defaults({ baseUrl: credentials.baseUrl });
  const auth = createAppAuth({ appId: credentials.appId, privateKey: credentials.privateKey, request: githubRequest });
  const appRequest = githubRequest.defaults({ request: { hook: auth.hook } });

  return async (task) => {
    const [owner, name] = task.repo.split('/') as [string, string];
    try {
      const installationId =
        task.installationId ?? (await appRequest('GET /repos/{owner}/{repo}/installation', { owner, repo: name })).data.id;
      const { token } = await auth({ type: 'installation', installationId, repositoryNames: [name] });
      return { GITHUB_TOKEN: token };
    } catch (error) {
      // The message of an Octokit error never contains the token; keep only status and text.
      const status = (error as { status?: number }).status;
      throw new Error(`could not mint a GitHub token for ${task.repo}${status ? ` (HTTP ${status})` : ''}: ${(error as Error).message.split('\n')[0]}`);
    }
  };
}
