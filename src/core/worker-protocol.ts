/**
 * The contract between the consumer and the worker inside a container (docs/worker-protocol.md):
 * the task arrives as JSON in BERTH_TASK, the agent command as a JSON argv in BERTH_COMMAND, and
 * the worker's last line on stdout is `berth-result <json>`.
 */
export const RESULT_PREFIX = 'berth-result ';

export interface WorkerResultLine {
  exitCode: number;
  durationMs: number;
  result: unknown;
  error?: string;
  /** The kernel OOM-killed the agent (the worker read its cgroup's counter). */
  oomKilled?: boolean;
}

export function formatResultLine(line: WorkerResultLine): string {
  return `${RESULT_PREFIX}${JSON.stringify(line)}`;
}

/** The last well-formed result line in a container's output, or null. */
export function parseResultLine(output: string): WorkerResultLine | null {
  const lines = output.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.replace(/\r$/, '');
    if (!line.startsWith(RESULT_PREFIX)) continue;
    try {
      const parsed = JSON.parse(line.slice(RESULT_PREFIX.length)) as WorkerResultLine;
      if (parsed && typeof parsed === 'object' && typeof parsed.exitCode === 'number') return parsed;
    } catch {
      // A truncated or forged line is not a result; keep looking further up.
    }
  }
  return null;
}
