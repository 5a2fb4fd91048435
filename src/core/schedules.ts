import { CronExpressionParser } from 'cron-parser';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { berthKeys } from './keys.js';
import { priorityLevelSchema } from './start-priority.js';
import { taskRequestSchema } from './task.js';

/**
 * Scheduled agents: `schedules` in the rules file (operator config). A schedule's ticks come from
 * a BullMQ job scheduler on a queue of their own; each tick becomes at most one task, whose id is
 * the schedule's and the tick's, so any number of berths and restarts make one task per tick.
 */
export const scheduleSchema = z
  .strictObject({
    /** Names the schedule in the API, the board and the task ids it makes. */
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, such as nightly-deps'),
    /** Cron, 5 fields (minute first) or 6 (seconds first). */
    cron: z.string().min(1),
    /** The IANA time zone the cron reads in. */
    timezone: z.string().default('UTC'),
    repo: taskRequestSchema.shape.repo,
    kind: taskRequestSchema.shape.kind,
    prompt: taskRequestSchema.shape.prompt,
    number: taskRequestSchema.shape.number,
    ref: taskRequestSchema.shape.ref,
    priority: priorityLevelSchema.optional(),
    enabled: z.boolean().default(true),
  })
  .superRefine((schedule, ctx) => {
    if (!validTimezone(schedule.timezone))
      ctx.addIssue({ code: 'custom', path: ['timezone'], message: `'${schedule.timezone}' is not an IANA time zone such as Europe/Berlin` });
    else {
      const problem = cronProblem(schedule.cron, schedule.timezone);
      if (problem) ctx.addIssue({ code: 'custom', path: ['cron'], message: problem });
    }
  });
export type Schedule = z.infer<typeof scheduleSchema>;

function validTimezone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

/** Why `cron` is not a schedule berth can run (BullMQ reads it with the same parser), or null. */
export function cronProblem(cron: string, timezone: string): string | null {
  const fields = cron.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) return `'${cron}' has ${fields} fields; a cron has 5 (minute hour day month weekday) or 6 (seconds first)`;
  try {
    CronExpressionParser.parse(cron, { tz: timezone }).next();
    return null;
  } catch (error) {
    return `'${cron}' is not a cron expression (${(error as Error).message})`;
  }
}

/** What became of one tick. */
export type TickOutcome =
  | { at: number; outcome: 'queued'; taskId: string }
  | { at: number; outcome: 'skipped'; reason: 'running' | 'paused' | 'missed' | 'refused'; detail: string };

/** How many of a schedule's tick outcomes are kept (newest first). */
const KEPT_TICKS = 20;

/**
 * A schedule's state in Redis, shared by the API (list, pause, resume) and the consumers (each
 * tick): paused schedules, the last task a schedule made, and its recent tick outcomes.
 */
export class ScheduleBook {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    queue: string,
  ) {
    this.keys = berthKeys(queue);
  }

  async setPaused(id: string, paused: boolean): Promise<void> {
    if (paused) await this.redis.hset(this.keys.schedulesPaused, id, String(Date.now()));
    else await this.redis.hdel(this.keys.schedulesPaused, id);
  }

  async paused(): Promise<Set<string>> {
    return new Set(Object.keys(await this.redis.hgetall(this.keys.schedulesPaused)));
  }

  async isPaused(id: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.schedulesPaused, id)) === 1;
  }

  async lastTask(id: string): Promise<string | null> {
    return this.redis.hget(this.keys.schedulesLastTask, id);
  }

  async record(id: string, tick: TickOutcome): Promise<void> {
    const pipeline = this.redis
      .pipeline()
      .lpush(this.keys.scheduleTicks(id), JSON.stringify(tick))
      .ltrim(this.keys.scheduleTicks(id), 0, KEPT_TICKS - 1);
    if (tick.outcome === 'queued') pipeline.hset(this.keys.schedulesLastTask, id, tick.taskId);
    await pipeline.exec();
  }

  async ticks(id: string): Promise<TickOutcome[]> {
    return (await this.redis.lrange(this.keys.scheduleTicks(id), 0, KEPT_TICKS - 1)).map((text) => JSON.parse(text) as TickOutcome);
  }
}

export function scheduleQueueName(taskQueue: string): string {
  return `${taskQueue}-schedules`;
}

/** The task a tick makes: one id per schedule and tick, whoever processes it and however often. */
export function scheduledTaskId(scheduleId: string, tickAt: number): string {
  return `s-${scheduleId}-${tickAt}`;
}
