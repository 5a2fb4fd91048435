import type { Logger } from 'pino';
import type { AuditTrail } from '../../core/audit.js';
import type { CancelBook } from '../../core/cancel.js';
import type { Config } from '../../core/config.js';
import type { BerthMetrics } from '../../core/metrics.js';
import type { GithubReports } from '../../github/report-queue.js';
import type { RunningSlots } from '../../core/running-slots.js';
import type { SpendBudgets } from '../../core/spend-budgets.js';
import type { TaskData } from '../../core/task.js';
import type { EgressGate } from '../egress-gate.js';
import type { EngineHealth } from '../engine-health.js';
import type { AttemptFence } from '../fence.js';
import type { LaunchPreparation } from '../github-launch.js';
import type { Launcher } from '../launcher/launcher.js';
import type { LaunchConfig } from '../launcher/spec.js';

export type AttemptConfig = LaunchConfig & Pick<Config, 'RETRY_ON_TIMEOUT' | 'RESULT_MAX_SIZE' | 'budgets' | 'prices' | 'REPORT_PROGRESS_INTERVAL'>;

/** Why a processor's AbortSignal fired. */
export const ABORT = { shutdown: 'shutdown', cancel: 'cancel' } as const;

/** What an attempt needs from its consumer; built once in consumer.ts. */
export interface AttemptDeps {
  config: AttemptConfig;
  launcher: Launcher;
  fence: Pick<AttemptFence, 'claim'>;
  cancels: Pick<CancelBook, 'reason'>;
  logger: Logger;
  hostEnv?: NodeJS.ProcessEnv;
  /**
   * GitHub before a container is created: pin the subject, apply the fork policy, mint a
   * short-lived token (never stored). Absent without App credentials.
   */
  prepareLaunch?: (taskId: string, task: TaskData) => Promise<LaunchPreparation>;
  /** The task left the queue for a container (it no longer counts against its repository's cap). */
  started?: (repo: string, taskId: string) => Promise<void>;
  /** Each repository's spend per day, for its daily budget (REPO_BUDGET_*_DAY). */
  spendBudgets?: Pick<SpendBudgets, 'add' | 'budgeted'>;
  /** MAX_RUNNING_PER_REPO: a task takes its repository's slot before its workload is created. */
  slots?: Pick<RunningSlots, 'claim' | 'release'>;
  /** The engine's reachability over time; calls retry while it is down. */
  engine?: EngineHealth;
  /** EGRESS=proxy: each attempt's way out, and its record afterwards. */
  egress?: EgressGate;
  /** Revokes a worker's installation token once its container has exited. */
  revokeToken?: (token: string) => Promise<void>;
  /** Outbound GitHub reports (check runs, comments); absent without App credentials. */
  reports?: GithubReports | null;
  metrics?: BerthMetrics;
  /** Tokens minted and given back, egress, for the audit trail. */
  audit?: Pick<AuditTrail, 'record'>;
  /** True once a planned shutdown began: a job fetched now is handed straight back. */
  isClosing: () => boolean;
  /** Told the container of a finished attempt, so it is removed only once the outcome is recorded. */
  onAttemptFinished: (jobId: string, containerId: string) => void;
}
