/**
 * Named points in a launch where the crash-recovery tests SIGKILL the consumer. Inert unless
 * BERTH_TEST_CRASH_AT names the step, so production never pays more than a string compare.
 */
// "While running" needs no hook: the tests SIGKILL the consumer from outside while a container runs.
export type CrashPoint = 'after-dequeue' | 'after-create' | 'after-start' | 'after-exit' | 'after-record' | 'report-after-check-run' | 'report-after-comment';

export function crashPoint(step: CrashPoint, env: NodeJS.ProcessEnv = process.env): void {
  if (env.BERTH_TEST_CRASH_AT !== step) return;
  process.stderr.write(`berth: test crash point '${step}' reached, SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}
