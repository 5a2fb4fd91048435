import { StringDecoder } from 'node:string_decoder';
import type { Job } from 'bullmq';
import { maskTokens } from '../github/check-run.js';
import { RESULT_PREFIX } from '../core/worker-protocol.js';

/** Per-job cap on lines copied into BullMQ's job log (what the board's Logs tab shows). */
export const JOB_LOG_MAX_LINES = 2_000;
/** Longest line kept; the rest of a longer line is dropped up to its newline, with a marker. */
export const LINE_MAX_CHARS = 2_000;

/**
 * Docker multiplexes a non-TTY container's stdout and stderr as frames: an 8-byte header
 * ([stream, 0, 0, 0, size as uint32 BE]) then `size` bytes. This demuxer is a state machine over
 * the bytes as they arrive: a frame's payload is passed on in the slices it came in, never
 * gathered, so a huge frame costs no more memory than a small one.
 */
export class FrameDemuxer {
  private header = Buffer.alloc(8);
  private headerFilled = 0;
  private remaining = 0;

  constructor(private readonly onPayload: (bytes: Buffer) => void) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining === 0) {
        const take = Math.min(8 - this.headerFilled, chunk.length - offset);
        chunk.copy(this.header, this.headerFilled, offset, offset + take);
        this.headerFilled += take;
        offset += take;
        if (this.headerFilled < 8) return;
        this.remaining = this.header.readUInt32BE(4);
        this.headerFilled = 0;
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - offset);
      this.onPayload(chunk.subarray(offset, offset + take));
      this.remaining -= take;
      offset += take;
    }
  }
}

/**
 * Splits text into lines with constant work per character: only the new text is scanned, and a
 * partial line is held only up to `maxChars`; past that it is emitted cut, with a marker, and the
 * rest of it is dropped until its newline (a `\r` progress bar never grows anything).
 */
export class LineSplitter {
  private partial = '';
  private dropping = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxChars = LINE_MAX_CHARS,
  ) {}

  push(text: string): void {
    let start = 0;
    for (;;) {
      const newline = text.indexOf('\n', start);
      const end = newline < 0 ? text.length : newline;
      if (!this.dropping) this.append(text, start, end);
      if (newline < 0) return;
      if (!this.dropping) this.onLine(this.partial);
      this.partial = '';
      this.dropping = false;
      start = newline + 1;
    }
  }

  end(): void {
    if (this.partial && !this.dropping) this.onLine(this.partial);
    this.partial = '';
  }

  private append(text: string, start: number, end: number): void {
    const room = this.maxChars - this.partial.length;
    if (end - start <= room) {
      this.partial += text.slice(start, end);
      return;
    }
    this.onLine(`${this.partial}${text.slice(start, start + room)} [berth] line cut at ${this.maxChars} characters; the rest of it is dropped`);
    this.partial = '';
    this.dropping = true;
  }
}

/** Replaces every known secret value, and anything shaped like a GitHub token, with `***`. */
export function secretMasker(secrets: string[]): (line: string) => string {
  const values = [...new Set(secrets.filter((s) => s.length >= 6))].sort((a, b) => b.length - a.length);
  return (line) => maskTokens(values.reduce((text, secret) => (text.includes(secret) ? text.split(secret).join('***') : text), line));
}

export type LogFollower = (id: string) => Promise<NodeJS.ReadableStream & { destroy(): void }>;

/**
 * Copies a container's output into the job's log while it runs. Starts from the container's
 * beginning after clearing the job log, so an adopting consumer neither loses nor duplicates lines.
 * Best effort: the result never depends on it (that comes from the container's own logs at exit).
 * `secrets` (the container's token, WORKER_ENV values) are masked in every line copied.
 */
/** Stops copying. `drain`: the container has exited, so let the stream deliver what it still has (bounded wait). */
export type StopStreaming = (drain?: boolean) => Promise<void>;

/** How long a stop waits for the output still in flight after the container exited. */
const DRAIN_MS = 3_000;

export async function streamLogsToJob(follow: LogFollower, containerId: string, job: Job, secrets: string[] = []): Promise<StopStreaming> {
  await job.clearLogs();
  const stream = await follow(containerId);
  const mask = secretMasker(secrets);
  let written = 0;
  let chain: Promise<unknown> = Promise.resolve();
  const write = (line: string) => {
    if (written > JOB_LOG_MAX_LINES || line.startsWith(RESULT_PREFIX)) return;
    written++;
    const entry = written > JOB_LOG_MAX_LINES ? `[berth] log capped at ${JOB_LOG_MAX_LINES} lines; the container's own log has the rest` : mask(line);
    chain = chain.then(() => job.log(entry)).catch(() => {});
  };
  const lines = new LineSplitter(write);
  const decoder = new StringDecoder('utf8');
  const frames = new FrameDemuxer((bytes) => lines.push(decoder.write(bytes)));
  stream.on('data', (chunk: Buffer) => frames.push(chunk));
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
    lines.push(decoder.end());
    lines.end();
    await chain;
  };
}
