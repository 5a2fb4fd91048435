import type { Job } from 'bullmq';
import { RESULT_PREFIX } from '../core/worker-protocol.js';
import { SecretMask } from '../core/secret-mask.js';
import { countStreamedBytes } from './read-buffers.js';

/** Per-job cap on lines copied into BullMQ's job log (what the board's Logs tab shows). */
export const JOB_LOG_MAX_LINES = 2_000;
/** Longest line kept; the rest of a longer line is dropped up to its newline, with a marker. */
export const LINE_MAX_CHARS = 2_000;

/**
 * Splits output into lines with constant work per byte and almost no allocation: newlines are found
 * in the bytes themselves, a partial line is kept only up to `maxBytes` (copied, so no chunk is
 * retained), and only the lines kept are decoded. Past the cap a line is emitted cut, with a marker,
 * and the rest of it is dropped unread up to its newline: a `\r` progress bar costs a scan, nothing
 * more. UTF-8 split across chunks is whole again by the time a line is decoded.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private dropping = false;

  constructor(
    /** `cut`: the line was longer than `maxBytes`; this is its start (the rest is dropped). */
    private readonly onLine: (line: string, cut: boolean) => void,
    private readonly maxBytes = LINE_MAX_CHARS,
  ) {}

  push(bytes: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = bytes.indexOf(10, start);
      const end = newline < 0 ? bytes.length : newline;
      if (!this.dropping) this.append(bytes, start, end);
      if (newline < 0) return;
      if (!this.dropping) this.onLine(this.take(), false);
      this.parts = [];
      this.size = 0;
      this.dropping = false;
      start = newline + 1;
    }
  }

  end(): void {
    if (this.size > 0 && !this.dropping) this.onLine(this.take(), false);
    this.parts = [];
    this.size = 0;
  }

  private append(bytes: Buffer, start: number, end: number): void {
    if (end <= start) return;
    const room = this.maxBytes - this.size;
    if (end - start <= room) {
      this.parts.push(Buffer.from(bytes.subarray(start, end)));
      this.size += end - start;
      return;
    }
    this.parts.push(Buffer.from(bytes.subarray(start, start + room)));
    this.onLine(wholeCharacters(Buffer.concat(this.parts)).toString('utf8'), true);
    this.parts = [];
    this.size = 0;
    this.dropping = true;
  }

  private take(): string {
    return (this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts)).toString('utf8');
  }
}

/** `bytes` without a UTF-8 sequence left incomplete at its end (a cut never splits a character). */
function wholeCharacters(bytes: Buffer): Buffer {
  let lead = bytes.length - 1;
  while (lead >= 0 && bytes.length - lead <= 4 && (bytes[lead]! & 0xc0) === 0x80) lead--;
  if (lead < 0) return bytes;
  const first = bytes[lead]!;
  const length = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1;
  return bytes.length - lead < length ? bytes.subarray(0, lead) : bytes;
}

/** A cut line as stored: masked before the marker, so a secret straddling the cut keeps nothing. */
export function cutLine(start: string, mask: SecretMask, maxBytes = LINE_MAX_CHARS): string {
  return `${mask.maskCut(start)} [berth] line cut at ${maxBytes} characters; the rest of it is dropped`;
}

/** A workload's raw output from its start (Launcher.followLogs). */
export type LogFollower = (id: string) => Promise<NodeJS.ReadableStream & { destroy(): void }>;

/**
 * Copies a workload's output into the job's log while it runs. Starts from the workload's
 * beginning after clearing the job log, so an adopting consumer neither loses nor duplicates lines.
 * Best effort: the result never depends on it (that comes from the workload's own logs at exit).
 * `secrets` (the workload's token, WORKER_ENV values) are masked in every line copied.
 */
/** Stops copying. `drain`: the workload has exited, so let the stream deliver what it still has (bounded wait). */
export type StopStreaming = (drain?: boolean) => Promise<void>;

/** How long a stop waits for the output still in flight after the workload exited. */
const DRAIN_MS = 3_000;

export async function streamLogsToJob(follow: LogFollower, workloadId: string, job: Job, secrets: string[] = []): Promise<StopStreaming> {
  await job.clearLogs();
  const stream = await follow(workloadId);
  const mask = new SecretMask(secrets);
  let written = 0;
  let chain: Promise<unknown> = Promise.resolve();
  const write = (line: string, cut: boolean) => {
    if (written > JOB_LOG_MAX_LINES || line.startsWith(RESULT_PREFIX)) return;
    written++;
    const entry =
      written > JOB_LOG_MAX_LINES
        ? `[berth] log capped at ${JOB_LOG_MAX_LINES} lines; the container's own log has the rest`
        : cut
          ? cutLine(line, mask)
          : mask.mask(line);
    chain = chain.then(() => job.log(entry)).catch(() => {});
  };
  const lines = new LineSplitter(write);
  stream.on('data', (chunk: Buffer) => {
    lines.push(chunk);
    countStreamedBytes(chunk.length);
  });
  const ended = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', () => resolve());
  });
  return async (drain = false) => {
    if (drain) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_MS)))]);
      clearTimeout(timer);
    }
    stream.destroy();
    lines.end();
    await chain;
  };
}
