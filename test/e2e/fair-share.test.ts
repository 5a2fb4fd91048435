import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { berthKeys } from '../../src/core/keys.js';
import { startBerth } from '../support/berth.js';
import { recordEvents, type DockerEvent } from '../support/docker.js';
import { realParts } from '../support/suite.js';
import { waitUntil } from '../support/wait.js';

/** Fair share between repositories, with real Redis, real consumers and real containers. */
describe('fair share: a fair start order across repositories, and a cap on what one repository runs', () => {
  const parts = realParts();
  const { berths, env } = parts;

  it('with one slot, 40 tasks of one repository and then 4 of another: the 4 all start within the next 8 starts', async () => {
    const base = env({ WORKER_CONCURRENCY: '1', TASK_ATTEMPTS: '1' });
    const berth = await startBerth(base, { consumer: false });
    berths.push(berth);
    const repoOf = new Map<string, string>();
    // Queued with no consumer running, so the order is the queue's alone.
    for (let i = 0; i < 40; i++) repoOf.set((await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/busy', prompt: `a${i}` })).body.id, 'octo/busy');
    for (let i = 0; i < 4; i++)
      repoOf.set((await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/quiet', prompt: `b${i}` })).body.id, 'octo/quiet');
    const recorder = await recordEvents(base.QUEUE_NAME!);
    const consumer = parts.consumer(base);
    await consumer.ready;
    const starts = () => recorder.events.filter((e) => e.action === 'start').map((e) => repoOf.get(e.jobId));
    await waitUntil(() => starts().length >= 8, 'eight starts', 120_000);
    await consumer.kill('SIGTERM');
    await recorder.stop();
    const first8 = starts().slice(0, 8);
    assert.equal(first8.filter((repo) => repo === 'octo/quiet').length, 4, `the quiet repository's 4 among the first 8 starts: ${first8.join(', ')}`);
    assert.deepEqual(first8.slice(0, 2), ['octo/busy', 'octo/quiet'], 'interleaved from the start, the busy one first (it queued first)');
  });

  it('priorities: a higher one starts first (the kind’s, an API task’s within the allowed range), fair among equals; out of range is refused and queues nothing; a replay keeps it', async () => {
    const base = env({
      WORKER_CONCURRENCY: '1',
      TASK_ATTEMPTS: '1',
      AGENT_COMMAND_HOTFIX: 'node /agents/echo.mjs',
      TASK_PRIORITY_HOTFIX: '3',
      API_PRIORITY_MIN: '-5',
      API_PRIORITY_MAX: '5',
    });
    const berth = await startBerth(base, { consumer: false });
    berths.push(berth);
    const names = new Map<string, string>();
    const submit = async (name: string, body: Record<string, unknown>) => {
      const { status, body: created } = await berth.api('POST', '/api/tasks', body);
      assert.equal(status, 202, JSON.stringify(created));
      names.set(created.id, name);
      return created.id as string;
    };
    // Queued with no consumer running: the order is the queue's alone.
    for (let i = 0; i < 4; i++) await submit(`busy${i}`, { kind: 'echo', repo: 'octo/busy', prompt: `b${i}` });
    const low = await submit('low', { kind: 'echo', repo: 'octo/quiet', priority: -5 });
    await submit('hotfix', { kind: 'hotfix', repo: 'octo/busy' });
    await submit('quiet0', { kind: 'echo', repo: 'octo/quiet' });
    const top = await submit('top', { kind: 'echo', repo: 'octo/quiet', priority: 5 });
    const before = await berth.queue.count();
    const refused = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/quiet', priority: 6 });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.message, 'priority 6 is outside -5..5 (API_PRIORITY_MIN..API_PRIORITY_MAX)');
    const inRangeOfSchema = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/quiet', priority: 0.5 });
    assert.equal(inRangeOfSchema.status, 400, 'a priority is a whole number');
    assert.equal(await berth.queue.count(), before, 'refused requests queued nothing');
    assert.equal((await berth.api('GET', `/api/tasks/${top}`)).body.priority, 5);

    const recorder = await recordEvents(base.QUEUE_NAME!);
    const consumer = parts.consumer(base);
    await consumer.ready;
    await berth.waitFor(low, ['completed', 'failed'], 120_000);
    await consumer.kill('SIGTERM');
    await recorder.stop();
    const order = recorder.events.filter((e) => e.action === 'start').map((e) => names.get(e.jobId));
    assert.deepEqual(order.slice(0, 2), ['top', 'hotfix'], `higher priorities first: ${order.join(', ')}`);
    assert.equal(order.at(-1), 'low', `the lowest last: ${order.join(', ')}`);
    // Among the level-0 tasks the quiet repository's one is not held back behind the busy one's four
    // (its rank counts its repository's waiting tasks of every level: the low one queued before it).
    assert.ok(order.indexOf('quiet0') < order.indexOf('busy2'), `quiet0 before the busy repository's third: ${order.join(', ')}`);

    const replay = await berth.api('POST', `/api/tasks/${top}/replay`);
    assert.equal(replay.status, 202, JSON.stringify(replay.body));
    assert.equal((await berth.api('GET', `/api/tasks/${replay.body.id}`)).body.priority, 5, 'a replay starts at its task’s priority');
  });

  it('MAX_RUNNING_PER_REPO: a repository at its cap waits, saying why, without holding up another; a consumer SIGKILLed mid-run leaks no slot', async () => {
    const base = env({ WORKER_CONCURRENCY: '4', MAX_RUNNING_PER_REPO: '1', TASK_ATTEMPTS: '1', RECONCILE_INTERVAL: '500ms', CONSUMER_ID: 'fair-cap' });
    const berth = await startBerth(base, { consumer: false });
    berths.push(berth);
    const recorder = await recordEvents(base.QUEUE_NAME!);
    const first = parts.consumer(base);
    await first.ready;
    const capped: string[] = [];
    for (let i = 0; i < 3; i++) capped.push((await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/capped', prompt: '4' })).body.id as string);
    const other = (await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/other', prompt: '1' })).body.id as string;
    const repoOf = (e: DockerEvent) => (capped.includes(e.jobId) ? 'octo/capped' : e.jobId === other ? 'octo/other' : '?');

    // The other repository's task runs while the capped one's first holds its only slot.
    await waitUntil(() => recorder.events.some((e) => e.action === 'start' && e.jobId === other), 'the other repository started', 60_000);
    const waiting = await waitUntil(
      async () => {
        for (const id of capped) {
          const view = (await berth.api('GET', `/api/tasks/${id}`)).body;
          if (view.waitingFor) return view;
        }
        return null;
      },
      'a capped task saying why it waits',
      30_000,
    );
    assert.match(waiting.waitingFor, /^octo\/capped has 1 running, its cap \(MAX_RUNNING_PER_REPO=1\); this task starts when one of them ends$/);

    // Killed while the capped repository's first task runs: its slot goes with the adopted workload.
    await waitUntil(() => recorder.events.some((e) => e.action === 'start' && capped.includes(e.jobId)), 'a capped task running');
    await first.kill('SIGKILL');
    const second = parts.consumer(base);
    await second.ready;
    for (const id of [...capped, other]) assert.equal((await berth.waitFor(id, ['completed', 'failed'], 120_000)).state, 'completed', id);
    await recorder.stop();

    // Never two of the capped repository's containers running at once, and one container per task.
    let running = 0;
    let most = 0;
    for (const event of recorder.events.filter((e) => repoOf(e) === 'octo/capped')) {
      if (event.action === 'start') most = Math.max(most, ++running);
      if (event.action === 'die') running--;
    }
    assert.equal(most, 1, 'at most one running at any time');
    for (const id of capped) assert.equal(recorder.events.filter((e) => e.action === 'create' && e.jobId === id).length, 1, `one container for ${id}`);
    const redis = new Redis(parts.redis.url);
    try {
      await waitUntil(async () => (await redis.scard(berthKeys(base.QUEUE_NAME!).runningForRepo('octo/capped'))) === 0, 'no slot left held', 15_000);
    } finally {
      redis.disconnect();
    }
  });
});
