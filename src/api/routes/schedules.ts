import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Schedule, ScheduleBook } from '../../core/schedules.js';

export interface ScheduleRoutesOptions {
  /** The rules file's schedules (operator config; the API cannot add or change one). */
  schedules: Schedule[];
  book: ScheduleBook;
  /** The schedules' BullMQ queue: its job schedulers know each schedule's next tick. */
  queue: Queue;
}

const idParams = z.strictObject({ id: z.string().min(1).max(100) });

/** What the schedules are, when each next ticks, what their recent ticks did; pause and resume. */
export async function scheduleRoutes(app: FastifyInstance, opts: ScheduleRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/schedules', async () => {
    const paused = await opts.book.paused();
    return {
      schedules: await Promise.all(
        opts.schedules.map(async (schedule) => {
          const scheduler = schedule.enabled ? await opts.queue.getJobScheduler(schedule.id) : undefined;
          return {
            ...schedule,
            paused: paused.has(schedule.id),
            next: scheduler?.next ? new Date(scheduler.next).toISOString() : null,
            lastTask: await opts.book.lastTask(schedule.id),
            ticks: await opts.book.ticks(schedule.id),
          };
        }),
      ),
    };
  });

  for (const action of ['pause', 'resume'] as const)
    api.post(`/schedules/:id/${action}`, { schema: { params: idParams } }, async (request, reply) => {
      const schedule = opts.schedules.find((s) => s.id === request.params.id);
      if (!schedule)
        return reply.status(404).send({
          error: 'Not Found',
          message: `no schedule ${request.params.id}; schedules come from the rules file (known: ${opts.schedules.map((s) => s.id).join(', ') || 'none'})`,
        });
      await opts.book.setPaused(schedule.id, action === 'pause');
      return { id: schedule.id, paused: action === 'pause' };
    });
}
