import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { uniqueQueue, startApiProcess, type ApiProcess } from '../support/berth.js';
import { recordEvents } from '../support/docker.js';
import { rulesFile } from '../support/github.js';
import { ensureWorkerImage } from '../support/image.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { waitUntil } from '../support/wait.js';

interface Tick {
  at: number;
  outcome: 'queued' | 'skipped';
  taskId?: string;
  reason?: string;
}

/**
 * Scheduled agents under two real berth processes sharing one queue (API and consumer in each, as
 * production runs them), one of them SIGKILLed and restarted, then both down for a while: one task
 * per tick, a tick skipped while the previous run still runs, pause and resume, and one catch-up
 * after the downtime, never a pile.
 */
describe('schedules: one task per tick across berths and restarts', () => {
  let redis: TestRedis;
  let image: string;
  const berths: ApiProcess[] = [];
  const queue = uniqueQueue('sched');
  const SCHEDULE = 'every-2s';
  let env: Record<string, string>;

  const start = async (consumer: string) => {
    const berth = await startApiProcess(redis, image, { ...env, CONSUMER_ID: consumer });
    berths.push(berth);
    return berth;
  };
  const ticks = async (berth: ApiProcess): Promise<Tick[]> => {
    const { body } = await berth.call('GET', '/api/schedules');
    return (body.schedules as Array<{ id: string; ticks: Tick[] }>).find((s) => s.id === SCHEDULE)!.ticks;
  };

  before(async () => {
    image = await ensureWorkerImage();
    redis = await startRedis({ aof: true });
    env = {
      QUEUE_NAME: queue,
      AGENT_COMMAND_SLEEP: 'node /agents/sleep.mjs',
      TASK_ATTEMPTS: '1',
      WEBHOOK_RULES_FILE: rulesFile({
        // Every 2 s, and each run takes 3 s: every other tick finds the previous run still running.
        schedules: [{ id: SCHEDULE, cron: '*/2 * * * * *', repo: 'octo/nightly', kind: 'sleep', prompt: '3' }],
      }),
    };
  });
  after(async () => {
    for (const berth of berths) await berth.stop().catch(() => {});
    await redis.stop();
  });

  it('two berths, one SIGKILLed and restarted: every tick decided once, a task or a skip while the last still runs; never two runs at once', async () => {
    const recorder = await recordEvents(queue);
    const a = await start('sched-a');
    await start('sched-b');
    await waitUntil(async () => (await ticks(a)).length >= 3, 'three ticks', 30_000);
    await a.process.kill('SIGKILL');
    const restarted = await start('sched-a');
    await waitUntil(async () => (await ticks(restarted)).length >= 7, 'seven ticks', 40_000);
    const seen = await ticks(restarted);
    await recorder.stop();

    const dues = seen.map((t) => t.at).sort((x, y) => x - y);
    assert.equal(new Set(dues).size, dues.length, `each tick decided once: ${dues.join(', ')}`);
    for (let i = 1; i < dues.length; i++) assert.equal(dues[i]! - dues[i - 1]!, 2_000, `no tick lost, none doubled: ${dues.join(', ')}`);
    const queued = seen.filter((t) => t.outcome === 'queued');
    assert.ok(queued.length >= 2, JSON.stringify(seen));
    assert.ok(
      seen.some((t) => t.outcome === 'skipped' && t.reason === 'running'),
      `a tick while the previous run ran is skipped: ${JSON.stringify(seen)}`,
    );
    for (const tick of queued) assert.equal(tick.taskId, `s-${SCHEDULE}-${tick.at}`, 'the task is named after its schedule and tick');
    // What Docker saw: one container per queued tick's task, and never two of them running at once.
    const ours = recorder.events.filter((e) => queued.some((t) => t.taskId === e.jobId));
    for (const tick of queued.slice(0, -1))
      assert.equal(ours.filter((e) => e.action === 'create' && e.jobId === tick.taskId).length, 1, `one container for ${tick.taskId}`);
    let running = 0;
    let most = 0;
    for (const event of ours) {
      if (event.action === 'start') most = Math.max(most, ++running);
      if (event.action === 'die') running--;
    }
    assert.equal(most, 1, 'at most one run of the schedule at a time');
  });

  it('pause skips its ticks and queues nothing; resume brings them back', async () => {
    const berth = berths.at(-1)!;
    const paused = await berth.call('POST', `/api/schedules/${SCHEDULE}/pause`);
    assert.deepEqual(paused.body, { id: SCHEDULE, paused: true });
    assert.equal((await berth.call('POST', '/api/schedules/no-such/pause')).status, 404);
    const since = Date.now();
    await waitUntil(async () => (await ticks(berth)).some((t) => t.at > since && t.reason === 'paused'), 'a tick skipped as paused', 15_000);
    const listed = (await berth.call('GET', '/api/schedules')).body.schedules[0];
    assert.equal(listed.paused, true);
    assert.ok(Date.parse(listed.next) > since, `the next tick is named: ${listed.next}`);
    await berth.call('POST', `/api/schedules/${SCHEDULE}/resume`);
    const resumed = Date.now();
    await waitUntil(async () => (await ticks(berth)).some((t) => t.at > resumed && t.reason !== 'paused'), 'a tick after resume', 15_000);
  });

  it('ticks due while no berth runs: one catch-up when a berth starts, not one per missed tick', async () => {
    for (const berth of berths.splice(0)) await berth.process.kill('SIGKILL');
    const down = Date.now();
    // A fixed wait: the point is ticks coming due while nothing runs (four of them).
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    const back = await start('sched-c');
    const up = Date.now();
    await waitUntil(async () => (await ticks(back)).some((t) => t.at > up), 'a tick after the restart', 20_000);
    const during = (await ticks(back)).filter((t) => t.at > down && t.at < up);
    assert.equal(during.length, 1, `one of the ticks due while down was decided, once: ${JSON.stringify(during)}`);
  });
});
