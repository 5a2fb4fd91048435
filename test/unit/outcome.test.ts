import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capOutcome, interpretExit, type ExitFacts, type Outcome } from '../../src/consumer/outcome.js';
import { formatResultLine, parseResultLine } from '../../src/core/worker-protocol.js';
import { failureReason } from '../../src/core/failure.js';

const base: ExitFacts = { exitCode: 0, oomKilled: false, memoryLimited: true, timedOut: false, timeoutMs: 60_000, cancelled: null };
const line = (exitCode: number, result: unknown = null, error?: string) =>
  `some output\n${formatResultLine({ exitCode, durationMs: 5, result, ...(error ? { error } : {}) })}\n`;
const opts = { retryOnTimeout: false };
/** A failed outcome as BullMQ records it: the reason text, and whether it is retried. */
const failed = (outcome: Outcome) => {
  assert.equal(outcome.status, 'failed');
  const { failure, retry } = outcome as Extract<Outcome, { status: 'failed' }>;
  return { status: 'failed', reason: failureReason(failure), retry };
};

describe('exit-code mapping', () => {
  it('exit 0 completes with the worker result', () => {
    assert.deepEqual(interpretExit(base, line(0, { ok: 1 }), opts), { status: 'completed', value: { exitCode: 0, durationMs: 5, result: { ok: 1 } } });
  });
  it('other codes fail and retry', () => {
    assert.deepEqual(failed(interpretExit({ ...base, exitCode: 3 }, line(3), opts)), { status: 'failed', reason: 'exit code 3', retry: true });
  });
  it('78 means do not retry; 65 means invalid task', () => {
    assert.equal(interpretExit({ ...base, exitCode: 78 }, line(78), opts).status, 'failed');
    assert.deepEqual(failed(interpretExit({ ...base, exitCode: 78 }, line(78, null, 'nope'), opts)), {
      status: 'failed',
      reason: 'exit code 78 (do not retry): nope',
      retry: false,
    });
    assert.deepEqual(failed(interpretExit({ ...base, exitCode: 65 }, line(65, null, 'bad'), opts)), {
      status: 'failed',
      reason: 'invalid task data: bad',
      retry: false,
    });
  });
  it('OOM from the flag, or from 137 under a memory limit without a result line', () => {
    assert.match(failed(interpretExit({ ...base, exitCode: 137, oomKilled: true }, '', opts)).reason, /out of memory/);
    assert.match(failed(interpretExit({ ...base, exitCode: 137 }, '', opts)).reason, /out of memory/);
    assert.match(failed(interpretExit({ ...base, exitCode: 137, memoryLimited: false }, '', opts)).reason, /killed by SIGKILL/);
  });
  it('timeout and cancel win over the exit code', () => {
    assert.deepEqual(failed(interpretExit({ ...base, exitCode: 143, timedOut: true }, '', opts)), {
      status: 'failed',
      reason: 'timeout: ran longer than 60s and was stopped',
      retry: false,
    });
    assert.equal((interpretExit({ ...base, exitCode: 143, timedOut: true }, '', { retryOnTimeout: true }) as { retry: boolean }).retry, true);
    assert.deepEqual(failed(interpretExit({ ...base, exitCode: 143, cancelled: { cause: 'cancelled' }, timedOut: true }, '', opts)), {
      status: 'failed',
      reason: 'cancelled',
      retry: false,
    });
  });
  it('checkout failures say so: no access is final, a network error is retried', () => {
    assert.deepEqual(failed(interpretExit({ ...base, exitCode: 78 }, line(78, null, 'checkout: repository octo/x not found or no access'), opts)), {
      status: 'failed',
      reason: 'checkout failed: repository octo/x not found or no access',
      retry: false,
    });
    assert.deepEqual(failed(interpretExit({ ...base, exitCode: 75 }, line(75, null, 'checkout: HTTP 503 from the git server'), opts)), {
      status: 'failed',
      reason: 'checkout failed: HTTP 503 from the git server',
      retry: true,
    });
  });
  it('a cancel carries its cause and reason', () => {
    const superseded = interpretExit({ ...base, exitCode: 143, cancelled: { cause: 'superseded', detail: 'superseded by a push to abc' } }, '', opts);
    assert.deepEqual(failed(superseded), { status: 'failed', reason: 'cancelled: superseded by a push to abc', retry: false });
    assert.equal((superseded as Extract<Outcome, { status: 'failed' }>).failure.cause, 'superseded');
  });
  it('signals are named', () => {
    assert.match(failed(interpretExit({ ...base, exitCode: 143 }, line(143), opts)).reason, /SIGTERM/);
  });
});

describe('result line', () => {
  it('takes the last well-formed line and ignores forged or truncated ones', () => {
    const output = `${formatResultLine({ exitCode: 0, durationMs: 1, result: 'first' })}\nberth-result {"exitCode": 0, "trunc\n${formatResultLine({ exitCode: 0, durationMs: 2, result: 'last' })}\nberth-result not json\n`;
    assert.equal(parseResultLine(output)?.result, 'last');
    assert.equal(parseResultLine('nothing here'), null);
  });
});

describe('what an attempt keeps in Redis', () => {
  const completed = (result: unknown, error?: string) => ({
    status: 'completed' as const,
    value: { exitCode: 0, durationMs: 5, result, ...(error ? { error } : {}) },
  });
  it('a result within the cap is kept as it is', () => {
    const small = completed({ title: 'ok', summary: 'fine', files: ['a'] });
    assert.deepEqual(capOutcome(small, 1_024), small);
  });
  it('a bigger result keeps its title and the start of its summary, marked truncated with its size', () => {
    const big = { title: 'Reviewed', summary: `é${'s'.repeat(100_000)}`, blob: 'b'.repeat(100_000) };
    const capped = capOutcome(completed(big), 4_096);
    assert.equal(capped.status, 'completed');
    const result = (capped as { value: { result: { truncated: boolean; bytes: number; title: string; summary: string } } }).value.result;
    assert.equal(result.truncated, true);
    assert.equal(result.bytes, Buffer.byteLength(JSON.stringify(big)));
    assert.equal(result.title, 'Reviewed');
    assert.ok(result.summary.startsWith('és'));
    assert.ok(Buffer.byteLength(JSON.stringify((capped as { value: unknown }).value)) <= 4_096, 'the whole value fits');
  });
  it('a result that is not an object is cut to the marker alone', () => {
    const capped = capOutcome(completed('x'.repeat(10_000)), 1_000) as { value: { result: unknown } };
    assert.deepEqual(capped.value.result, { truncated: true, bytes: 10_002 });
  });
  it('a long failure detail is cut, and says so; a short one is untouched', () => {
    const long: Outcome = { status: 'failed', failure: { cause: 'exit_code', exitCode: 1, detail: 'e'.repeat(10_000) }, retry: true };
    const capped = failed(capOutcome(long, 2_000));
    assert.ok(Buffer.byteLength(capped.reason) <= 2_000);
    assert.match(capped.reason, /^exit code 1: e+ … \[cut at 2000 bytes\]$/);
    assert.equal(capped.retry, true);
    const short: Outcome = { status: 'failed', failure: { cause: 'exit_code', exitCode: 1 }, retry: true };
    assert.deepEqual(capOutcome(short, 2_000), short);
  });
});
