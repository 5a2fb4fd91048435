import { z } from 'zod';
import type { Failure } from './failure.js';
import { repoRoleSchema } from './permission.js';

/**
 * A request from someone below the rule's permission, held until a person with it says yes. While
 * it waits the task is a BullMQ job delayed until its expiry: no container, no token, no slot. An
 * approval promotes it; a job that comes due still pending ends as `unapproved`, without a worker.
 */
export const approvalSchema = z.strictObject({
  state: z.enum(['pending', 'approved']),
  /** Who asked, and why they could not start it themselves (GitHub's answer, or the payload's). */
  requestedBy: z.string().max(256),
  reason: z.string().max(1_000),
  /** The least role on the repository that may approve: the rule's, as for starting it. */
  minimum: repoRoleSchema,
  /** When it ends unapproved (ms since epoch). */
  expiresAt: z.number().int(),
  approvedBy: z.string().max(256).optional(),
  approvedAt: z.number().int().optional(),
  /** The commit the approver saw (a pull request's head when approved). */
  approvedSha: z
    .string()
    .regex(/^[0-9a-f]{40}$/)
    .optional(),
});
export type Approval = z.infer<typeof approvalSchema>;

/** The comment command that approves what waits on an issue or pull request. */
export const APPROVE_COMMAND = '/agent approve';
/** The check run button's identifier. */
export const APPROVE_ACTION = 'berth-approve';

export function awaitsApproval(data: { approval?: Approval | undefined }): boolean {
  return data.approval?.state === 'pending';
}

/** How a task that came due still pending ends: as a decision nobody made, not a failure of the agent. */
export function unapprovedFailure(approval: Approval): Failure {
  return {
    cause: 'unapproved',
    detail: `not approved in time: @${approval.requestedBy} asked, and nobody with ${approval.minimum} permission approved it before ${new Date(approval.expiresAt).toISOString()}`,
  };
}
