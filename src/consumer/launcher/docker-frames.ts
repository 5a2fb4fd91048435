import { PassThrough } from 'node:stream';

/**
 * Docker multiplexes a non-TTY container's stdout and stderr as frames: an 8-byte header
 * ([stream, 0, 0, 0, size as uint32 BE]) then `size` bytes. Container logs and swarm service logs
 * come framed alike. This demuxer is a state machine over the bytes as they arrive: a frame's
 * payload is passed on in the slices it came in, never gathered, so a huge frame costs no more
 * memory than a small one.
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

/** The raw output inside a framed stream, as a stream of plain bytes; destroying it destroys the source. */
export function unframed(source: NodeJS.ReadableStream & { destroy(): void }): NodeJS.ReadableStream & { destroy(): void } {
  const out = new PassThrough();
  const frames = new FrameDemuxer((bytes) => out.write(bytes));
  source.on('data', (chunk: Buffer) => frames.push(chunk));
  source.on('end', () => out.end());
  source.on('close', () => out.end());
  source.on('error', (error) => out.destroy(error));
  out.on('close', () => source.destroy());
  return out;
}

/** A whole framed buffer (a non-following logs call) as text. */
export function demuxDockerStream(raw: Buffer | string): string {
  if (typeof raw === 'string') return raw;
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const size = raw.readUInt32BE(offset + 4);
    parts.push(raw.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}
