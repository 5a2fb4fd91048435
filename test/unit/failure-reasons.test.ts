import { unapprovedFailure } from '../../src/core/approval.js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { interpretExit, type ExitFacts, type Outcome } from '../../src/consumer/outcome.js';
import { LaunchRefused } from '../../src/consumer/github-launch.js';
import { ImageMissing } from '../../src/consumer/launcher/launcher.js';
import { FAILURE_CAUSES, failureInWords, failureReason, untypedFailure, type Failure, type FailureCause } from '../../src/core/failure.js';
import { formatResultLine } from '../../src/core/worker-protocol.js';

const facts: ExitFacts = { exitCode: 1, oomKilled: false, memoryLimited: true, timedOut: false, timeoutMs: 60_000, cancelled: null };
const failureOf = (over: Partial<ExitFacts>, output = ''): Failure => {
  const outcome = interpretExit({ ...facts, ...over }, output, { retryOnTimeout: false });
  assert.equal(outcome.status, 'failed');
  return (outcome as Extract<Outcome, { status: 'failed' }>).failure;
};
const line = (exitCode: number, error: string) => formatResultLine({ exitCode, durationMs: 1, result: null, error });

/** Each cause, from the code path that really produces it. */
const PRODUCED: Record<FailureCause, Failure> = {
  timeout: failureOf({ timedOut: true, exitCode: 143 }),
  oom: failureOf({ exitCode: 137, oomKilled: true }),
  exit_code: failureOf({ exitCode: 3 }),
  no_retry: failureOf({ exitCode: 78 }, line(78, 'nope')),
  invalid_task: failureOf({ exitCode: 65 }, line(65, 'bad')),
  signal: failureOf({ exitCode: 143 }),
  cancelled: failureOf({ cancelled: { cause: 'cancelled' }, exitCode: 143 }),
  superseded: failureOf({ cancelled: { cause: 'superseded', detail: 'superseded by a push to abc' }, exitCode: 143 }),
  checkout: failureOf({ exitCode: 78 }, line(78, 'checkout: repository o/r not found or no access')),
  engine_restart: failureOf({ exitCode: 143, engineRestarted: true }),
  refused: new LaunchRefused('refused: implement tasks are not started from forks').failure,
  github: new LaunchRefused('could not get a GitHub token for o/r (GitHub: HTTP 422: x)', 'github').failure,
  image: new ImageMissing('berth:nope').failure,
  platform: failureOf({ exitCode: -1, platformFailure: 'swarm: node n2 running the task was lost (it stopped answering the managers)' }),
  budget: failureOf({ exitCode: 1, budgetExceeded: 'spent 1.2k tokens of a budget of 1k' }),
  unapproved: unapprovedFailure({ state: 'pending', requestedBy: 'stranger', reason: 'stranger has read permission', minimum: 'write', expiresAt: 0 }),
  stalled: untypedFailure('job stalled more than allowable limit'),
  other: untypedFailure('something BullMQ said'),
};

describe('failure causes', () => {
  it('every cause in the table is produced by the code path that should produce it', () => {
    for (const [cause, failure] of Object.entries(PRODUCED)) assert.equal(failure.cause, cause);
    assert.deepEqual(Object.keys(PRODUCED).sort(), Object.keys(FAILURE_CAUSES).sort());
  });

  it("BullMQ's reason keeps the texts the board and logs have always shown", () => {
    assert.equal(failureReason(PRODUCED.timeout), 'timeout: ran longer than 60s and was stopped');
    assert.equal(failureReason(PRODUCED.exit_code), 'exit code 3');
    assert.equal(failureReason(PRODUCED.no_retry), 'exit code 78 (do not retry): nope');
    assert.equal(failureReason(PRODUCED.signal), 'killed by SIGTERM (exit code 143)');
    assert.equal(failureReason(PRODUCED.superseded), 'cancelled: superseded by a push to abc');
    assert.equal(failureReason(PRODUCED.checkout), 'checkout failed: repository o/r not found or no access');
    assert.equal(failureReason(PRODUCED.refused), 'refused: implement tasks are not started from forks');
  });

  it('in plain words for people on GitHub', () => {
    assert.equal(failureInWords({ cause: 'timeout', limitSeconds: 2700 }), 'timed out after 45 min');
    assert.equal(failureInWords(PRODUCED.exit_code), 'the agent exited with code 3');
    assert.equal(failureInWords(PRODUCED.no_retry), 'the agent exited with code 78: nope');
    assert.match(failureInWords(PRODUCED.oom), /^ran out of memory/);
    assert.equal(failureInWords(PRODUCED.superseded), 'superseded by a push to abc');
    assert.equal(failureInWords(PRODUCED.cancelled), 'cancelled');
    assert.equal(failureInWords(PRODUCED.checkout), 'checkout failed: repository o/r not found or no access');
  });

  it('docs/operations.md lists exactly the causes as the values of berth_failures_total{reason}, besides docker and github errors', () => {
    const row = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('| `berth_retries_total`, `berth_failures_total{reason}`'))!;
    const documented = new Set([...row.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!).filter((word) => !word.startsWith('berth_') && word !== 'reason'));
    assert.deepEqual(documented, new Set([...Object.keys(FAILURE_CAUSES), 'docker']));
  });
});
