/**
 * Streamed output (a worker's logs) arrives in buffers Node allocates per socket read, outside V8's
 * heap. V8 frees them only when it collects, and a stream that allocates little on the heap gives it
 * no reason to until 64 MiB of them wait (V8's external-memory soft limit): a worker flooding its
 * output cost the dispatcher +57 to +59 MiB of RSS that way (test/e2e/log-flood.test.ts). So every
 * RECLAIM_EVERY_BYTES streamed, across all streams of the process, a young-generation collection is
 * asked for: about a millisecond, and it frees those buffers, which are young.
 *
 * It needs `--expose-gc` (the image's ENTRYPOINT). Without it nothing is asked and V8 decides alone.
 * The alternative, a small young generation for the whole process (`--max-semi-space-size=4`), bounded
 * the flood too but cost every webhook delivery a fifth more CPU (docs/benchmarks.md).
 */
export const RECLAIM_EVERY_BYTES = 8 * 1024 * 1024;

let streamedSinceReclaim = 0;

/** Counts `bytes` of streamed input; past the threshold, asks V8 for a young-generation collection. */
export function countStreamedBytes(bytes: number): void {
  streamedSinceReclaim += bytes;
  if (streamedSinceReclaim < RECLAIM_EVERY_BYTES) return;
  streamedSinceReclaim = 0;
  globalThis.gc?.({ type: 'minor' });
}
