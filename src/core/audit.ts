import type { Redis } from 'ioredis';
import { berthKeys } from './keys.js';

/**
 * What happened to a task that someone may need to account for later: who asked (and with which
 * role GitHub reported), who approved, each token berth minted and gave back, what its agent
 * reached and was refused, every write berth made on GitHub for it, and how it ended. Data, not
 * log lines: written where it happens, read by `GET /api/audit` and `berth audit`.
 */
export type AuditEvent =
  | {
      type: 'requested';
      source: 'github' | 'api' | 'schedule';
      kind: string;
      repo: string;
      number?: number;
      actor?: string;
      /** The role GitHub reported for the actor, when berth asked. */
      permission?: string;
      delivery?: string;
      /** A replay (Re-run, retry by hand) of this task. */
      replayOf?: string;
    }
  | { type: 'approval-requested'; requestedBy: string; reason: string; minimum: string; expiresAt: number }
  | { type: 'approved'; by: string; sha?: string }
  | { type: 'approval-refused'; by: string; reason: string }
  | { type: 'token-minted'; attempt: number; repository: string; permissions: Record<string, string>; installationId?: number }
  | { type: 'token-revoked'; attempt: number; by: 'consumer' | 'reconciler' | 'unused' }
  | { type: 'egress'; attempt: number; allowed: number; refused: number; refusedHosts: Record<string, number> }
  | { type: 'github-write'; what: 'check-run.created' | 'check-run.updated' | 'comment' | 'reaction'; githubId?: number; status?: string }
  | { type: 'finished'; attempt: number; state: string; cause?: string }
  | { type: 'cancelled'; by: string; detail?: string };

export type AuditEntry = AuditEvent & { id: string; at: string; task: string };

export interface AuditQuery {
  task?: string;
  /** Entries at or after (ms since epoch). */
  since?: number;
  /** Entries before (ms since epoch). */
  until?: number;
  limit: number;
  /** Newest first (the default for reading), or oldest first (for export). */
  order?: 'newest' | 'oldest';
}

/**
 * Append-only, in Redis, apart from the tasks: one stream for the whole queue (time ranges,
 * export) and one per task (a task's story in one read), both trimmed to the retention and so
 * kept after KEEP_COMPLETED removed the task. A Redis stream's ids are its clock: entries are in
 * the order Redis took them, from every berth process.
 */
export class AuditTrail {
  private readonly keys;

  constructor(
    private readonly redis: Redis,
    queue: string,
    private readonly retentionMs: number,
  ) {
    this.keys = berthKeys(queue);
  }

  /** Best effort: an entry that cannot be written never fails the work it records. */
  async record(task: string, event: AuditEvent): Promise<void> {
    const body = JSON.stringify({ task, ...event });
    const oldest = Date.now() - this.retentionMs;
    try {
      await this.redis
        .multi()
        .xadd(this.keys.audit, 'MINID', '~', `${oldest}-0`, '*', 'e', body)
        .xadd(this.keys.auditOf(task), '*', 'e', body)
        .pexpire(this.keys.auditOf(task), this.retentionMs)
        .exec();
    } catch {
      // Redis away: the work goes on; its audit entry is lost, and the log line beside it stays.
    }
  }

  async read(query: AuditQuery): Promise<AuditEntry[]> {
    const key = query.task ? this.keys.auditOf(query.task) : this.keys.audit;
    const from = query.since !== undefined ? `${Math.max(0, Math.floor(query.since))}-0` : '-';
    const to = query.until !== undefined ? `${Math.max(0, Math.floor(query.until) - 1)}-18446744073709551615` : '+';
    const rows =
      query.order === 'oldest' ? await this.redis.xrange(key, from, to, 'COUNT', query.limit) : await this.redis.xrevrange(key, to, from, 'COUNT', query.limit);
    return rows.map(([id, fields]) => {
      const parsed = JSON.parse(fields[1] ?? '{}') as AuditEvent & { task: string };
      return { id, at: new Date(Number(id.split('-')[0])).toISOString(), ...parsed };
    });
  }
}
