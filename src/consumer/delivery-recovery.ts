import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { berthKeys, GITHUB_REDELIVERY_WINDOW_MS } from '../core/keys.js';
import type { BerthMetrics } from '../core/metrics.js';
import type { GithubApp } from '../github/app.js';
import { describeGithubError } from '../github/errors.js';

/** After asking for a delivery again, do not ask again for this long (the redelivery shows in the list). */
const REQUEST_MARK_MS = 30 * 60_000;

/** One delivery attempt, as `GET /app/hook/deliveries` lists it (the fields berth reads). */
export interface HookDelivery {
  id: number;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  status: string;
  status_code: number;
  event: string;
  action: string | null;
}

export interface RecoveryReport {
  requested: string[];
  tooOld: string[];
}

/**
 * GitHub does not redeliver a webhook delivery that failed (berth down, a 5xx, slower than 10 s).
 * This finds them: it lists the App's recent deliveries (`GET /app/hook/deliveries`), groups them by
 * guid, and for each one berth never gave a final answer — it failed, or it came while berth was
 * watching and berth has no record of answering it (a crash mid-request) — asks GitHub to deliver it
 * again (`POST /app/hook/deliveries/{id}/attempts`).
 * The redelivery comes through the normal verified route, whose job id (the guid) makes it one task
 * at most. Deliveries older than GitHub's redelivery window are reported, not retried.
 */
export class DeliveryRecovery {
  private readonly keys;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();
  private busy = false;

  constructor(
    private readonly app: GithubApp,
    private readonly redis: Redis,
    queue: string,
    private readonly options: {
      intervalMs: number;
      logger: Logger;
      metrics?: BerthMetrics;
      windowMs?: number;
      /** Does the task a delivery became still exist (its job, or the tombstone of a cancel)? */
      taskExists: (taskId: string) => Promise<boolean>;
    },
  ) {
    this.keys = berthKeys(queue);
  }

  start(): void {
    const run = () => {
      if (this.busy) return;
      this.busy = true;
      this.running = this.pass()
        .catch((error) =>
          this.options.logger.warn({ err: error }, `looking for missed webhook deliveries failed; the next pass retries (${describeGithubError(error)})`),
        )
        .finally(() => (this.busy = false));
    };
    run();
    this.timer = setInterval(run, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  async pass(now = Date.now()): Promise<RecoveryReport> {
    const window = this.options.windowMs ?? GITHUB_REDELIVERY_WINDOW_MS;
    // Since when berth records every verified delivery: "never recorded" means something only after it.
    await this.redis.set(this.keys.deliveriesSeenSince, String(now), 'NX');
    const watchingSince = Number(await this.redis.get(this.keys.deliveriesSeenSince));
    const byGuid = new Map<string, HookDelivery[]>();
    const scanFrom = now - window - 24 * 3600_000; // a day past the window, to report what is too old
    let cursor: string | undefined;
    scan: for (let page = 0; page < 100; page++) {
      const response = await this.app.asApp('GET /app/hook/deliveries', { per_page: 100, ...(cursor ? { cursor } : {}) });
      for (const delivery of response.data as HookDelivery[]) {
        if (Date.parse(delivery.delivered_at) < scanFrom) break scan;
        byGuid.set(delivery.guid, [...(byGuid.get(delivery.guid) ?? []), delivery]);
      }
      cursor = /[?&]cursor=([^&>]+)[^>]*>;\s*rel="next"/.exec(String(response.headers.link ?? ''))?.[1];
      if (!cursor) break;
    }

    const report: RecoveryReport = { requested: [], tooOld: [] };
    for (const [guid, attempts] of byGuid) {
      // berth records a delivery when it answers it (an ignore, a 400) or as it becomes a task (whose
      // job then proves it): one it recorded is done with, whatever GitHub's log says; one it did not
      // record is missed if it came while berth was watching, or if it never got a 2xx before that.
      const record = await this.redis.get(this.keys.deliverySeen(guid));
      // `task`: recorded as it became a task, before the add; the task's own job proves the add.
      if (record !== null && (record !== 'task' || (await this.options.taskExists(`gh-${guid}`)))) continue;
      const received = attempts.some((a) => a.status_code >= 200 && a.status_code < 300);
      const first = Math.min(...attempts.map((a) => Date.parse(a.delivered_at)));
      if (received && first < watchingSince) continue;
      if (first < now - window) {
        report.tooOld.push(guid);
        if ((await this.redis.set(this.keys.deliveryRedelivery(guid), 'too-old', 'PX', window, 'NX')) === 'OK') {
          this.options.metrics?.deliveriesLost.inc();
          this.options.logger.error(
            { delivery: guid, event: attempts[0]!.event, deliveredAt: new Date(first).toISOString() },
            'a webhook delivery failed and is older than GitHub redelivers; it is lost (replay the task by hand if it mattered)',
          );
        }
        continue;
      }
      // One request per missed delivery per REQUEST_MARK_MS, across every consumer.
      if ((await this.redis.set(this.keys.deliveryRedelivery(guid), 'requested', 'PX', REQUEST_MARK_MS, 'NX')) !== 'OK') continue;
      const latest = attempts.reduce((a, b) => (Date.parse(a.delivered_at) >= Date.parse(b.delivered_at) ? a : b));
      await this.app.asApp('POST /app/hook/deliveries/{delivery_id}/attempts', { delivery_id: latest.id });
      this.options.metrics?.redeliveries.inc();
      report.requested.push(guid);
      this.options.logger.info(
        { delivery: guid, event: latest.event, statusCode: latest.status_code },
        'asked GitHub to redeliver a webhook delivery berth missed',
      );
    }
    return report;
  }
}
