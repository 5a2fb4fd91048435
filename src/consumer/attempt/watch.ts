import { WaitingError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { LABEL } from '../../core/labels.js';
import type { Failure } from '../../core/failure.js';
import type { Workload, WorkloadFacts } from '../launcher/launcher.js';
import { ABORT, type AttemptDeps } from './deps.js';

/** How often a running attempt with a model budget asks whether the proxy found it spent. */
const BUDGET_POLL_MS = 5_000;

export interface Watched {
  /** The workload's facts once it has exited. */
  facts: WorkloadFacts;
  timeoutMs: number;
  /** When the deadline was: counted from the workload's own start. */
  deadline: number;
  timedOut: boolean;
  /** The cancel that stopped it; null when none did. */
  cancelled: Failure | null;
}

export interface WatchContext {
  job: Job;
  token: string | undefined;
  signal: AbortSignal | undefined;
  deps: AttemptDeps;
  log: Logger;
  /** Told every `everyMs` while the workload runs (live progress on GitHub). */
  tick?: { everyMs: number; run: () => void };
  /** With a model budget: whether the proxy found it spent (then the workload is stopped, after its grace). */
  overBudget?: (facts: WorkloadFacts) => Promise<boolean>;
  /** Told once it runs: reports and streaming begin. Returns how to end the streaming (`exited`: its output is complete). */
  onRunning: (facts: WorkloadFacts) => Promise<(exited: boolean) => Promise<void>>;
}

/**
 * From start to exit: starts the workload (or finds it running), holds its deadline, and stops it
 * at the deadline or on a cancel. A planned shutdown hands the job back and leaves the workload
 * running for the next consumer to adopt. The workload given is already `resilient`: while the
 * engine is unreachable the attempt keeps its job, its workload and its deadline.
 */
export async function watchUntilExit(workload: Workload, { job, token, signal, deps, log, onRunning, overBudget, tick }: WatchContext): Promise<Watched> {
  const grace = deps.config.WORKER_STOP_GRACE;
  let timeoutMs = deps.config.TASK_TIMEOUT;
  let deadline = Number.POSITIVE_INFINITY;
  let timedOut = false;
  let cancelled: Failure | null = null;
  let timer: NodeJS.Timeout | undefined;
  let budgetWatch: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let stopStreaming: ((exited: boolean) => Promise<void>) | null = null;
  let exited = false;
  try {
    const running = await workload.untilRunning(signal);
    stopStreaming = await onRunning(running);
    timeoutMs = Number(running.labels[LABEL.timeoutMs]) || timeoutMs;
    // Counted from the workload's own start, so a task a swarm node is still pulling or scheduling
    // keeps its whole time, and a restarted consumer keeps the original deadline.
    deadline = (running.startedAt ?? Date.now()) + timeoutMs;
    timer = setTimeout(
      () => {
        timedOut = true;
        log.warn({ timeoutMs }, 'deadline passed, stopping the workload');
        workload.stop(grace).catch((error) => log.error({ err: error }, 'stop after timeout failed'));
      },
      Math.max(0, deadline - Date.now()),
    );
    if (tick) ticker = setInterval(tick.run, tick.everyMs);
    if (overBudget) {
      budgetWatch = setInterval(() => {
        void overBudget(running)
          .then((spent) => {
            if (!spent || !budgetWatch) return;
            clearInterval(budgetWatch);
            budgetWatch = undefined;
            log.warn('model budget spent, stopping the workload');
            return workload.stop(grace);
          })
          .catch((error) => log.warn({ err: error }, 'budget check failed'));
      }, BUDGET_POLL_MS);
    }
    const facts = await workload.untilExited(signal);
    exited = true;
    return { facts, timeoutMs, deadline, ...settledTimeout(facts, deadline, timedOut), cancelled };
  } catch (error) {
    if (!signal?.aborted) throw error;
    clearTimeout(timer);
    if (signal.reason === ABORT.shutdown) {
      // Planned shutdown: the workload keeps running; the job goes back to wait without counting a
      // stall, and the next consumer adopts the workload by name.
      log.info('shutting down: handing job back, workload left running');
      await job.moveToWait(token);
      throw new WaitingError();
    }
    cancelled = (await deps.cancels.reason(job.id!, job.attemptsMade)) ?? { cause: 'cancelled' };
    await workload.stop(grace);
    const facts = await workload.untilExited();
    exited = true;
    return { facts, timeoutMs, deadline, timedOut: false, cancelled };
  } finally {
    clearTimeout(timer);
    clearInterval(budgetWatch);
    budgetWatch = undefined;
    clearInterval(ticker);
    // Only an exited workload's stream ends by itself; a handed-back one is still running.
    await stopStreaming?.(exited);
  }
}

/** A workload stopped at its deadline by a consumer that then died looks like any other exit: its own timestamps tell. */
function settledTimeout(facts: WorkloadFacts, deadline: number, timedOut: boolean): { timedOut: boolean } {
  return { timedOut: timedOut || (facts.finishedAt !== null && facts.finishedAt >= deadline) };
}
