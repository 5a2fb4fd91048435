import type { TaskData } from '../core/task.js';
import { FailureError } from '../core/failure.js';
import type { GithubApp, TokenPermissions } from '../github/app.js';
import { classifyGithubError, describeGithubError } from '../github/errors.js';
import { resolveSubject, type Subject } from '../github/pulls.js';
import type { GithubRecord } from '../github/record.js';
import { scopeRefusal } from '../core/trust-scope.js';
import type { WebhookRules } from '../core/webhook-rules.js';
import { REPORT_PERMISSIONS } from '../github/reporter.js';

/** What a container gets from GitHub at launch: its token, and the commit it runs on. */
export interface LaunchPreparation {
  env: Record<string, string>;
  pull?: { sha: string; baseRef: string };
  /** What the minted token may do, and for which installation (the audit trail records it, never the token). */
  token?: { permissions: Record<string, string>; installationId: number };
}

/** Refused before launch (trust or policy, or no token to be had); the task fails at once, not retried, no container made. */
export class LaunchRefused extends FailureError {
  constructor(detail: string, cause: 'refused' | 'github' = 'refused') {
    super({ cause, detail });
  }
}
/** GitHub could not be asked right now; the task waits and tries again, no attempt is counted. */
export class GithubUnavailable extends Error {
  constructor(
    message: string,
    readonly retryAt: number,
  ) {
    super(message);
  }
}

export interface GithubLaunchPolicy {
  /** The operator's trust settings: the installation/repository scope and the fork rule. */
  trust: Pick<WebhookRules['trust'], 'installations' | 'owners' | 'repositories' | 'allowForkImplement' | 'approval'>;
  /** Permissions of the worker's token for a kind. */
  permissions: (kind: string) => TokenPermissions;
}

/**
 * Runs in the consumer right before a container is created, where the App credentials live:
 * 1. pins what the task is about (a pull request's head sha and base branch) unless a report
 *    already pinned it, so check run, checkout and retries agree on one commit;
 * 2. applies the fork policy to the *resolved* head repository, whatever triggered the task
 *    (a comment payload says nothing about forks);
 * 3. mints an installation token for this one repository.
 */
export class GithubLaunch {
  constructor(
    private readonly app: GithubApp,
    private readonly record: GithubRecord,
    private readonly policy: GithubLaunchPolicy,
  ) {}

  async prepare(taskId: string, task: TaskData): Promise<LaunchPreparation> {
    try {
      // The installation GitHub says owns the repository, never only the one the job names.
      const installationId = await this.app.installationFor(task.repo);
      if (task.installationId !== undefined && task.installationId !== installationId) {
        throw new LaunchRefused(`refused: installation ${task.installationId} does not own ${task.repo} (GitHub names ${installationId}); no token was minted`);
      }
      // The same scope as webhook deliveries, for every task whatever its source (API, board, replay).
      const outOfScope = scopeRefusal(this.policy.trust, { installationId, owner: task.repo.split('/')[0]!, repo: task.repo });
      if (outOfScope) throw new LaunchRefused(`refused: ${outOfScope} (trust in WEBHOOK_RULES_FILE); no token was minted`);
      let subject: Subject | null = null;
      if (task.number !== undefined) {
        // Read with a token of its own, revoked right after (the worker's token is minted below).
        subject = await this.record.pin(taskId, () =>
          this.app.withFreshToken(task.repo, installationId, REPORT_PERMISSIONS, (reader) => resolveSubject(reader, task.repo, task.number!, task.ref)),
        );
      }
      // A fork's implement task runs when the operator allows it, or when a person approved it where the operator lets forks wait for approval.
      const forkApproved = this.policy.trust.approval.forks && task.approval?.state === 'approved';
      if (subject?.type === 'pull' && subject.fork && task.kind === 'implement' && !this.policy.trust.allowForkImplement && !forkApproved) {
        throw new LaunchRefused(`refused: implement tasks are not started from forks (pull request head is ${subject.headRepo ?? 'a deleted fork'})`);
      }
      const permissions = this.policy.permissions(task.kind);
      const token = await this.app.token(task.repo, installationId, permissions, { fresh: true });
      return {
        env: { GITHUB_TOKEN: token },
        token: { permissions: { ...permissions } as Record<string, string>, installationId },
        ...(subject?.type === 'pull' ? { pull: { sha: subject.sha, baseRef: subject.baseRef } } : {}),
      };
    } catch (error) {
      if (error instanceof LaunchRefused) throw error;
      const failure = classifyGithubError(error);
      const detail = `GitHub: ${describeGithubError(error)}`;
      if (failure.kind === 'rate-limited') throw new GithubUnavailable(detail, failure.retryAt);
      if (failure.kind === 'transient') throw new GithubUnavailable(detail, Date.now() + 5_000);
      throw new LaunchRefused(`could not get a GitHub token for ${task.repo} (${detail})`, 'github');
    }
  }
}
