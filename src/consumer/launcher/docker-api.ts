/** Docker API answers in berth's terms, for every Docker-speaking backend (an engine, a swarm, the egress proxy). */

export const statusOf = (error: unknown): number | undefined => (error as { statusCode?: number } | null)?.statusCode;

/** Docker's `NAME=value` environment list as a record. */
export function envRecord(list: string[] | undefined): Record<string, string> {
  return Object.fromEntries((list ?? []).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
}

/**
 * What Docker answered, or null where it said 404 (no such container, service, image, network), or
 * one of `alsoDone`: answers that mean the call's aim already holds (304: already stopped; 409: a
 * removal already under way).
 */
export function unlessMissing<T>(call: Promise<T>, alsoDone: number[] = []): Promise<T | null> {
  return call.catch((error: unknown) => {
    const status = statusOf(error);
    if (status === 404 || (status !== undefined && alsoDone.includes(status))) return null;
    throw error;
  });
}

/** Docker reports "never" as year 1; berth reports it as null. */
export function parseDockerTime(text: string | undefined): number | null {
  if (!text || text.startsWith('0001-')) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

/** A record as Docker's `NAME=value` environment list. */
export function envList(env: Record<string, string>): string[] {
  return Object.entries(env).map(([name, value]) => `${name}=${value}`);
}
