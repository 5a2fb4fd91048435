import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EgressDecision, EgressEntry, Usage } from '../core/egress-record.js';
import { addUsage, EMPTY_USAGE, type ModelUsage } from '../core/spend.js';
import type { JournalEvent } from './journal.js';

/** What the proxy knows of one attempt: what it reached, what was refused, what its model calls used. */
export interface AttemptEgress {
  attempt: string;
  counts: Record<EgressDecision, number>;
  /** Refusals by host, the check run's "blocked: 3 requests to evil.example". */
  refusedHosts: Record<string, number>;
  usage: Usage;
  /** The same usage per model (`unknown` when a response named none), for its price. */
  byModel: ModelUsage;
  /** Set once the proxy refused a model call because the task's budget was spent: why. */
  budgetExceeded?: string;
  /** The latest entries, at most ENTRY_CAP (the counts keep the whole story). */
  entries: EgressEntry[];
  updatedAt: number;
}

const ENTRY_CAP = 500;
const HOST_CAP = 50;
/** Models per attempt kept apart; any more are counted in the total only. */
const MODEL_CAP = 20;

/**
 * Per-attempt records, kept in memory and written to `dir` (the proxy's own volume, which no worker
 * mounts) so they outlive a restart of the proxy process. berth reads an attempt's record after the
 * attempt ends; records older than `keepMs` are dropped.
 */
export class EgressLedger {
  private readonly attempts = new Map<string, AttemptEgress>();
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly dir: string | null,
    private readonly keepMs = 86_400_000,
    /** Told each change as it happens (the swarm's journal, journal.ts). */
    private readonly onEvent?: (event: JournalEvent) => void,
  ) {
    if (dir) mkdirSync(dir, { recursive: true });
  }

  record(attempt: string, entry: EgressEntry): void {
    const record = this.get(attempt);
    record.counts[entry.decision]++;
    if (entry.decision === 'refused' && (entry.host in record.refusedHosts || Object.keys(record.refusedHosts).length < HOST_CAP)) {
      record.refusedHosts[entry.host] = (record.refusedHosts[entry.host] ?? 0) + 1;
    }
    record.entries.push(entry);
    if (record.entries.length > ENTRY_CAP) record.entries.splice(0, record.entries.length - ENTRY_CAP);
    this.touch(record);
    this.onEvent?.({ attempt, entry });
  }

  addUsage(attempt: string, usage: Partial<Usage>, model: string | null): void {
    const record = this.get(attempt);
    record.usage = addUsage(record.usage, usage);
    const name = model ?? 'unknown';
    if (name in record.byModel || Object.keys(record.byModel).length < MODEL_CAP) record.byModel[name] = addUsage(record.byModel[name] ?? EMPTY_USAGE, usage);
    this.touch(record);
    this.onEvent?.({ attempt, usage, model });
  }

  /** The budget stopped this attempt's model calls. */
  overBudget(attempt: string, reason: string): void {
    const record = this.get(attempt);
    if (record.budgetExceeded) return;
    record.budgetExceeded = reason;
    this.touch(record);
    this.onEvent?.({ attempt, budgetExceeded: reason });
  }

  /** Attempts whose budget is spent, of those recorded in this process's lifetime or still in memory. */
  overBudgetAttempts(): string[] {
    return [...this.attempts.values()].filter((r) => r.budgetExceeded).map((r) => r.attempt);
  }

  /** The attempt's record, from memory or, after a restart, from its file. */
  read(attempt: string): AttemptEgress | null {
    const held = this.attempts.get(attempt);
    if (held) return held;
    if (!this.dir) return null;
    try {
      return JSON.parse(readFileSync(this.file(attempt), 'utf8')) as AttemptEgress;
    } catch {
      return null;
    }
  }

  /** Writes what changed now (on shutdown, and before a read by berth). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const attempt of this.dirty) {
      const record = this.attempts.get(attempt);
      if (!record || !this.dir) continue;
      const file = this.file(attempt);
      writeFileSync(`${file}.tmp`, JSON.stringify(record));
      renameSync(`${file}.tmp`, file);
    }
    this.dirty.clear();
    const cutoff = Date.now() - this.keepMs;
    for (const [attempt, record] of this.attempts) if (record.updatedAt < cutoff) this.attempts.delete(attempt);
  }

  private get(attempt: string): AttemptEgress {
    let record = this.attempts.get(attempt);
    if (!record) {
      record = this.read(attempt) ?? {
        attempt,
        counts: { allowed: 0, refused: 0 },
        refusedHosts: {},
        usage: { ...EMPTY_USAGE },
        byModel: {},
        entries: [],
        updatedAt: Date.now(),
      };
      record.byModel ??= {}; // a record written by a proxy before per-model usage
      this.attempts.set(attempt, record);
    }
    return record;
  }

  private touch(record: AttemptEgress): void {
    record.updatedAt = Date.now();
    this.dirty.add(record.attempt);
    this.timer ??= setTimeout(() => this.flush(), 500);
  }

  private file(attempt: string): string {
    return join(this.dir!, `${Buffer.from(attempt).toString('base64url')}.json`);
  }
}
