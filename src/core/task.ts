import { approvalSchema } from './approval.js';
import { z } from 'zod';
import { priorityLevelSchema } from './start-priority.js';

export const KIND_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
// GitHub refuses `.` and `..` as repository names; so does berth (they would be path segments).
const REPO_PATTERN = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$/;

/**
 * The task reaches the container as one environment variable, and Linux caps one variable at
 * 128 KiB (E2BIG at exec otherwise). Text is bounded by its *encoded* size (JSON escapes of control
 * and multi-byte characters count), so the whole BERTH_TASK stays well under that cap.
 */
export const PROMPT_MAX_BYTES = 64 * 1024;
export const UNTRUSTED_MAX_BYTES = 40 * 1024;
export const encodedBytes = (text: string): number => Buffer.byteLength(JSON.stringify(text), 'utf8');

/** The longest prefix of `text` whose encoded size fits `maxBytes`. */
export function clipEncoded(text: string, maxBytes: number): string {
  if (encodedBytes(text) <= maxBytes) return text;
  let low = 0;
  let high = text.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (encodedBytes(text.slice(0, mid)) <= maxBytes) low = mid;
    else high = mid - 1;
  }
  return text.slice(0, low);
}

/**
 * Text written by someone whose trust was never checked (an issue's author, for a label a
 * maintainer added). It reaches the agent as data, labelled, never as the instruction.
 */
export const untrustedSchema = z.strictObject({ source: z.literal('issue'), title: z.string(), body: z.string() });

/** What a client may send to `POST /api/tasks`. Strict: an unknown field is an error, never ignored. */
export const taskRequestSchema = z.strictObject({
  kind: z.string().regex(KIND_PATTERN, 'must be a lowercase task kind such as review or implement'),
  repo: z.string().regex(REPO_PATTERN, "must be 'owner/name'"),
  // A leading '-' would read as an option to git.
  ref: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[^\s\0]+$/, 'must be a git ref or sha without spaces')
    .regex(/^[^-]/, "must not start with '-'")
    .optional(),
  number: z.number().int().positive().max(2_147_483_647).optional(),
  prompt: z
    .string()
    .max(65_536)
    .refine(
      (text) => encodedBytes(text) <= PROMPT_MAX_BYTES,
      `must be at most ${PROMPT_MAX_BYTES / 1024} KiB once JSON-encoded (control and multi-byte characters count more)`,
    )
    .optional(),
  /** Start priority, higher first; only within the operator's API_PRIORITY_MIN..API_PRIORITY_MAX. Default: the kind's. */
  priority: priorityLevelSchema.optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
});
export type TaskRequest = z.infer<typeof taskRequestSchema>;

/**
 * A job's data in Redis. It is input only: no credentials (tokens are minted at launch) and no
 * container settings (those come from operator config).
 */
export const taskDataSchema = z.strictObject({
  // The API's own rules, again: a job that reached Redis some other way (the board, a script,
  // an older berth) is held to what a client may send before anything is minted or launched.
  kind: taskRequestSchema.shape.kind,
  repo: taskRequestSchema.shape.repo,
  ref: taskRequestSchema.shape.ref,
  number: taskRequestSchema.shape.number,
  prompt: taskRequestSchema.shape.prompt,
  source: z.enum(['api', 'github', 'schedule']),
  submittedAt: z.number().int(),
  /** Random per submission: tells a client whether its add created the job or found it. */
  submissionId: z.string(),
  installationId: z.number().int().optional(),
  deliveryId: z.string().optional(),
  replayOf: z.string().optional(),
  untrusted: untrustedSchema.optional(),
  /** The issue comment that asked for this task (it gets a 👀 reaction). */
  commentId: z.number().int().positive().optional(),
  /** The schedule whose tick made it. */
  schedule: z.string().optional(),
  /** Its start priority level (higher first), as it was queued; a replay keeps it. */
  priority: priorityLevelSchema.optional(),
  /** Asked for by someone below the rule's permission: held until approved (core/approval.ts). */
  approval: approvalSchema.optional(),
});
export type TaskData = z.infer<typeof taskDataSchema>;

/** What the container receives in BERTH_TASK: the task plus where it stands. */
export const workerTaskSchema = taskDataSchema
  .pick({ kind: true, repo: true, ref: true, number: true, prompt: true, untrusted: true, installationId: true, deliveryId: true })
  .extend({
    id: z.string().min(1),
    attempt: z.number().int().positive(),
    /** Pinned by the consumer before launch: a pull request's head commit and base branch. */
    pull: z.strictObject({ sha: z.string().regex(/^[0-9a-f]{40}$/), baseRef: z.string().min(1).max(255) }).optional(),
  })
  .strict();
export type WorkerTask = z.infer<typeof workerTaskSchema>;

export const TASK_STATES = ['awaiting-approval', 'waiting', 'active', 'delayed', 'completed', 'failed', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];
