import { type GithubApp, splitRepo } from './app.js';

/** A pull request's head commit now, asked with a token for that one repository (an approval is bound to the commit it was shown for). */
export class PullHeads {
  constructor(private readonly app: GithubApp) {}

  async headOf(repo: string, number: number, installationId: number | undefined): Promise<string | null> {
    const request = await this.app.forRepo(repo, installationId, { pull_requests: 'read' });
    const [owner, name] = splitRepo(repo);
    try {
      const { data } = await request('GET /repos/{owner}/{repo}/pulls/{pull_number}', { owner, repo: name, pull_number: number });
      return data.head.sha;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return null;
      throw error;
    }
  }
}
