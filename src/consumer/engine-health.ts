import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { BerthMetrics } from '../core/metrics.js';
import type { Workload } from './launcher/launcher.js';

/** The engine errors that mean "not reachable right now", not "your request is wrong". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

/**
 * True for a socket that is gone or reset, a connection refused, and the 5xx a restarting engine
 * answers with. `readOnly`: a 500 from inspect, wait or logs is the engine's trouble; from create or
 * start it may be the request's (an OCI runtime error), so it is not retried there.
 */
export function isEngineUnavailable(error: unknown, readOnly = true): boolean {
  const e = error as { code?: string; statusCode?: number; message?: string } | null;
  if (!e) return false;
  if (e.code && UNREACHABLE_CODES.has(e.code)) return true;
  if (/socket hang up|connect EACCES|other side closed/i.test(e.message ?? '')) return true;
  const status = e.statusCode;
  if (status === 502 || status === 503 || status === 504) return true;
  return readOnly && status === 500 && /connection|daemon|context deadline|timeout/i.test(e.message ?? '');
}

interface Outage {
  from: number;
  to: number | null;
}

/**
 * Watches the engine with a ping every `intervalMs` and remembers when it was unreachable, so an
 * attempt whose container died in such a window can say the engine restarted (with live-restore off
 * the engine stops its containers when it stops) instead of reporting a bare exit code.
 */
export class EngineHealth {
  private readonly outages: Outage[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ping: () => Promise<void>,
    private readonly log: Logger,
    private readonly metrics?: BerthMetrics,
    private readonly intervalMs = 1_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get down(): boolean {
    return this.outages.at(-1)?.to === null;
  }

  /** Report an unreachable engine seen by any call (not only the ping). */
  failed(operation: string): void {
    this.metrics?.engineErrors.inc({ operation });
    this.metrics?.failures.inc({ reason: 'docker' });
    if (this.down) return;
    this.outages.push({ from: Date.now(), to: null });
    if (this.outages.length > 20) this.outages.shift();
    this.log.warn({ operation }, 'Docker engine unreachable; running containers are kept, calls are retried');
  }

  recovered(): void {
    const last = this.outages.at(-1);
    if (!last || last.to !== null) return;
    last.to = Date.now();
    this.log.info({ downMs: last.to - last.from }, 'Docker engine reachable again');
  }

  /** Was the engine unreachable around `at` (give or take `slackMs`)? */
  wasDownAround(at: number, slackMs = 3_000): boolean {
    return this.outages.some((o) => at >= o.from - slackMs && at <= (o.to ?? Date.now()) + slackMs);
  }

  /**
   * Does the engine become unreachable within `ms`? An engine that shuts down stops its containers
   * first and closes its API after, so a container killed that way is seen exiting while the engine
   * still answers; a few seconds later it does not.
   */
  async goesDownWithin(ms: number): Promise<boolean> {
    if (this.down) return true;
    for (const deadline = Date.now() + ms; Date.now() < deadline; ) {
      try {
        await this.ping();
      } catch (error) {
        if (isEngineUnavailable(error)) {
          this.failed('ping');
          return true;
        }
      }
      await delay(250);
    }
    return false;
  }

  private async check(): Promise<void> {
    try {
      await this.ping();
      this.recovered();
    } catch (error) {
      if (isEngineUnavailable(error)) this.failed('ping');
    }
  }
}

/**
 * Runs an engine call until it succeeds, retrying only while the engine is unreachable (backoff
 * from 500 ms to 10 s). Any other error, or `signal` firing, ends it.
 */
export async function retryWhileUnreachable<T>(
  operation: string,
  call: () => Promise<T>,
  health: EngineHealth | undefined,
  signal?: AbortSignal,
  readOnly = true,
): Promise<T> {
  for (let wait = 500; ; wait = Math.min(wait * 2, 10_000)) {
    try {
      const result = await call();
      health?.recovered();
      return result;
    } catch (error) {
      if (signal?.aborted || !isEngineUnavailable(error, readOnly)) throw error;
      health?.failed(operation);
      // An abort ends the pause; the check below then throws its reason.
      await delay(wait, undefined, { signal }).catch(() => {});
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
    }
  }
}

/**
 * The workload with every call retried while its engine cannot be reached: the one place the
 * outage policy is applied, for every backend alike. While the engine is down the attempt keeps
 * its job, its workload and its deadline. Only the waits end early, when `signal` fires.
 */
export function resilient(workload: Workload, health: EngineHealth | undefined): Workload {
  const retried = <T>(operation: string, call: () => Promise<T>, signal?: AbortSignal, readOnly = true) =>
    retryWhileUnreachable(operation, call, health, signal, readOnly);
  return {
    id: workload.id,
    inspect: () => retried('inspect', () => workload.inspect()),
    // It may start the workload: a 500 there can be the request's (an OCI runtime error), not the engine's.
    untilRunning: (signal) => retried('start', () => workload.untilRunning(signal), signal, false),
    untilExited: (signal) => retried('wait', () => workload.untilExited(signal), signal),
    follow: () => workload.follow(),
    tail: (lines) => retried('logs', () => workload.tail(lines)),
    stop: (graceMs) => retried('stop', () => workload.stop(graceMs)),
    remove: () => retried('remove', () => workload.remove()),
  };
}
