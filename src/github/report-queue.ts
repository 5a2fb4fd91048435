import { Queue, type ConnectionOptions } from 'bullmq';
import { failFastRedisOptions, redisConnection } from '../core/queue.js';

/**
 * Outbound GitHub calls (reactions, check runs, comments) are jobs of a second BullMQ queue, so
 * they get retries, backoff and restart-safety from BullMQ, and show on the board beside the tasks.
 * A task never waits for GitHub: it only adds a job here.
 */
export type ReportJob =
  | { type: 'react'; taskId: string; repo: string; installationId?: number; commentId: number }
  /**
   * Bring the task's GitHub view (check run, or an issue comment) in line with the task's state
   * *now*. Level-triggered: whatever order these run in, the last one writes the current state.
   * Added by the ReportTrigger for each change of a task's state, and by the running attempt's
   * progress timer.
   */
  | { type: 'sync'; taskId: string }
  /** Why berth did not start what a delivery asked for (a spent budget, a full queue), said once on the issue or pull request. */
  | { type: 'notice'; taskId: string; repo: string; installationId?: number; number: number; text: string };

export type ReportQueue = Queue<ReportJob, unknown, string>;

export function reportQueueName(taskQueue: string): string {
  return `${taskQueue}-github`;
}

/** Backoff for failed GitHub calls: exponential from 2 s, capped at 5 min; about a day of tries. */
export const REPORT_ATTEMPTS = 300;
export function reportBackoffMs(attemptsMade: number): number {
  return Math.min(2_000 * 2 ** Math.max(0, attemptsMade - 1), 300_000);
}

/** Adds report jobs. Job ids are deterministic, so adding the same report twice adds it once. */
export class GithubReports {
  /**
   * `onError`: adding a report never fails the caller (the API: a task that was queued is
   * answered as queued; its next state change reports it anyway). Without it, errors propagate.
   */
  constructor(
    readonly queue: ReportQueue,
    private readonly onError?: (error: unknown) => void,
  ) {}

  static create(taskQueue: string, redisUrl: string, options: { failFast?: boolean; onError?: (error: unknown) => void } = {}): GithubReports {
    const connection = options.failFast ? ({ url: redisUrl, ...failFastRedisOptions() } as ConnectionOptions) : redisConnection(redisUrl);
    const queue: ReportQueue = new Queue(reportQueueName(taskQueue), { connection });
    if (options.onError) queue.on('error', () => {});
    return new GithubReports(queue, options.onError);
  }

  async react(job: Omit<Extract<ReportJob, { type: 'react' }>, 'type'>): Promise<void> {
    await this.add(`react.${job.taskId}.${job.commentId}`, { type: 'react', ...job });
  }

  /** `change` names what changed (an events-stream id, a progress tick): one job per change, folded when added twice. */
  async sync(taskId: string, change: string): Promise<void> {
    await this.add(`sync.${taskId}.${change}`, { type: 'sync', taskId });
  }

  /**
   * A refusal said on GitHub: at most one per issue or pull request and UTC day (a push per minute
   * to a pull request whose repository is over budget gets one comment, not one per push). The
   * finished job is kept for two days: it is what folds the repeats.
   */
  async notice(notice: Omit<Extract<ReportJob, { type: 'notice' }>, 'type'>, day: string): Promise<void> {
    await this.add(`notice.${notice.repo.toLowerCase()}#${notice.number}.${day}`, { type: 'notice', ...notice }, { removeOnComplete: { age: 2 * 86_400 } });
  }

  private async add(jobId: string, data: ReportJob, override: { removeOnComplete?: { age: number } } = {}): Promise<void> {
    try {
      await this.queue.add(data.type, data, { ...this.options(jobId), ...override });
    } catch (error) {
      if (!this.onError) throw error;
      this.onError(error);
    }
  }

  private options(jobId: string) {
    return {
      jobId,
      attempts: REPORT_ATTEMPTS,
      backoff: { type: 'report' },
      // Removed once done, so a later change of the same phase (a retried task) reports again.
      removeOnComplete: true,
      removeOnFail: { age: 7 * 24 * 3600 },
    };
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
