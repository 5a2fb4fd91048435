import type { Job } from 'bullmq';
import type Dockerode from 'dockerode';

/** Per-job cap on lines copied into BullMQ's job log (what the board's Logs tab shows). */
export const JOB_LOG_MAX_LINES = 2_000;
const LINE_MAX_CHARS = 2_000;

/**
 * Copies a container's output into the job's log while it runs. Starts from the container's
 * beginning after clearing the job log, so an adopting consumer neither loses nor duplicates lines.
 * Best effort: the result never depends on it (that comes from the container's own logs at exit).
 */
export async function streamLogsToJob(docker: Dockerode, containerId: string, job: Job): Promise<() => void> {
  await job.clearLogs();
  const stream = (await docker.getContainer(containerId).logs({ follow: true, stdout: true, stderr: true, timestamps: false })) as NodeJS.ReadableStream & { destroy(): void };
  let written = 0;
  let pending = Buffer.alloc(0);
  let text = '';
  let chain: Promise<unknown> = Promise.resolve();
  const write = (line: string) => {
    if (written > JOB_LOG_MAX_LINES) return;
    written++;
    const entry = written > JOB_LOG_MAX_LINES ? `[berth] log capped at ${JOB_LOG_MAX_LINES} lines; GET /api/tasks/${job.id}/logs has the rest` : line.slice(0, LINE_MAX_CHARS);
    chain = chain.then(() => job.log(entry)).catch(() => {});
  };
  stream.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    // Demultiplex Docker's 8-byte frame headers (non-TTY containers).
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      text += pending.subarray(8, 8 + size).toString('utf8');
      pending = pending.subarray(8 + size);
    }
    const lines = text.split('\n');
    text = lines.pop() ?? '';
    for (const line of lines) if (!line.startsWith('berth-result ')) write(line);
  });
  stream.on('error', () => {});
  return () => {
    if (text) write(text);
    stream.destroy();
  };
}
