/**
 * The worker's exit-code contract (docs/worker-protocol.md). Codes chosen from sysexits.h so they
 * do not collide with shell (126/127) or signal (128+n) conventions.
 */
export const EXIT = {
  ok: 0,
  /** Task data failed validation inside the container. Retrying cannot help. */
  invalidTask: 65,
  /** A temporary failure (e.g. the checkout hit a network error or a 5xx): retry. */
  tempFail: 75,
  /** The agent asked not to be retried (or its command cannot be run at all). */
  noRetry: 78,
  /** The worker was stopped (SIGTERM) before its agent started: 128 + 15, as a process SIGTERM killed. */
  stopped: 143,
} as const;

const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 15: 'SIGTERM' };

export function signalName(exitCode: number): string | null {
  if (exitCode <= 128 || exitCode > 128 + 64) return null;
  return SIGNALS[exitCode - 128] ?? `signal ${exitCode - 128}`;
}
