import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { CancelBook } from '../core/cancel.js';
import type { TaskQueue } from '../core/queue.js';
import type { GithubReports } from './report-queue.js';

/** The Redis consumer group on the task queue's events stream whose members turn task changes into reports. */
export const REPORT_GROUP = 'berth-github-reports';

/**
 * The events that change what GitHub should show. Not `active` (an attempt shows as running once
 * its workload runs, which is a `progress` event), nor the queue-level ones (drained, cleaned).
 */
const REPORTED_EVENTS = new Set(['added', 'waiting', 'progress', 'delayed', 'completed', 'failed', 'removed', 'stalled']);
/** What a task waiting for a slot does on each look. */
const LOOK_AGAIN = new Set(['delayed', 'waiting']);
/** Entries a consumer read but never acknowledged (it died in between) are taken over after this long. */
const CLAIM_IDLE_MS = 30_000;
const BATCH = 200;
const BLOCK_MS = 2_000;

/** Fields are null for an entry trimmed from the stream after it was read. */
type StreamEntry = [id: string, fields: string[] | null];

/**
 * GitHub reporting triggered from the task's own state changes, in one place. BullMQ writes an
 * event to the queue's events stream in the same Lua step that changes a job's state, so no change
 * can happen without its event, whichever process made it (the API, a webhook, the board, a
 * consumer, BullMQ's stall check). A Redis consumer group hands each event to one consumer and keeps
 * its place across restarts; an entry a dead consumer read but never acknowledged is claimed by
 * another. Each batch becomes one level-triggered sync per task with a GitHub subject; the report's
 * job id is the event's id, so an event delivered twice adds one report.
 */
export class ReportTrigger {
  private stopped = false;
  private running?: Promise<void>;
  private readonly key: string;

  constructor(
    private readonly deps: {
      /** A connection of its own: the read blocks. */
      redis: Redis;
      queue: TaskQueue;
      reports: GithubReports;
      cancels: CancelBook;
      /** This reader's name in the group (the consumer's id, stable across its restarts). */
      consumer: string;
      logger: Logger;
      /** How long an entry read by another reader stays unacknowledged before this one takes it over. */
      claimIdleMs?: number;
    },
  ) {
    this.key = deps.queue.keys.events!;
  }

  /**
   * Makes the group if there is none, at the stream's end. Both the API and the consumers call it
   * at start, so events written before the first consumer ever ran are still read.
   */
  static async ensureGroup(redis: Redis, queue: TaskQueue): Promise<void> {
    try {
      await redis.xgroup('CREATE', queue.keys.events!, REPORT_GROUP, '$', 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
  }

  start(): void {
    this.running = this.run();
  }

  async close(): Promise<void> {
    this.stopped = true;
    // The blocking read ends with the connection.
    this.deps.redis.disconnect();
    await this.running;
  }

  private async run(): Promise<void> {
    const { redis, consumer, logger } = this.deps;
    const claimIdleMs = this.deps.claimIdleMs ?? CLAIM_IDLE_MS;
    let claimedAt = 0;
    // What this consumer read before it last stopped, and never acknowledged.
    let cursor = '0';
    while (!this.stopped) {
      try {
        await ReportTrigger.ensureGroup(redis, this.deps.queue);
        if (Date.now() - claimedAt > claimIdleMs) {
          claimedAt = Date.now();
          const [, claimed] = (await redis.xautoclaim(this.key, REPORT_GROUP, consumer, claimIdleMs, '0-0', 'COUNT', BATCH)) as [string, StreamEntry[]];
          await this.handle(claimed);
        }
        const reply = (await redis.xreadgroup('GROUP', REPORT_GROUP, consumer, 'COUNT', BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', this.key, cursor)) as Array<
          [string, StreamEntry[]]
        > | null;
        const entries = reply?.[0]?.[1] ?? [];
        // Once its own backlog is empty, this consumer reads what no one has been given yet.
        if (cursor === '0' && entries.length === 0) cursor = '>';
        await this.handle(entries);
      } catch (error) {
        if (this.stopped) break;
        logger.warn({ err: error }, 'reading task changes for GitHub reports failed; trying again');
        await delay(1_000);
      }
    }
  }

  private async handle(entries: StreamEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const { redis, reports } = this.deps;
    // The last change of each task in the batch: a sync reads the task's state when it runs, so one is enough.
    const changed = new Map<string, { id: string; events: Set<string> }>();
    for (const [id, fields] of entries) {
      const event = fieldOf(fields, 'event');
      const jobId = fieldOf(fields, 'jobId');
      if (!event || !jobId || !REPORTED_EVENTS.has(event)) continue;
      const seen = changed.get(jobId);
      changed.set(jobId, { id, events: (seen?.events ?? new Set()).add(event) });
    }
    const tasks = [...changed];
    const stored = await Promise.all(tasks.map(([jobId]) => redis.hmget(this.deps.queue.toKey(jobId), 'data', 'progress')));
    for (const [index, [taskId, change]] of tasks.entries()) {
      const [data, progress] = stored[index] ?? [];
      if (!(await this.hasGithubSubject(taskId, data ?? null))) continue;
      // A task waiting for its repository's slot looks again every few seconds (delayed, then waiting
      // again): the wait is said once, by its progress.
      if ([...change.events].every((event) => LOOK_AGAIN.has(event)) && waitsForSlot(progress ?? null)) continue;
      await reports.sync(taskId, `e${change.id}`);
    }
    await redis.xack(this.key, REPORT_GROUP, ...entries.map(([id]) => id));
  }

  /** Only tasks about an issue or a pull request are reported; a task removed by a cancel is read from its tombstone. */
  private async hasGithubSubject(taskId: string, data: string | null): Promise<boolean> {
    if (data === null) return (await this.deps.cancels.tombstone<{ number: number | null }>(taskId))?.number != null;
    try {
      return typeof (JSON.parse(data) as { number?: unknown }).number === 'number';
    } catch {
      return false;
    }
  }
}

function fieldOf(fields: string[] | null, name: string): string | undefined {
  if (!fields) return undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

function waitsForSlot(progress: string | null): boolean {
  if (!progress) return false;
  try {
    return typeof (JSON.parse(progress) as { waitingFor?: unknown }).waitingFor === 'string';
  } catch {
    return false;
  }
}
