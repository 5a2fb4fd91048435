import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fairPriority } from '../../src/core/backpressure.js';

describe('fair start order', () => {
  it('interleaves repositories: 40 of one, then 4 of another, the 4 within the next 8 starts; a repository keeps its own order', () => {
    const queued: Array<{ repo: string; priority: number; seq: number }> = [];
    const waiting: Record<string, number> = {};
    const last: Record<string, number> = {};
    const add = (repo: string) => {
      const priority = fairPriority(waiting[repo] ?? 0, last[repo] ?? 1);
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
    const next = fairPriority(waiting.a!, last.a!);
    assert.ok(next >= Math.max(...queued.filter((t) => t.repo === 'a').map((t) => t.priority)), `after every waiting a: ${next}`);
    assert.equal(fairPriority(0, 40), 1, 'a repository with nothing waiting starts afresh');
    assert.equal(fairPriority(5_000_000, 1), 2_097_152, "within BullMQ's range");
  });
});
