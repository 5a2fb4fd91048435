import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { CancelBook } from '../../core/cancel.js';
import type { TaskQueue } from '../../core/queue.js';
import { taskRequestSchema } from '../../core/task.js';
import { submitTask, type SubmitConfig } from '../tasks/submit.js';
import { cancelTask } from '../tasks/cancel.js';
import { viewTask, type TaskView } from '../tasks/view.js';

export interface TaskRoutesOptions {
  queue: TaskQueue;
  cancels: CancelBook;
  config: SubmitConfig;
  /** How long a cancel request waits for a running container to stop before answering 202. */
  cancelWaitMs: number;
}

const idParams = z.strictObject({ id: z.string().min(1).max(200) });

export async function taskRoutes(app: FastifyInstance, opts: TaskRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post('/tasks', { schema: { body: taskRequestSchema } }, async (request, reply) => {
    const result = await submitTask(opts.queue, opts.config, request.body, { source: 'api' });
    switch (result.status) {
      case 'unknown-kind':
        return reply.status(400).send({ error: 'Bad Request', message: `unknown kind '${request.body.kind}'; known kinds: ${result.knownKinds.join(', ')}`, knownKinds: result.knownKinds });
      case 'conflict':
        return reply.status(409).send({ error: 'Conflict', message: `idempotencyKey was already used for a different task (${result.id})`, id: result.id });
      case 'created':
        return reply.status(202).header('location', `/api/tasks/${result.id}`).send({ id: result.id, state: result.state });
      case 'existing':
        return reply.status(200).header('location', `/api/tasks/${result.id}`).send({ id: result.id, state: result.state });
    }
  });

  api.get('/tasks/:id', { schema: { params: idParams } }, async (request, reply) => {
    const job = await opts.queue.getJob(request.params.id);
    if (job) return viewTask(job);
    const tombstone = await opts.cancels.tombstone<TaskView>(request.params.id);
    if (tombstone) return tombstone;
    return reply.status(404).send({ error: 'Not Found', message: `no task ${request.params.id}` });
  });

  api.post('/tasks/:id/cancel', { schema: { params: idParams } }, async (request, reply) => {
    const result = await cancelTask(opts.queue, opts.cancels, request.params.id, opts.cancelWaitMs);
    switch (result.status) {
      case 'not-found':
        return reply.status(404).send({ error: 'Not Found', message: `no task ${request.params.id}` });
      case 'finished':
        return reply.status(409).send({ error: 'Conflict', message: `task already ${result.state}; nothing to cancel`, id: result.id, state: result.state });
      case 'cancelling':
        return reply.status(202).send({ id: result.id, state: result.state, cancelRequested: true });
      case 'cancelled':
        return reply.status(200).send({ id: result.id, state: result.state });
    }
  });
}
