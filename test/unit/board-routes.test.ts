import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { appRoutes } from '@bull-board/api/dist/routes.js';
import { BOARD_PREFIX, refusedBoardAction } from '../../src/api/board.js';

describe('board allow-list (decided on the matched route)', () => {
  it('permits views and the operator actions, refuses every other board route', () => {
    const permitted: string[] = [];
    for (const route of appRoutes.api) {
      for (const method of ([] as string[]).concat(route.method)) {
        for (const path of ([] as string[]).concat(route.route))
          if (refusedBoardAction(method, `${BOARD_PREFIX}${path}`) === null && method !== 'get') permitted.push(`${method.toUpperCase()} ${path}`);
      }
    }
    assert.deepEqual(permitted.sort(), [
      'PUT /api/queues/:queueName/:jobId/clean',
      'PUT /api/queues/:queueName/:jobId/promote',
      'PUT /api/queues/:queueName/:jobId/retry',
      'PUT /api/queues/:queueName/clean/:queueStatus',
      'PUT /api/queues/:queueName/pause',
      'PUT /api/queues/:queueName/promote',
      'PUT /api/queues/:queueName/resume',
      'PUT /api/queues/:queueName/retry/:queueStatus',
      'PUT /api/queues/pause',
      'PUT /api/queues/resume',
    ]);
    for (const [method, path] of [
      ['POST', '/api/queues/:queueName/add'],
      ['PATCH', '/api/queues/:queueName/:jobId/update-data'],
      ['PATCH', '/api/queues/:queueName/:jobId/priority'],
      ['PUT', '/api/queues/:queueName/obliterate'],
      ['PUT', '/api/queues/:queueName/empty'],
      ['PUT', '/api/queues/:queueName/concurrency'],
      ['PATCH', '/api/queues/:queueName/job-schedulers/:schedulerId'],
    ] as const)
      assert.match(refusedBoardAction(method, `${BOARD_PREFIX}${path}`) ?? '', /berth permits/, `${method} ${path}`);
  });

  it('a write that matched no route, or a route outside the board, is refused; a GET 404 is left to the router', () => {
    assert.ok(refusedBoardAction('POST', undefined));
    assert.ok(refusedBoardAction('put', '/api/tasks'));
    assert.equal(refusedBoardAction('GET', undefined), null);
    assert.equal(refusedBoardAction('get', `${BOARD_PREFIX}/api/queues/:queueName/:jobId/logs`), null);
  });
});
