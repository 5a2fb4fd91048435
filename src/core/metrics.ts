import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RedisMemory } from './redis-memory.js';

/**
 * berth's Prometheus metrics, in a registry of their own (no globals) that the consumer writes to
 * and the API serves at /metrics. Gauges that mirror Redis or Docker are collected at scrape time.
 */
export class BerthMetrics {
  readonly registry = new Registry();
  readonly launches = new Counter({ name: 'berth_launches_total', help: 'Containers created for an attempt', registers: [this.registry] });
  readonly adoptions = new Counter({
    name: 'berth_adoptions_total',
    help: 'Existing containers adopted after a restart, stall or takeover',
    registers: [this.registry],
  });
  readonly retries = new Counter({ name: 'berth_retries_total', help: 'Failed attempts that will be retried', registers: [this.registry] });
  readonly failures = new Counter({
    name: 'berth_failures_total',
    help: 'Failed attempts by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly engineErrors = new Counter({
    name: 'berth_engine_errors_total',
    help: 'Docker engine calls that failed because the engine was unreachable, by operation',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });
  readonly githubErrors = new Counter({
    name: 'berth_github_errors_total',
    help: 'Failed GitHub calls by operation and kind (rate-limited, transient, permanent, not-found)',
    labelNames: ['operation', 'kind'] as const,
    registers: [this.registry],
  });
  readonly scheduleTicks = new Counter({
    name: 'berth_schedule_ticks_total',
    help: 'Schedule ticks by schedule and outcome (queued; skipped: running, paused, missed, refused)',
    labelNames: ['schedule', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly redeliveries = new Counter({
    name: 'berth_webhook_redeliveries_total',
    help: 'Missed webhook deliveries berth asked GitHub to redeliver',
    registers: [this.registry],
  });
  readonly deliveriesLost = new Counter({
    name: 'berth_webhook_deliveries_lost_total',
    help: 'Failed webhook deliveries older than GitHub redelivers',
    registers: [this.registry],
  });
  readonly redisFull = new Counter({
    name: 'berth_redis_full_total',
    help: 'Requests refused because Redis reached its maxmemory (nothing was written)',
    registers: [this.registry],
  });
  readonly egressRequests = new Counter({
    name: 'berth_egress_requests_total',
    help: "Workers' connections and requests through the egress proxy, by decision (counted when their attempt ends)",
    labelNames: ['decision'] as const,
    registers: [this.registry],
  });
  readonly modelTokens = new Counter({
    name: 'berth_model_tokens_total',
    help: 'Model tokens workers used through the egress proxy, as the providers reported them, by kind, repository, model and type',
    labelNames: ['kind', 'repo', 'model', 'type'] as const,
    registers: [this.registry],
  });
  readonly modelCost = new Counter({
    name: 'berth_model_cost_usd_total',
    help: "What workers' model calls cost in USD, by the operator's price table (MODEL_PRICES_FILE), by kind, repository and model",
    labelNames: ['kind', 'repo', 'model'] as const,
    registers: [this.registry],
  });
  readonly repoBudgetUsed = new Gauge({
    name: 'berth_repo_budget_used_ratio',
    help: 'How much of its model budgets each repository has used this day and month (REPO_BUDGET_*; the largest ratio), as of its latest attempt',
    labelNames: ['repo'] as const,
    registers: [this.registry],
  });
  readonly installationBudgetUsed = new Gauge({
    name: 'berth_installation_budget_used_ratio',
    help: 'How much of its model budgets each GitHub App installation has used this day and month (INSTALLATION_BUDGET_*; the largest ratio), as of its latest attempt',
    labelNames: ['installation'] as const,
    registers: [this.registry],
  });
  readonly completions = new Counter({ name: 'berth_completions_total', help: 'Tasks completed', registers: [this.registry] });
  readonly startLatency = new Histogram({
    name: 'berth_container_start_seconds',
    help: 'From create request to a running container',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
    registers: [this.registry],
  });
  readonly taskDuration = new Histogram({
    name: 'berth_task_duration_seconds',
    help: 'Container run time per attempt (its own StartedAt to FinishedAt)',
    buckets: [1, 10, 30, 60, 300, 600, 1200, 1800, 2700, 3600],
    registers: [this.registry],
  });

  private observed = false;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'berth_process_' });
  }

