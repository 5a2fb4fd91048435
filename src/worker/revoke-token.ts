/**
 * The worker gives its installation token back when its work is done, whoever watches it: on a
 * swarm, a consumer that adopted the attempt cannot read the token (a swarm secret is never
 * returned), and one that died cannot revoke anything. The dispatcher's own revoke after the exit
 * stays as the second line. Best effort: the token expires within the hour anyway.
 */
export async function revokeOwnToken(env: NodeJS.ProcessEnv, timeoutMs = 5_000): Promise<'revoked' | 'skipped' | string> {
  const token = env.GITHUB_TOKEN;
  const api = env.GITHUB_API_URL;
  if (!token || !api) return 'skipped';
  try {
    const response = await fetch(`${api.replace(/\/$/, '')}/installation/token`, {
      method: 'DELETE',
      headers: { authorization: `token ${token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    return response.status === 204 ? 'revoked' : `GitHub answered ${response.status}`;
  } catch (error) {
    return (error as Error).message;
  }
}
