import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { realParts } from '../support/suite.js';
import { startBerth, type TestBerth } from '../support/berth.js';
import { TaskIndex } from '../../src/core/task-index.js';
import { berthKeys } from '../../src/core/keys.js';

/** Total commands Redis has executed, from its own statistics. */
async function commandsSoFar(client: Redis): Promise<number> {
  const info = await client.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)![1]);
}

describe('repository and kind filters read an index', () => {
  const parts = realParts({ image: false });
  let berth: TestBerth;
  let client: Redis;

  before(async () => {
    client = new Redis(parts.redis.url);
    berth = await startBerth(
      parts.env({ AGENT_COMMAND_REVIEW: 'node /agents/echo.mjs', TASK_ATTEMPTS: '1', MAX_QUEUED_PER_REPO: '0', MAX_QUEUED_TASKS: '0' }),
      { consumer: false },
    );
    parts.berths.push(berth);
  });
  after(() => client.disconnect());

  const all = async (query: string, limit: number) => {
    const ids: string[] = [];
    for (let cursor: number | null = 0; cursor !== null; ) {
      const { body } = await berth.api('GET', `/api/tasks?${query}&limit=${limit}&cursor=${cursor}`);
      ids.push(...body.tasks.map((t: { id: string }) => t.id));
      cursor = body.nextCursor;
    }
    return ids;
  };

  it('pages through one repository newest first, no task twice, none missed; kind and state filters combine', async () => {
    const byRepo: Record<string, string[]> = { 'octo/a': [], 'octo/b': [], 'octo/c': [] };
    for (let i = 0; i < 30; i++) {
      const repo = Object.keys(byRepo)[i % 3]!;
      const { body } = await berth.api('POST', '/api/tasks', { kind: i % 2 ? 'review' : 'echo', repo });
      byRepo[repo]!.push(body.id);
    }
    assert.deepEqual(await all('repo=octo/a', 3), [...byRepo['octo/a']!].reverse());
    const reviewsOfB = await all('repo=octo/b&kind=review', 2);
    assert.equal(reviewsOfB.length, 5);
    assert.equal((await all('kind=review', 7)).length, 15);
    assert.equal((await all('repo=octo/c&state=waiting', 4)).length, 10);
    assert.deepEqual(await all('repo=nobody/nothing', 10), []);
  });

  it('stays right when jobs go (removed by age, a crash between index and add), and with replays', async () => {
    const ids = await all('repo=octo/a', 50);
    // BullMQ removing finished jobs by age looks like this from the index's side:
    for (const id of ids.slice(2, 5)) await (await berth.queue.getJob(id))!.remove();
    // A crash after indexing and before the add leaves an id with no job:
    await new TaskIndex(client, berth.config.QUEUE_NAME).add('t-never-added', 'octo/a', 'echo');
    const after = await all('repo=octo/a', 2);
    assert.deepEqual(after, [...ids.slice(0, 2), ...ids.slice(5)], 'gone ones skipped, the rest in order, pages unbroken');
    assert.equal(await client.zcard(berthKeys(berth.config.QUEUE_NAME).byRepo('octo/a')), after.length, 'and dropped from the index');

    const replayed = await berth.api('POST', `/api/tasks/${ids[0]}/replay`);
    assert.equal(replayed.status, 202);
    assert.equal((await all('repo=octo/a', 50))[0], replayed.body.id, 'a replay is a new task of the repository');
  });

  it('O(page): a filter that matches a few tasks among thousands costs a handful of Redis commands', async () => {
    // 3,000 tasks of another repository, added as the API does (index, then job).
    for (let i = 0; i < 3_000; i++) {
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/busy' });
      if (!body.id) assert.fail(JSON.stringify(body));
    }
    const before = await commandsSoFar(client);
    const { body } = await berth.api('GET', '/api/tasks?repo=octo/c&limit=5');
    const used = (await commandsSoFar(client)) - before;
    assert.equal(body.tasks.length, 5);
    assert.ok(used < 60, `${used} Redis commands for one filtered page`);
    const none = await commandsSoFar(client);
    await berth.api('GET', '/api/tasks?repo=nobody/nothing');
    assert.ok((await commandsSoFar(client)) - none < 10, 'a filter matching nothing reads nothing');
  });
});
