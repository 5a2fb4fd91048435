import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Spend } from '../../core/spend.js';
import type { TaskData, WorkerTask } from '../../core/task.js';
import { crashPoint } from '../../core/crash-points.js';
import type { Workload } from '../launcher/launcher.js';
import { buildWorkloadSpec } from '../launcher/spec.js';
import type { AttemptDeps } from './deps.js';

/** How long a consumer on another engine waits before it looks at a foreign attempt again. */
export const FOREIGN_ATTEMPT_RETRY_MS = 2_000;

/** One attempt as the launch needs it. */
export interface AttemptToLaunch {
  job: Job<TaskData>;
  /** The job's lock token, to hand the job back. */
  token: string | undefined;
  /** The workload's name: the fence. */
  name: string;
  task: WorkerTask;
  data: TaskData;
  /** What the task's earlier attempts spent: this attempt's budget is what is left. */
  spentBefore: Spend;
  log: Logger;
}

/** Created or adopted, not yet started: `untilRunning` starts it. */
export interface Launched {
  workload: Workload;
  /** When this consumer created it; null when it adopted one a previous consumer left. */
  createdAt: number | null;
  /** What this consumer handed it (its token); an adopted one's are read from its engine. */
  secrets?: Record<string, string>;
}

/**
 * The attempt's workload: created here, or the one a previous consumer left (adopted). The hot
 * path (a fresh fence claim) goes straight to create, with no look before: a fresh claim
 * means no consumer launched this attempt, and if Redis forgot the claim, the backend's refusal
 * of a second workload of the same name still turns the create into an adoption.
 */
export async function launchOrAdopt(attempt: AttemptToLaunch, deps: AttemptDeps): Promise<Launched> {
  const { job, token, name, task, data, spentBefore, log } = attempt;
  const { config, launcher } = deps;
  const engineId = await launcher.engineId();
  const claim = await deps.fence.claim(task.id, task.attempt, engineId);
  const existing = claim.fresh ? null : await launcher.handle(name).inspect();
  if (!existing && claim.owner !== engineId) {
    // The attempt belongs to a workload on another engine; only a consumer there may watch it.
    // Put the job back (no stall, no attempt counted) for one of them to take.
    log.info({ owner: claim.owner }, 'attempt belongs to another Docker engine; handing it back');
    await job.moveToDelayed(Date.now() + FOREIGN_ATTEMPT_RETRY_MS, token);
    throw new DelayedError();
  }
  if (existing) return { workload: launcher.handle(existing.id), createdAt: null };

  // Only pin and mint when a workload is actually created; adopting needs neither.
  const prepared = deps.prepareLaunch ? await deps.prepareLaunch(task.id, data) : { env: {} };
  const launched: WorkerTask = prepared.pull ? { ...task, pull: prepared.pull } : task;
  const createdAt = Date.now();
  // A token minted for a workload that was never made (the create failed, or another consumer's
  // workload holds the name) has no container to end with: given back here.
  if (prepared.token) await deps.audit?.record(task.id, { type: 'token-minted', attempt: task.attempt, repository: data.repo, ...prepared.token });
  const giveBack = () => {
    const minted = prepared.env.GITHUB_TOKEN;
    if (minted && deps.revokeToken)
      deps.revokeToken(minted).then(
        () => deps.audit?.record(task.id, { type: 'token-revoked', attempt: task.attempt, by: 'unused' }),
        (error) => log.warn({ err: error }, 'revoking an unused installation token failed; it expires on its own'),
      );
  };
  const egress = deps.egress?.enabled ? deps.egress.forAttempt(launched, spentBefore) : undefined;
  let created: Awaited<ReturnType<typeof launcher.createOrAdopt>>;
  try {
    created = await launcher.createOrAdopt(
      buildWorkloadSpec(config, { name, task: launched, secrets: prepared.env, ...(egress ? { egress } : {}) }, deps.hostEnv),
    );
  } catch (error) {
    giveBack();
    throw error;
  }
  if (created.adopted) {
    giveBack();
    return { workload: created.workload, createdAt: null };
  }
  crashPoint('after-create');
  return { workload: created.workload, createdAt, secrets: prepared.env };
}
