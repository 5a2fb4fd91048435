import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DelayedError, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import pino from 'pino';
import { ABORT, runAttempt, type AttemptDeps } from '../../src/consumer/run-attempt.js';
import { EngineHealth } from '../../src/consumer/engine-health.js';
import { parseConfig } from '../../src/core/config.js';
import { FailureError, type Failure } from '../../src/core/failure.js';
import type { CancelFailure } from '../../src/core/cancel.js';
import type { TaskData } from '../../src/core/task.js';
import { formatResultLine } from '../../src/core/worker-protocol.js';
import { MemoryLauncher } from '../support/memory-launcher.js';

/**
 * The attempt runner against an in-memory launcher: each branch of an attempt's story, in
 * milliseconds. The same stories run against real Docker and a real swarm in test/e2e.
 */
const config = parseConfig({
  REDIS_URL: 'redis://127.0.0.1:6379',
  API_TOKEN: 'a'.repeat(32),
  WORKER_IMAGE: 'berth:test',
  AGENT_COMMAND_ECHO: 'node echo.mjs',
  EGRESS: 'none',
  TASK_TIMEOUT: '30s',
  WORKER_STOP_GRACE: '1s',
});
const data: TaskData = { kind: 'echo', repo: 'octo/widgets', source: 'api', submittedAt: Date.now(), submissionId: 's' } as TaskData;

/** The parts of a BullMQ job the runner uses, recording what was done to it. */
function fakeJob(over: { attemptsMade?: number; attempts?: number; data?: unknown } = {}) {
  const done: string[] = [];
  const job = {
    id: 't-1',
    data: over.data ?? data,
    attemptsMade: over.attemptsMade ?? 0,
    opts: { attempts: over.attempts ?? 3 },
    progress: 0 as unknown,
    async updateProgress(progress: unknown) {
      job.progress = progress;
    },
    async moveToWait() {
      done.push('moveToWait');
    },
    async moveToDelayed(at: number) {
      done.push(`moveToDelayed+${Math.round((at - Date.now()) / 1000)}s`);
    },
    async clearLogs() {},
    async log() {},
  };
  return { job: job as unknown as Job<TaskData> & { progress: { failure?: Failure; container?: { state: string } } }, done };
}

function depsFor(
  launcher: MemoryLauncher,
  over: Partial<AttemptDeps> & { owner?: string; fresh?: boolean; cancel?: CancelFailure | null } = {},
): AttemptDeps & { finished: string[] } {
  const finished: string[] = [];
  return {
    config,
    launcher,
    fence: { claim: async (_job, _attempt, engineId) => ({ owner: over.owner ?? engineId, fresh: over.fresh ?? true }) },
    cancels: { reason: async () => over.cancel ?? null },
    logger: pino({ level: 'silent' }),
    isClosing: () => false,
    onAttemptFinished: (_jobId, id) => finished.push(id),
    finished,
    ...over,
  };
}

const NAME = () => new MemoryLauncher().nameFor(config.QUEUE_NAME, 't-1', 1);
const resultLine = (exitCode: number, result: unknown = null, error?: string) =>
  `agent output\n${formatResultLine({ exitCode, durationMs: 3, result, ...(error ? { error } : {}) })}\n`;
/** The failure an attempt ended with, whichever error carries it. */
const failureOf = (job: { progress: { failure?: Failure } }) => job.progress.failure;

