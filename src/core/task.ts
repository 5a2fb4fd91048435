import { z } from 'zod';

export const KIND_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
const REPO_PATTERN = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}$/;

/** What a client may send to `POST /api/tasks`. Strict: an unknown field is an error, never ignored. */
export const taskRequestSchema = z.strictObject({
  kind: z.string().regex(KIND_PATTERN, 'must be a lowercase task kind such as review or implement'),
  repo: z.string().regex(REPO_PATTERN, "must be 'owner/name'"),
  ref: z.string().min(1).max(255).regex(/^[^\s\0]+$/, 'must be a git ref or sha without spaces').optional(),
  number: z.number().int().positive().max(2_147_483_647).optional(),
  prompt: z.string().max(65_536).optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
});
export type TaskRequest = z.infer<typeof taskRequestSchema>;

/**
 * A job's data in Redis. It is input only: no credentials (tokens are minted at launch) and no
 * container settings (those come from operator config).
 */
export const taskDataSchema = z.strictObject({
  kind: z.string().regex(KIND_PATTERN),
  repo: z.string().regex(REPO_PATTERN),
  ref: z.string().optional(),
  number: z.number().int().positive().optional(),
  prompt: z.string().optional(),
  source: z.enum(['api', 'github']),
  submittedAt: z.number().int(),
  /** Random per submission: tells a client whether its add created the job or found it. */
  submissionId: z.string(),
  installationId: z.number().int().optional(),
  deliveryId: z.string().optional(),
  replayOf: z.string().optional(),
  /** The issue comment that asked for this task (it gets a 👀 reaction). */
  commentId: z.number().int().positive().optional(),
});
export type TaskData = z.infer<typeof taskDataSchema>;

/** What the container receives in BERTH_TASK: the task plus where it stands. */
export const workerTaskSchema = taskDataSchema
  .pick({ kind: true, repo: true, ref: true, number: true, prompt: true, installationId: true, deliveryId: true })
  .extend({
    id: z.string().min(1),
    attempt: z.number().int().positive(),
    /** Pinned by the consumer before launch: a pull request's head commit and base branch. */
    pull: z.strictObject({ sha: z.string().regex(/^[0-9a-f]{40}$/), baseRef: z.string().min(1).max(255) }).optional(),
  })
  .strict();
export type WorkerTask = z.infer<typeof workerTaskSchema>;

export const TASK_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** Prefix of the failedReason of a cancelled task; BullMQ has no cancelled state of its own. */
export const CANCELLED_REASON = 'cancelled';