  /** Gauges read from the queue and the engine when Prometheus scrapes. Idempotent. */
  observe(sources: MetricSources): void {
    if (this.observed) return;
    this.observed = true;
    const registers = [this.registry];
    new Gauge({
      name: 'berth_tasks',
      help: 'Tasks by BullMQ state',
      labelNames: ['state'] as const,
      registers,
      async collect() {
        const counts = await sources.jobCounts();
        for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
      },
    });
    new Gauge({
      name: 'berth_queue_depth',
      help: 'Tasks waiting to run (waiting, prioritized, delayed)',
      registers,
      async collect() {
        const counts = await sources.jobCounts();
        this.set((counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0));
      },
    });
    new Gauge({
      name: 'berth_consumers',
      help: 'Live consumers (BullMQ workers) of the task queue',
      registers,
      async collect() {
        this.set(await sources.consumers());
      },
    });
    new Gauge({
      name: 'berth_oldest_waiting_seconds',
      help: 'Age of the oldest task waiting to start (0 when none waits)',
      registers,
      async collect() {
        this.set(await sources.oldestWaitingSeconds());
      },
    });
    new Gauge({
      name: 'berth_tasks_overdue',
      help: 'Running tasks past TASK_TIMEOUT (plus a minute): their deadline is not being enforced',
      registers,
      async collect() {
        this.set(await sources.overdue());
      },
    });
    new Gauge({
      name: 'berth_redis_up',
      help: '1 when Redis answers a ping, else 0',
      registers,
      async collect() {
        this.set((await sources.redisUp()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'berth_redis_memory_used_ratio',
      help: "Redis's used memory over its maxmemory (0 when Redis has no maxmemory or does not answer)",
      registers,
      async collect() {
        const memory = await sources.redisMemory().catch(() => null);
        this.set(memory && memory.maxBytes > 0 ? memory.usedBytes / memory.maxBytes : 0);
      },
    });
    new Gauge({
      name: 'berth_running_containers',
      help: 'Worker containers of this queue running on this engine',
      registers,
      async collect() {
        this.set(await sources.runningContainers());
      },
    });
  }
}

export interface MetricSources {
  jobCounts: () => Promise<Record<string, number>>;
  runningContainers: () => Promise<number>;
  consumers: () => Promise<number>;
  oldestWaitingSeconds: () => Promise<number>;
  overdue: () => Promise<number>;
  redisUp: () => Promise<boolean>;
  redisMemory: () => Promise<RedisMemory>;
}

/** Failure reasons as a bounded label set (failedReason texts are free-form). */
export function failureLabel(reason: string): string {
  if (reason.startsWith('timeout')) return 'timeout';
  if (reason.startsWith('out of memory')) return 'oom';
  if (reason.startsWith('cancelled')) return 'cancelled';
  if (reason.startsWith('invalid task')) return 'invalid_task';
  if (reason.includes('do not retry')) return 'no_retry';
  if (reason.startsWith('killed by')) return 'signal';
  if (reason.startsWith('exit code')) return 'exit_code';
  if (reason.includes('stalled')) return 'stalled';
  if (reason.startsWith('the Docker engine restarted')) return 'engine_restart';
  if (reason.startsWith('checkout failed')) return 'checkout';
  if (reason.startsWith('refused')) return 'refused';
  if (reason.startsWith('could not get a GitHub token')) return 'github';
  if (reason.startsWith('worker image')) return 'image';
  if (reason.startsWith('swarm:')) return 'swarm';
  return 'other';
}
