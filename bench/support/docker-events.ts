import type { DockerEvent } from '../../test/support/docker.js';
import { waitUntil } from '../../test/support/wait.js';
import type { BenchContext } from '../scenarios/context.js';

/** Waits until Docker has reported `count` events of `action` for the recorded queue, showing progress. */
export async function waitForEvents(
  events: DockerEvent[],
  action: string,
  count: number,
  ctx: BenchContext,
  what: string,
  timeoutMs: number,
  everyMs: number,
): Promise<void> {
  await waitUntil(
    () => {
      const seen = events.filter((e) => e.action === action).length;
      ctx.progress(seen, count, what);
      return seen >= count;
    },
    `${count} ${action} events (${what})`,
    timeoutMs,
    everyMs,
  );
}