describe('an attempt, told against an in-memory engine', () => {
  it('launches one workload, watches it to its exit and returns its result', async () => {
    const launcher = new MemoryLauncher();
    const { job } = fakeJob();
    const deps = depsFor(launcher);
    const running = runAttempt(job, 'lock', undefined, deps);
    const facts = await launcher.untilRunning(NAME());
    launcher.exit(facts.id, 0, { output: resultLine(0, { summary: 'done' }) });
    assert.deepEqual((await running).result, { summary: 'done' });
    assert.equal(launcher.creates.length, 1);
    assert.deepEqual(deps.finished, [facts.id], 'handed over for removal once the outcome is recorded');
    assert.equal(job.progress.container?.state, 'exited');
  });

  it('adopts the workload a previous consumer left: no second create, nothing minted', async () => {
    const launcher = new MemoryLauncher();
    const left = launcher.leave({ name: NAME() });
    let minted = 0;
    const deps = depsFor(launcher, {
      fresh: false,
      prepareLaunch: async () => {
        minted++;
        return { env: {} };
      },
    });
    const running = runAttempt(fakeJob().job, 'lock', undefined, deps);
    await new Promise((resolve) => setImmediate(resolve));
    launcher.exit(left.id, 0, { output: resultLine(0, 'ok') });
    assert.equal((await running).result, 'ok');
    assert.equal(launcher.creates.length, 0);
    assert.equal(minted, 0);
  });

  it('a created workload a consumer died before starting is started by the adopter', async () => {
    const launcher = new MemoryLauncher();
    const left = launcher.leave({ name: NAME() }, 'pending');
    const running = runAttempt(fakeJob().job, 'lock', undefined, depsFor(launcher, { fresh: false }));
    await launcher.untilRunning(NAME());
    launcher.exit(left.id, 0, { output: resultLine(0) });
    await running;
    assert.equal(launcher.creates.length, 0);
  });

  it('an attempt another engine owns is handed back, untouched', async () => {
    const launcher = new MemoryLauncher();
    const { job, done } = fakeJob();
    await assert.rejects(runAttempt(job, 'lock', undefined, depsFor(launcher, { owner: 'engine-b', fresh: false })), DelayedError);
    assert.deepEqual(done, ['moveToDelayed+2s']);
    assert.deepEqual(
      launcher.calls.filter((c) => c !== 'inspect'),
      [],
      'no create, no stop',
    );
  });

  it('cancelled before it started: never created, fails as cancelled, not retried', async () => {
    const launcher = new MemoryLauncher();
    const { job } = fakeJob();
    await assert.rejects(
      runAttempt(job, 'lock', undefined, depsFor(launcher, { cancel: { cause: 'cancelled', detail: 'by alice' } })),
      (error: Error) => error instanceof UnrecoverableError && error.message === 'cancelled: by alice',
    );
    assert.equal(launcher.creates.length, 0);
    assert.deepEqual(failureOf(job), { cause: 'cancelled', detail: 'by alice' });
  });

  it('invalid task data fails at once with its cause', async () => {
    const { job } = fakeJob({ data: { kind: 'echo' } });
    await assert.rejects(runAttempt(job, 'lock', undefined, depsFor(new MemoryLauncher())), UnrecoverableError);
    assert.equal(failureOf(job)?.cause, 'invalid_task');
  });

  it('an engine unreachable at launch: the task waits, no attempt is counted', async () => {
    const launcher = new MemoryLauncher();
    launcher.dropCalls(1);
    const { job, done } = fakeJob();
    await assert.rejects(runAttempt(job, 'lock', undefined, depsFor(launcher)), DelayedError);
    assert.deepEqual(done, ['moveToDelayed+5s']);
  });

  it('an engine unreachable while it runs: the attempt keeps its workload and finishes', async () => {
    const launcher = new MemoryLauncher();
    const failed: string[] = [];
    const engine = new EngineHealth(async () => {}, pino({ level: 'silent' }));
    engine.failed = (operation: string) => void failed.push(operation);
    const running = runAttempt(fakeJob().job, 'lock', undefined, depsFor(launcher, { engine }));
    const facts = await launcher.untilRunning(NAME());
    launcher.dropCalls(2);
    launcher.exit(facts.id, 0, { output: resultLine(0, 'survived') });
    assert.equal((await running).result, 'survived');
    assert.ok(failed.length >= 1, `the outage was noticed: ${failed.join(', ')}`);
    assert.equal(launcher.creates.length, 1, 'one workload throughout');
  });

  it('the deadline stops it; it fails as timeout, not retried by default', async () => {
    const launcher = new MemoryLauncher();
    const { job } = fakeJob();
    const deps = depsFor(launcher, { config: { ...config, TASK_TIMEOUT: 50 } });
    await assert.rejects(runAttempt(job, 'lock', undefined, deps), UnrecoverableError);
    assert.deepEqual(failureOf(job), { cause: 'timeout', limitSeconds: 0 });
    assert.ok(launcher.calls.includes('stop'));
  });

  it('an OOM kill fails as oom and is retried', async () => {
    const launcher = new MemoryLauncher();
    const { job } = fakeJob();
    const running = runAttempt(job, 'lock', undefined, depsFor(launcher));
    launcher.exit((await launcher.untilRunning(NAME())).id, 137, { oomKilled: true });
    await assert.rejects(running, (error: Error) => error instanceof FailureError && error.failure.cause === 'oom');
    assert.equal(failureOf(job)?.cause, 'oom');
  });

  it("a node lost under it fails as platform with the platform's words, and is retried", async () => {
    const launcher = new MemoryLauncher();
    const { job } = fakeJob();
    const running = runAttempt(job, 'lock', undefined, depsFor(launcher));
    launcher.exit((await launcher.untilRunning(NAME())).id, -1, { failure: 'swarm: node n2 running the task was lost (it stopped answering the managers)' });
    await assert.rejects(running, FailureError);
    assert.deepEqual(failureOf(job), { cause: 'platform', detail: 'swarm: node n2 running the task was lost (it stopped answering the managers)' });
  });

  it('a planned shutdown hands the job back and leaves the workload running', async () => {
    const launcher = new MemoryLauncher();
    const { job, done } = fakeJob();
    const controller = new AbortController();
    const running = runAttempt(job, 'lock', controller.signal, depsFor(launcher));
    const facts = await launcher.untilRunning(NAME());
    controller.abort(ABORT.shutdown);
    await assert.rejects(running, WaitingError);
    assert.deepEqual(done, ['moveToWait']);
    assert.equal(launcher.facts(facts.id)?.state, 'running');
    assert.ok(!launcher.calls.includes('stop'));
  });

  it('a cancel while it runs stops it and fails it as cancelled', async () => {
    const launcher = new MemoryLauncher();
    const { job } = fakeJob();
    const controller = new AbortController();
    let cancel: CancelFailure | null = null;
    const running = runAttempt(job, 'lock', controller.signal, { ...depsFor(launcher), cancels: { reason: async () => cancel } });
    const facts = await launcher.untilRunning(NAME());
    cancel = { cause: 'superseded', detail: 'superseded by a push to abc' };
    controller.abort(ABORT.cancel);
    await assert.rejects(running, (error: Error) => error instanceof UnrecoverableError && error.message === 'cancelled: superseded by a push to abc');
    assert.equal(launcher.facts(facts.id)?.exitCode, 143, 'stopped');
    assert.equal(failureOf(job)?.cause, 'superseded');
  });
});
