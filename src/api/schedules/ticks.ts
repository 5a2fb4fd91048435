import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../../core/config.js';
import type { BerthMetrics } from '../../core/metrics.js';
import type { TaskQueue } from '../../core/queue.js';
import { scheduledTaskId, scheduleQueueName, type Schedule, type ScheduleBook, type TickOutcome } from '../../core/schedules.js';
import { submitTask, type SubmitConfig, type SubmitDeps } from '../tasks/submit.js';

export type TickConfig = SubmitConfig & Pick<Config, 'QUEUE_NAME' | 'SCHEDULE_CATCH_UP' | 'webhookRules'>;

interface TickData {
  schedule: string;
}

/** How late a tick may be taken and still count as on time (a busy or restarting worker). */
const ON_TIME_MS = 5_000;
/** A task of a schedule that has not finished: the next tick is skipped while it is there. */
const UNFINISHED = new Set(['waiting', 'prioritized', 'delayed', 'active', 'waiting-children']);

/**
 * Schedules in, beside webhooks and the API: each enabled schedule is a BullMQ job scheduler on a
 * queue of its own (upserted by every berth at start: the same id and pattern are one scheduler),
 * and each tick a job there. BullMQ makes a scheduler's next job when the current one starts, so a
 * berth that was down finds one overdue tick, never a pile. A tick becomes a task with an id of its
 * own (`s-<schedule>-<due>`): processed twice, it is still one task.
 */
export class ScheduleTicks {
  readonly queue: Queue<TickData>;
  private worker?: Worker<TickData>;

  constructor(
    private readonly deps: {
      config: TickConfig;
      connection: ConnectionOptions;
      tasks: TaskQueue;
      book: ScheduleBook;
      submit: SubmitDeps;
      logger: Logger;
      metrics?: BerthMetrics;
    },
  ) {
    this.queue = new Queue<TickData>(scheduleQueueName(deps.config.QUEUE_NAME), { connection: deps.connection });
    this.queue.on('error', (error) => deps.logger.warn({ err: error }, 'schedule queue'));
  }

  private get schedules(): Schedule[] {
    return this.deps.config.webhookRules.schedules;
  }

  /** Brings the job schedulers in line with the rules file: enabled ones upserted, the rest removed. */
  async sync(): Promise<void> {
    const enabled = this.schedules.filter((s) => s.enabled);
    for (const schedule of enabled) {
      // An unchanged scheduler is left as it is: an upsert replaces its pending tick with one
      // counted from now, which would drop the tick that came due while no berth ran.
      const existing = await this.queue.getJobScheduler(schedule.id);
      if (existing?.pattern === schedule.cron && (existing.tz ?? 'UTC') === schedule.timezone) continue;
      await this.queue.upsertJobScheduler(
        schedule.id,
        { pattern: schedule.cron, tz: schedule.timezone },
        {
          name: 'tick',
          data: { schedule: schedule.id },
          // A tick that could not be decided (Redis answering errors) is tried again: its task id makes a retry safe.
          opts: { attempts: 5, backoff: { type: 'exponential', delay: 1_000 }, removeOnComplete: 100, removeOnFail: 100 },
        },
      );
    }
    const wanted = new Set(enabled.map((s) => s.id));
    for (const scheduler of await this.queue.getJobSchedulers(0, -1))
      if (scheduler.key && !wanted.has(scheduler.key)) {
        await this.queue.removeJobScheduler(scheduler.key);
        this.deps.logger.info({ schedule: scheduler.key }, 'removed a schedule the rules file no longer enables');
      }
  }

  start(): void {
    this.worker = new Worker<TickData>(this.queue.name, (job) => this.tick(job), { connection: this.deps.connection, concurrency: 1 });
    this.worker.on('error', (error) => this.deps.logger.warn({ err: error }, 'schedule ticks'));
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
  }

  /** One tick: a task, or a skip with its reason; either way recorded on the schedule. */
  async tick(job: Job<TickData>, now = Date.now()): Promise<TickOutcome> {
    const { book, logger, metrics } = this.deps;
    const id = job.data.schedule;
    const due = dueOf(job);
    const outcome = await this.decide(id, due, now);
    if (outcome) {
      await book.record(id, outcome);
      metrics?.scheduleTicks.inc({ schedule: id, outcome: outcome.outcome === 'queued' ? 'queued' : outcome.reason });
      logger.info({ schedule: id, due: new Date(due).toISOString(), ...outcome }, `schedule tick ${outcome.outcome}`);
    }
    return outcome ?? { at: now, outcome: 'skipped', reason: 'refused', detail: 'no such schedule' };
  }

  private async decide(id: string, due: number, now: number): Promise<TickOutcome | null> {
    const schedule = this.schedules.find((s) => s.id === id && s.enabled);
    // Gone from the rules file since this tick was made: the sync removes its scheduler.
    if (!schedule) return null;
    const skip = (reason: 'running' | 'paused' | 'missed' | 'refused', detail: string): TickOutcome => ({ at: due, outcome: 'skipped', reason, detail });
    if (await this.deps.book.isPaused(id)) return skip('paused', 'the schedule is paused (POST /api/schedules/:id/resume)');
    // A tick is taken within moments of its time while a berth runs; one found later was due while none did.
    const late = now - due;
    if (late > Math.max(this.deps.config.SCHEDULE_CATCH_UP, ON_TIME_MS))
      return skip('missed', `due ${new Date(due).toISOString()}, ${Math.round(late / 1000)} s before any berth ran it: later than SCHEDULE_CATCH_UP`);
    const last = await this.deps.book.lastTask(id);
    if (last) {
      const previous = await this.deps.tasks.getJob(last);
      if (previous && UNFINISHED.has(await previous.getState())) return skip('running', `its previous task ${last} has not finished`);
    }
    const result = await submitTask(
      this.deps.tasks,
      this.deps.config,
      {
        kind: schedule.kind,
        repo: schedule.repo,
        ...(schedule.prompt !== undefined ? { prompt: schedule.prompt } : {}),
        ...(schedule.number !== undefined ? { number: schedule.number } : {}),
        ...(schedule.ref !== undefined ? { ref: schedule.ref } : {}),
      },
      {
        source: 'schedule',
        schedule: id,
        jobId: scheduledTaskId(id, due),
        ...(schedule.priority !== undefined ? { level: schedule.priority } : {}),
      },
      this.deps.submit,
    );
    if (result.status === 'created' || result.status === 'existing') return { at: due, outcome: 'queued', taskId: result.id };
    if (result.status === 'over-capacity') return skip('refused', result.message);
    return skip('refused', `the task could not be queued (${result.status})`);
  }
}

/**
 * The tick's own time, as the cron gave it: BullMQ's scheduler keeps it in the job's `prevMillis`
 * and its id (`repeat:<scheduler>:<millis>`); the job's creation time plus delay is only near it.
 */
function dueOf(job: Job): number {
  const prevMillis = (job.opts as { prevMillis?: number }).prevMillis;
  if (typeof prevMillis === 'number' && prevMillis > 0) return prevMillis;
  const fromId = /^repeat:.+:(\d+)$/.exec(job.id ?? '');
  return fromId ? Number(fromId[1]) : job.timestamp + (job.delay ?? 0);
}
