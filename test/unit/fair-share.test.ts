import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fairRank } from '../../src/core/backpressure.js';
import { levelOf, PRIORITY_MAX, PRIORITY_MIN, startPriority } from '../../src/core/start-priority.js';

describe('fair start order', () => {
  it('interleaves repositories: 40 of one, then 4 of another, the 4 within the next 8 starts; a repository keeps its own order', () => {
    const queued: Array<{ repo: string; priority: number; seq: number }> = [];
    const waiting: Record<string, number> = {};
    const last: Record<string, number> = {};
    const add = (repo: string) => {
      const priority = fairRank(waiting[repo] ?? 0, last[repo] ?? 1);
      waiting[repo] = (waiting[repo] ?? 0) + 1;
      last[repo] = priority;
      queued.push({ repo, priority, seq: queued.length });
    };
    for (let i = 0; i < 40; i++) add('a');
    for (let i = 0; i < 4; i++) add('b');
    // BullMQ: the lowest priority first, equal ones in the order they came.
    const order = [...queued].sort((x, y) => x.priority - y.priority || x.seq - y.seq);
    assert.equal(order.slice(0, 8).filter((t) => t.repo === 'b').length, 4);
    // 10 of a start; a new task of a still goes after the a's that wait (its order kept).
    const started = order.filter((t) => t.repo === 'a').slice(0, 10);
    waiting.a! -= started.length;
    const next = fairRank(waiting.a!, last.a!);
    assert.ok(next >= Math.max(...queued.filter((t) => t.repo === 'a').map((t) => t.priority)), `after every waiting a: ${next}`);
    assert.equal(fairRank(0, 40), 1, 'a repository with nothing waiting starts afresh');
    assert.equal(fairRank(5_000_000, 1), 2_097_152, "within BullMQ's range");
  });
});

describe('start priority: levels first, then the fair rank', () => {
  it('a higher level starts before every lower one; within a level, repositories interleave; always within BullMQ’s range', () => {
    const tasks = [
      { name: 'a1', level: 0, rank: 1 },
      { name: 'a2', level: 0, rank: 2 },
      { name: 'b1', level: 0, rank: 1 },
      { name: 'urgent', level: 5, rank: 3 },
      { name: 'later', level: -3, rank: 1 },
      { name: 'top', level: 10, rank: 65_535 },
    ].map((t, seq) => ({ ...t, seq, priority: startPriority(t.level, t.rank) }));
    const order = [...tasks].sort((x, y) => x.priority - y.priority || x.seq - y.seq).map((t) => t.name);
    assert.deepEqual(order, ['top', 'urgent', 'a1', 'b1', 'a2', 'later']);
    assert.equal(startPriority(PRIORITY_MIN, 5_000_000), startPriority(PRIORITY_MIN, 65_535), 'a huge rank stays in its band');
    assert.ok(startPriority(PRIORITY_MIN, 5_000_000) < startPriority(PRIORITY_MIN - 1, 1), 'and never reaches the next one');
    assert.ok(startPriority(PRIORITY_MIN, 5_000_000) <= 2_097_152, "BullMQ's largest priority");
    assert.ok(startPriority(PRIORITY_MAX, 0) >= 1, 'never 0 (BullMQ would read it as none)');
    for (const level of [PRIORITY_MIN, -1, 0, 7, PRIORITY_MAX]) assert.equal(levelOf(startPriority(level, 42)), level);
  });
});
