import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { interpretExit, type ExitFacts } from '../../src/consumer/outcome.js';
import { LaunchRefused } from '../../src/consumer/github-launch.js';
import { ImageMissing } from '../../src/consumer/launcher/launcher.js';
import { failureLabel } from '../../src/core/metrics.js';
import { formatResultLine } from '../../src/core/worker-protocol.js';

const facts: ExitFacts = { exitCode: 1, oomKilled: false, memoryLimited: true, timedOut: false, timeoutMs: 60_000, cancelled: null };
const reasonOf = (over: Partial<ExitFacts>, output = '') => {
  const outcome = interpretExit({ ...facts, ...over }, output, { retryOnTimeout: false });
  assert.equal(outcome.status, 'failed');
  return (outcome as { reason: string }).reason;
};
const line = (exitCode: number, error: string) => formatResultLine({ exitCode, durationMs: 1, result: null, error });

/** Each label, from the code path that really produces it (the reason string, then failureLabel). */
const PRODUCED: Record<string, string> = {
  timeout: failureLabel(reasonOf({ timedOut: true, exitCode: 143 })),
  oom: failureLabel(reasonOf({ exitCode: 137, oomKilled: true })),
  exit_code: failureLabel(reasonOf({ exitCode: 3 })),
  no_retry: failureLabel(reasonOf({ exitCode: 78 }, line(78, 'nope'))),
  invalid_task: failureLabel(reasonOf({ exitCode: 65 }, line(65, 'bad'))),
  signal: failureLabel(reasonOf({ exitCode: 143 })),
  cancelled: failureLabel(reasonOf({ cancelled: 'cancelled', exitCode: 143 })),
  checkout: failureLabel(reasonOf({ exitCode: 78 }, line(78, 'checkout: repository o/r not found or no access'))),
  engine_restart: failureLabel(reasonOf({ exitCode: 143, engineRestarted: true })),
  refused: failureLabel(new LaunchRefused('refused: implement tasks are not started from forks').message),
  image: failureLabel(new ImageMissing('berth:nope').message),
  swarm: failureLabel(reasonOf({ exitCode: -1, platformFailure: 'swarm: node n2 running the task was lost (it stopped answering the managers)' })),
  // Infrastructure errors are counted with their label directly (engine-health.ts, reporter.ts, run-attempt.ts).
  docker: 'docker',
  github: failureLabel('could not get a GitHub token for o/r (GitHub: HTTP 422: x)'),
};

it('every failure reason docs/operations.md lists is one the code produces, and the other way round', () => {
  for (const [label, produced] of Object.entries(PRODUCED)) assert.equal(produced, label, `${label} is produced as ${produced}`);
  const row = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8').split('\n').find((l) => l.startsWith('| `berth_retries_total`, `berth_failures_total{reason}`'))!;
  // Any label failureLabel can return, as a word of that row (it also returns 'stalled' and 'other').
  const labels = new Set([...Object.keys(PRODUCED), 'stalled', 'other']);
  const documented = (row.match(/[a-z_]+/g) ?? []).filter((word) => labels.has(word));
  assert.deepEqual(new Set(documented), new Set(Object.keys(PRODUCED)));
});
