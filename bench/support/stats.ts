/** Median and p99 (nearest rank) of a sample, in the sample's unit, one decimal. */
export function summarize(values: number[]): { n: number; median: number; p99: number; max: number } {
  if (values.length === 0) throw new Error('no samples');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const round = (x: number) => Math.round(x * 10) / 10;
  return { n: sorted.length, median: round(rank(0.5)), p99: round(rank(0.99)), max: round(sorted[sorted.length - 1]!) };
}

/** Runs `work(0..count-1)` with at most `concurrency` in flight. */
export async function pool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(count, concurrency) }, async () => {
      while (next < count) await work(next++);
    }),
  );
}
