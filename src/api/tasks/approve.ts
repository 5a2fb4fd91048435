import type { CancelBook } from '../../core/cancel.js';
import { awaitsApproval } from '../../core/approval.js';
import type { TaskQueue } from '../../core/queue.js';
import { publicState } from '../../core/task-view.js';
import type { TaskState } from '../../core/task.js';
import { cancelTask } from './cancel.js';

export type ApproveResult =
  | { status: 'approved'; id: string; approvedSha?: string }
  | { status: 'not-found' }
  | { status: 'not-pending'; id: string; state: TaskState }
  /** The button of a check run shown for another commit than the one the task is pinned to. */
  | { status: 'other-commit'; id: string; pinned: string; clicked: string }
  /** The pull request moved since it was asked: the pending task ended as superseded; the next request asks again. */
  | { status: 'moved'; id: string; pinned: string; head: string };

export interface ApprovalCommits {
  /** The commit the task is pinned to (the one its approval check run was shown for). */
  pinned?: string;
  /** The commit of the check run whose button was clicked. */
  clicked?: string;
  /** The pull request's head now, as GitHub tells it. */
  head?: string | null;
}

/**
 * Runs a task that awaits approval, as `approver` (whose role the caller has checked with GitHub):
 * bound to the commit it was shown for. Its data says who approved and at which commit; the
 * delayed job is promoted, so a consumer takes it at its priority.
 */
export async function approveTask(queue: TaskQueue, cancels: CancelBook, id: string, approver: string, commits: ApprovalCommits = {}): Promise<ApproveResult> {
  const job = await queue.getJob(id);
  if (!job) return { status: 'not-found' };
  const state = await publicState(job);
  if (state !== 'awaiting-approval' || !job.data.approval || !awaitsApproval(job.data)) return { status: 'not-pending', id, state };
  const { pinned, clicked, head } = commits;
  if (pinned && clicked && pinned !== clicked) return { status: 'other-commit', id, pinned, clicked };
  if (pinned && head && head !== pinned) {
    await cancelTask(queue, cancels, id, 0, {
      cause: 'superseded',
      detail: `the pull request moved to ${head.slice(0, 7)} before anyone approved ${pinned.slice(0, 7)}`,
    });
    return { status: 'moved', id, pinned, head };
  }
  await job.updateData({
    ...job.data,
    approval: { ...job.data.approval, state: 'approved', approvedBy: approver, approvedAt: Date.now(), ...(pinned ? { approvedSha: pinned } : {}) },
  });
  // It may have come due between the look and here: then a consumer has it already, approved.
  await job.promote().catch(() => {});
  return { status: 'approved', id, ...(pinned ? { approvedSha: pinned } : {}) };
}
