import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { CancelBook } from '../../core/cancel.js';
import type { TaskQueue } from '../../core/queue.js';
import { TASK_STATES, taskRequestSchema } from '../../core/task.js';
import { listTasks } from '../tasks/list.js';
import { replayTask, retryFailedSince, retryTask } from '../tasks/retry.js';
import { submitTask, type SubmitConfig } from '../tasks/submit.js';
import { cancelTask } from '../tasks/cancel.js';
import { viewTask, type TaskView } from '../../core/task-view.js';
import type { Capacity } from '../../core/backpressure.js';
import type { TaskIndex } from '../../core/task-index.js';
import type { AuditTrail } from '../../core/audit.js';

export interface TaskRoutesOptions {
  queue: TaskQueue;
  cancels: CancelBook;
  config: SubmitConfig;
  /** How long a cancel request waits for a running container to stop before answering 202. */
  cancelWaitMs: number;
  capacity?: Capacity;
  index?: TaskIndex;
  audit?: AuditTrail;
}

const idParams = z.strictObject({ id: z.string().min(1).max(200) });
const replayBody = z.strictObject({ idempotencyKey: z.string().min(1).max(200).optional() });

export async function taskRoutes(app: FastifyInstance, opts: TaskRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post('/tasks', { schema: { body: taskRequestSchema } }, async (request, reply) => {
    const result = await submitTask(
      opts.queue,
      opts.config,
      request.body,
      { source: 'api' },
      { capacity: opts.capacity, index: opts.index, audit: opts.audit },
    );
    switch (result.status) {
      case 'unknown-kind':
        return reply.status(400).send({
          error: 'Bad Request',
          message: `unknown kind '${request.body.kind}'; known kinds: ${result.knownKinds.join(', ')}`,
          knownKinds: result.knownKinds,
        });
      case 'conflict':
        return reply.status(409).send({ error: 'Conflict', message: `idempotencyKey was already used for a different task (${result.id})`, id: result.id });
      case 'over-capacity':
        return reply.status(429).header('retry-after', '30').send({ error: 'Too Many Requests', message: result.message });
      case 'priority-refused':
        return reply.status(400).send({ error: 'Bad Request', message: result.message });
      case 'created':
        return reply.status(202).header('location', `/api/tasks/${result.id}`).send({ id: result.id, state: result.state });
      case 'existing':
        return reply.status(200).header('location', `/api/tasks/${result.id}`).send({ id: result.id, state: result.state });
    }
  });

  api.get(
    '/tasks',
    {
      schema: {
        querystring: z.strictObject({
          state: z.enum(TASK_STATES).optional(),
          repo: z.string().max(200).optional(),
          kind: z.string().max(32).optional(),
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.coerce.number().int().min(0).default(0),
        }),
      },
    },
    async (request) => listTasks(opts.queue, request.query, opts.index),
  );

  api.post(
    '/tasks/retry',
    { schema: { querystring: z.strictObject({ state: z.literal('failed'), since: z.iso.datetime({ offset: true }).optional() }) } },
    async (request) => {
      const since = request.query.since ? Date.parse(request.query.since) : 0;
      const retried = await retryFailedSince(opts.queue, opts.cancels, since);
      return { retried, count: retried.length };
    },
  );

  api.get('/tasks/:id/logs', { schema: { params: idParams } }, async (request, reply) => {
    const job = await opts.queue.getJob(request.params.id);
    if (!job) return reply.status(404).send({ error: 'Not Found', message: `no task ${request.params.id}` });
    const { logs, count } = await opts.queue.getJobLogs(request.params.id, 0, -1, true);
    return { id: request.params.id, lines: logs, count };
  });

  api.post('/tasks/:id/retry', { schema: { params: idParams } }, async (request, reply) => {
    const result = await retryTask(opts.queue, opts.cancels, request.params.id);
    switch (result.status) {
      case 'not-found':
        return reply.status(404).send({ error: 'Not Found', message: `no task ${request.params.id}` });
      case 'not-retryable':
        return reply.status(409).send({
          error: 'Conflict',
          message: result.state === 'removed' ? 'cancelled before it ran; replay it instead' : `task is ${result.state}; replay it instead`,
          id: result.id,
          state: result.state,
        });
      default:
        return reply.status(200).send({ id: result.id, state: result.state, retried: result.status === 'retried' });
    }
  });

  api.post('/tasks/:id/replay', { schema: { params: idParams } }, async (request, reply) => {
    // The body is optional (a bare POST is the common case), so it is validated here.
    const body = replayBody.safeParse(request.body ?? {});
    if (!body.success)
      return reply.status(400).send({ error: 'Bad Request', message: body.error.issues.map((i) => `body.${i.path.join('.')}: ${i.message}`).join('; ') });
    const result = await replayTask(opts.queue, opts.config, request.params.id, body.data.idempotencyKey, {
      capacity: opts.capacity,
      index: opts.index,
      audit: opts.audit,
    });
    switch (result.status) {
      case 'not-found':
        return reply.status(404).send({ error: 'Not Found', message: `no task ${request.params.id}` });
      case 'created':
        return reply.status(202).send({ id: result.id, state: result.state, replayOf: request.params.id });
      case 'existing':
        return reply.status(200).send({ id: result.id, state: result.state, replayOf: request.params.id });
      case 'over-capacity':
        return reply.status(429).header('retry-after', '30').send({ error: 'Too Many Requests', message: result.message });
      default:
        return reply.status(409).send({ error: 'Conflict', message: 'replay could not be queued' });
    }
  });

  api.get('/tasks/:id', { schema: { params: idParams } }, async (request, reply) => {
    const job = await opts.queue.getJob(request.params.id);
    if (job) return viewTask(job);
    const tombstone = await opts.cancels.tombstone<TaskView>(request.params.id);
    if (tombstone) return tombstone;
    return reply.status(404).send({ error: 'Not Found', message: `no task ${request.params.id}` });
  });

  api.post('/tasks/:id/cancel', { schema: { params: idParams }, config: { deadlineMs: opts.cancelWaitMs + 5_000 } }, async (request, reply) => {
    const result = await cancelTask(opts.queue, opts.cancels, request.params.id, opts.cancelWaitMs);
    if (result.status === 'cancelling' || result.status === 'cancelled')
      await opts.audit?.record(request.params.id, { type: 'cancelled', by: 'api', detail: 'POST /api/tasks/:id/cancel (API token)' });
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
