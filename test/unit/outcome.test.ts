import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { interpretExit, type ExitFacts } from '../../src/consumer/outcome.js';
import { formatResultLine, parseResultLine } from '../../src/core/worker-protocol.js';

const base: ExitFacts = { exitCode: 0, oomKilled: false, memoryLimited: true, timedOut: false, timeoutMs: 60_000, cancelled: null };
const line = (exitCode: number, result: unknown = null, error?: string) => `some output\n${formatResultLine({ exitCode, durationMs: 5, result, ...(error ? { error } : {}) })}\n`;
const opts = { retryOnTimeout: false };

describe('exit-code mapping', () => {
  it('exit 0 completes with the worker result', () => {
    assert.deepEqual(interpretExit(base, line(0, { ok: 1 }), opts), { status: 'completed', value: { exitCode: 0, durationMs: 5, result: { ok: 1 } } });
  });
  it('other codes fail and retry', () => {
    assert.deepEqual(interpretExit({ ...base, exitCode: 3 }, line(3), opts), { status: 'failed', reason: 'exit code 3', retry: true });
  });
  it('78 means do not retry; 65 means invalid task', () => {
    assert.equal(interpretExit({ ...base, exitCode: 78 }, line(78), opts).status, 'failed');
    assert.deepEqual(interpretExit({ ...base, exitCode: 78 }, line(78, null, 'nope'), opts), { status: 'failed', reason: 'exit code 78 (do not retry): nope', retry: false });
    assert.deepEqual(interpretExit({ ...base, exitCode: 65 }, line(65, null, 'bad'), opts), { status: 'failed', reason: 'invalid task data: bad', retry: false });
  });
  it('OOM from the flag, or from 137 under a memory limit without a result line', () => {
    assert.match((interpretExit({ ...base, exitCode: 137, oomKilled: true }, '', opts) as { reason: string }).reason, /out of memory/);
    assert.match((interpretExit({ ...base, exitCode: 137 }, '', opts) as { reason: string }).reason, /out of memory/);
    assert.match((interpretExit({ ...base, exitCode: 137, memoryLimited: false }, '', opts) as { reason: string }).reason, /killed by SIGKILL/);
  });
  it('timeout and cancel win over the exit code', () => {
    assert.deepEqual(interpretExit({ ...base, exitCode: 143, timedOut: true }, '', opts), { status: 'failed', reason: 'timeout: ran longer than 60s and was stopped', retry: false });
    assert.equal((interpretExit({ ...base, exitCode: 143, timedOut: true }, '', { retryOnTimeout: true }) as { retry: boolean }).retry, true);
    assert.deepEqual(interpretExit({ ...base, exitCode: 143, cancelled: 'cancelled', timedOut: true }, '', opts), { status: 'failed', reason: 'cancelled', retry: false });
  });
  it('checkout failures say so: no access is final, a network error is retried', () => {
    assert.deepEqual(interpretExit({ ...base, exitCode: 78 }, line(78, null, 'checkout: repository octo/x not found or no access'), opts), { status: 'failed', reason: 'checkout failed: repository octo/x not found or no access', retry: false });
    assert.deepEqual(interpretExit({ ...base, exitCode: 75 }, line(75, null, 'checkout: HTTP 503 from the git server'), opts), { status: 'failed', reason: 'checkout failed: HTTP 503 from the git server', retry: true });
  });
  it('a cancel carries its reason', () => {
    assert.deepEqual(interpretExit({ ...base, exitCode: 143, cancelled: 'cancelled: superseded by a push to abc' }, '', opts), { status: 'failed', reason: 'cancelled: superseded by a push to abc', retry: false });
  });
  it('signals are named', () => {
    assert.match((interpretExit({ ...base, exitCode: 143 }, line(143), opts) as { reason: string }).reason, /SIGTERM/);
  });
});

describe('result line', () => {
  it('takes the last well-formed line and ignores forged or truncated ones', () => {
    const output = `${formatResultLine({ exitCode: 0, durationMs: 1, result: 'first' })}\nberth-result {"exitCode": 0, "trunc\n${formatResultLine({ exitCode: 0, durationMs: 2, result: 'last' })}\nberth-result not json\n`;
    assert.equal(parseResultLine(output)?.result, 'last');
    assert.equal(parseResultLine('nothing here'), null);
  });
});
