import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import { ScheduleTicks } from '../../src/api/schedules/ticks.js';
import { parseConfig } from '../../src/core/config.js';
import { createTaskQueue, redisConnection, type TaskQueue } from '../../src/core/queue.js';
import { ScheduleBook } from '../../src/core/schedules.js';
import { testEnv } from '../support/berth.js';
import { rulesFile } from '../support/github.js';
import { startRedis, type TestRedis } from '../support/redis.js';

/** How one tick is decided, against a real Redis and BullMQ (no engine: the tasks are only queued). */
describe('a schedule tick', () => {
  let redis: TestRedis;
  let client: Redis;
  let tasks: TaskQueue;
  let ticks: ScheduleTicks;
  let book: ScheduleBook;
  const tick = (due: number) =>
    ({ data: { schedule: 'nightly' }, opts: { prevMillis: due }, timestamp: due - 1_000, delay: 1_000 }) as unknown as Job<{ schedule: string }>;

  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    const config = parseConfig(
      testEnv(redis, 'berth:unused', {
        SCHEDULE_CATCH_UP: '10m',
        WEBHOOK_RULES_FILE: rulesFile({
          schedules: [{ id: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Berlin', repo: 'octo/app', kind: 'echo', priority: 4 }],
        }),
      }),
    );
    tasks = createTaskQueue(config);
    book = new ScheduleBook(client, config.QUEUE_NAME);
    ticks = new ScheduleTicks({ config, connection: redisConnection(redis.url), tasks, book, submit: {}, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await ticks.close();
    await tasks.close();
    client.disconnect();
    await redis.stop();
  });

  it('queues one task per tick (twice processed, still one), skips while it is unfinished, when paused, and when found too late', async () => {
    const due = Date.UTC(2026, 11, 3, 2, 0, 0);
    const first = await ticks.tick(tick(due), due + 200);
    assert.deepEqual(first, { at: due, outcome: 'queued', taskId: `s-nightly-${due}` });
    const job = await tasks.getJob(`s-nightly-${due}`);
    assert.equal(job?.data.source, 'schedule');
    assert.equal(job?.data.schedule, 'nightly');
    assert.equal(job?.data.priority, 4, "the schedule's priority");
    const again = await ticks.tick(tick(due), due + 300);
    assert.equal(again.outcome, 'skipped', 'its own task has not finished: the same tick processed again queues nothing new');
    assert.equal(await tasks.count(), 1);

    const next = due + 86_400_000;
    assert.deepEqual(await ticks.tick(tick(next), next + 100), {
      at: next,
      outcome: 'skipped',
      reason: 'running',
      detail: `its previous task s-nightly-${due} has not finished`,
    });
    await job!.remove();
    await book.setPaused('nightly', true);
    assert.equal((await ticks.tick(tick(next), next + 100)).outcome === 'skipped' && (await book.ticks('nightly'))[0]?.outcome, 'skipped');
    assert.match(JSON.stringify((await book.ticks('nightly'))[0]), /"reason":"paused"/);
    await book.setPaused('nightly', false);

    const late = await ticks.tick(tick(next), next + 11 * 60_000);
    assert.equal(late.outcome === 'skipped' ? late.reason : late.outcome, 'missed', 'found 11 minutes late, past SCHEDULE_CATCH_UP=10m');
    assert.equal(await tasks.count(), 0, 'nothing queued for a paused, running or missed tick');
    const onTime = await ticks.tick(tick(next), next + 9 * 60_000);
    assert.equal(onTime.outcome, 'queued', 'within the catch-up window');
    assert.equal((await book.ticks('nightly')).length, 6, 'every decision recorded');
  });
});
