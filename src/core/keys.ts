/** GitHub lets an App ask for a delivery again for this long (its docs: the past 3 days). */
export const GITHUB_REDELIVERY_WINDOW_MS = 3 * 24 * 3600_000;

/**
 * berth's own Redis keys, beside BullMQ's. All live under `berth:<queue>:` so `QUEUE_NAME`
 * scopes them like it scopes container labels.
 */
export function berthKeys(queue: string) {
  const base = `berth:${queue}`;
  return {
    /** Liveness of one BullMQ worker (value: CONSUMER_ID), refreshed by its heartbeat. */
    consumer: (workerId: string) => `${base}:consumer:${workerId}`,
    /** Which Docker engine may create the container of one attempt (SET NX). */
    fence: (jobId: string, attempt: number) => `${base}:fence:${jobId}:${attempt}`,
    /** A cancel request, seen by whichever consumer holds or next takes the job. */
    cancel: (jobId: string) => `${base}:cancel:${jobId}`,
    /** Pub/sub channel that tells running consumers to cancel a job now. */
    cancelChannel: `${base}:cancel`,
    /** The latest webhook task for (repo, number, kind), so a new push can supersede it. */
    subject: (repo: string, number: number, kind: string) => `${base}:subject:${repo}#${number}:${kind}`,
    /** What remains of a task cancelled before it ever ran (its job is removed from the queue). */
    cancelledTombstone: (jobId: string) => `${base}:cancelled:${jobId}`,
    /** A webhook body seen before (value: its delivery id): the same signed body under a new id is a replay. */
    deliveryDigest: (sha256: string) => `${base}:delivery-body:${sha256}`,
    /** A verified webhook delivery berth received (by its X-GitHub-Delivery guid). */
    deliverySeen: (guid: string) => `${base}:delivery-seen:${guid}`,
    /** Since when berth records every delivery it receives (epoch ms). */
    deliveriesSeenSince: `${base}:deliveries-seen-since`,
    /** berth asked GitHub to redeliver this guid (or found it too old): not again for a while. */
    deliveryRedelivery: (guid: string) => `${base}:delivery-redelivery:${guid}`,
    /** Every task of one repository (sorted set, score: creation time): the list filter's index. */
    byRepo: (repo: string) => `${base}:by-repo:${repo.toLowerCase()}`,
    /** Every task of one kind (sorted set, score: creation time). */
    byKind: (kind: string) => `${base}:by-kind:${kind}`,
    /** Tasks of one repository that have not started yet (set of ids): the per-repository cap. */
    queuedForRepo: (repo: string) => `${base}:queued:${repo.toLowerCase()}`,
    /** Tasks not started yet, scored by when they were submitted: the oldest waiting one, whatever start order priorities give. */
    waitingSince: `${base}:waiting-since`,
    /** The fair rank last given to a task of each repository (hash, repository → rank): fair start order. */
    fairPriority: `${base}:fair-priority`,
    /** What one repository's (or `installation:<id>`'s) tasks spent in one UTC day or month (hash: tokens, usd): their budgets. */
    repoSpend: (subject: string, period: string) => `${base}:repo-spend:${subject.toLowerCase()}:${period}`,
    /** Tasks of one repository (or `installation:<id>`) with a workload now (set of ids): MAX_RUNNING_PER_REPO, MAX_RUNNING_PER_INSTALLATION. */
    runningForRepo: (repo: string) => `${base}:running:${repo.toLowerCase()}`,
    /** Repositories and installations that may have a running set (for the reconciler's sweep of leaked slots). */
    runningRepos: `${base}:running-repos`,
    /** What berth knows of a task on GitHub (hash): its pinned subject, check run id, comment id. */
    github: (jobId: string) => `${base}:github:${jobId}`,
    /** Serialises GitHub reporting per task across consumers (find-or-create must not race). */
    githubLock: (jobId: string) => `${base}:github-lock:${jobId}`,
    /** Paused schedules (hash, schedule id → when): their ticks are skipped as paused. */
    schedulesPaused: `${base}:schedules:paused`,
    /** The last task each schedule made (hash, schedule id → task id): a tick skips while it runs. */
    schedulesLastTask: `${base}:schedules:last-task`,
    /** The audit trail (stream, oldest first): every task's entries, trimmed to AUDIT_RETENTION. */
    audit: `${base}:audit`,
    /** One task's audit entries (stream), kept for AUDIT_RETENTION after its last entry, past the task's own removal. */
    auditOf: (taskId: string) => `${base}:audit:task:${taskId}`,
    /** A schedule's recent tick outcomes (list, newest first). */
    scheduleTicks: (id: string) => `${base}:schedules:ticks:${id}`,
  };
}
