/**
 * How a failed GitHub call should be treated. GitHub signals rate limits as 403 or 429 with
 * `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds), or with `retry-after` for
 * secondary limits; 5xx and network failures pass; other 4xx will not change by retrying.
 */
export type GithubFailure =
  | { kind: 'rate-limited'; retryAt: number; status: number }
  | { kind: 'transient'; status: number | null }
  | { kind: 'permanent'; status: number }
  | { kind: 'not-found' };

export function classifyGithubError(error: unknown, now = Date.now()): GithubFailure {
  const status = (error as { status?: number } | null)?.status;
  const headers = ((error as { response?: { headers?: Record<string, string | number | undefined> } } | null)?.response?.headers ?? {}) as Record<
    string,
    string | number | undefined
  >;
  if (status === 403 || status === 429) {
    const retryAfter = Number(headers['retry-after']);
    if (Number.isFinite(retryAfter) && retryAfter >= 0) return { kind: 'rate-limited', retryAt: now + retryAfter * 1000, status };
    if (String(headers['x-ratelimit-remaining']) === '0') {
      const reset = Number(headers['x-ratelimit-reset']);
      return { kind: 'rate-limited', retryAt: Number.isFinite(reset) ? Math.max(now, reset * 1000) : now + 60_000, status };
    }
    if (status === 429) return { kind: 'rate-limited', retryAt: now + 60_000, status };
  }
  if (status === 404) return { kind: 'not-found' };
  if (status === undefined || status >= 500 || status === 408) return { kind: 'transient', status: status ?? null };
  // 401: an installation token expired or was revoked under us; a new call mints a new one.
  if (status === 401) return { kind: 'transient', status };
  return { kind: 'permanent', status };
}

/** One line for logs and failure reasons; an Octokit error message never contains the token. */
export function describeGithubError(error: unknown): string {
  const status = (error as { status?: number }).status;
  return `${status ? `HTTP ${status}: ` : ''}${String((error as Error).message ?? error).split('\n')[0]}`;
}
