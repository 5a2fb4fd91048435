import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { taskRequestSchema, workerTaskSchema } from '../../src/core/task.js';
import { containerName, idempotentTaskId, newTaskId } from '../../src/core/names.js';

describe('task schema', () => {
  it('accepts a full request', () => {
    const parsed = taskRequestSchema.parse({
      kind: 'review',
      repo: 'octo-org/my.repo_1',
      ref: 'refs/pull/7/head',
      number: 7,
      prompt: 'look',
      idempotencyKey: 'k',
    });
    assert.equal(parsed.repo, 'octo-org/my.repo_1');
  });

  it('rejects unknown fields, bad repos, bad kinds and wrong types', () => {
    const bad = [
      { kind: 'review', repo: 'a/b', Image: 'x' },
      { kind: 'review', repo: 'a/b', HostConfig: {} },
      { kind: 'review', repo: 'a' },
      { kind: 'review', repo: 'a/b/c' },
      { kind: 'review', repo: '-a/b' },
      { kind: 'Review', repo: 'a/b' },
      { kind: 'review', repo: 'a/b', number: 0 },
      { kind: 'review', repo: 'a/b', number: 1.5 },
      { kind: 'review', repo: 'a/b', ref: 'has space' },
      { kind: 'review', repo: 'a/b', prompt: 'x'.repeat(70_000) },
      { repo: 'a/b' },
    ];
    for (const body of bad) assert.equal(taskRequestSchema.safeParse(body).success, false, JSON.stringify(body).slice(0, 80));
  });

  it('the worker payload is strict too', () => {
    assert.equal(workerTaskSchema.safeParse({ id: 't-1', attempt: 1, kind: 'review', repo: 'a/b', token: 'x' }).success, false);
    assert.equal(workerTaskSchema.safeParse({ id: 't-1', attempt: 1, kind: 'review', repo: 'a/b' }).success, true);
  });
});

describe('names', () => {
  it('task ids are never all digits and never contain a colon (BullMQ rules)', () => {
    for (const id of [newTaskId(), idempotentTaskId('123'), idempotentTaskId('a:b')]) {
      assert.doesNotMatch(id, /^\d+$/);
      assert.doesNotMatch(id, /:/);
    }
    assert.equal(idempotentTaskId('same'), idempotentTaskId('same'));
  });

  it('container names are deterministic per (queue, job, attempt) and valid for Docker', () => {
    assert.equal(containerName('berth', 't-1', 1), containerName('berth', 't-1', 1));
    assert.notEqual(containerName('berth', 't-1', 1), containerName('berth', 't-1', 2));
    assert.notEqual(containerName('a', 't-1', 1), containerName('b', 't-1', 1));
    const odd = containerName('berth', 'gh/weird id:1'.repeat(30), 3);
    assert.match(odd, /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/);
    assert.ok(odd.length < 200);
  });
});
