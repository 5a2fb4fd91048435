/** A small typed client for berth's HTTP API, used by the CLI. */
export class BerthClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  // biome-ignore lint/suspicious/noExplicitAny: the API's JSON; commands name its shape where they use it
  async request<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl.replace(/\/$/, '')}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      throw new CliError(`cannot reach berth at ${this.baseUrl} (${(error as Error).message}); is it running? set --url or BERTH_URL`);
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text
    }
    if (response.status === 401) throw new CliError('berth refused the token: set BERTH_TOKEN (or --token-file) to the API_TOKEN');
    if (response.status >= 400) throw new CliError(`${method} ${path}: ${response.status} ${(parsed as { message?: string })?.message ?? text}`);
    return { status: response.status, body: parsed as T };
  }
}

export class CliError extends Error {}
