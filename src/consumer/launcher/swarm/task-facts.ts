import { envRecord, parseDockerTime } from '../docker-api.js';
import type { WorkloadFacts, WorkloadState } from '../launcher.js';
import { STOPPED_LABEL } from './service-spec.js';

export type Task = {
  ID: string;
  NodeID?: string;
  CreatedAt?: string;
  DesiredState?: string;
  Status?: { State?: string; Timestamp?: string; Err?: string; Message?: string; ContainerStatus?: { ExitCode?: number } };
  Version?: { Index?: number };
};

export type ServiceInfo = {
  ID: string;
  Version: { Index: number };
  CreatedAt?: string;
  Spec: {
    Name: string;
    Labels?: Record<string, string>;
    TaskTemplate: { ContainerSpec: { Env?: string[]; StopGracePeriod?: number } & Record<string, unknown> } & Record<string, unknown>;
    Mode: Record<string, unknown>;
  } & Record<string, unknown>;
};

export type NodeInfo = { hostname: string; state: string; availability: string };

/** Swarm task states before the task runs (being placed, pulled, prepared, started). */
const PENDING = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting']);

/** A task's state in berth's words, for listings (no failure reasons there). */
export function listedState(taskState: string, node: NodeInfo | undefined): WorkloadState {
  if (PENDING.has(taskState)) return 'pending';
  return taskState === 'running' && (!node || node.state === 'ready') ? 'running' : 'exited';
}

export interface TaskContext {
  /** The service's newest task; null before swarm made one, or after it deleted a stopped one. */
  task: Task | null;
  /** The node the task is on. */
  node: NodeInfo | undefined;
  /** How long a task may wait for a node that can take it. */
  scheduleTimeoutMs: number;
  /** The last exit seen for this service, for when swarm has deleted the stopped task since. */
  lastExit: { exitCode: number; at: number } | undefined;
  now: number;
}

/**
 * A service and its task as berth's facts. Swarm states a single engine never shows become
 * `failure`: a task rejected by its node, one no node can take (after `scheduleTimeoutMs`), one
 * whose node was lost (a node that stops reporting keeps its task "running" for a day).
 */
export function taskFacts(service: ServiceInfo, { task, node, scheduleTimeoutMs, lastExit, now }: TaskContext): WorkloadFacts {
  const labels = service.Spec.Labels ?? {};
  const env = envRecord(service.Spec.TaskTemplate.ContainerSpec.Env);
  const base = { id: service.ID, name: service.Spec.Name, labels, env, oomKilled: false };
  const stoppedAt = Number(labels[STOPPED_LABEL]) || null;
  const nodeLost = (hostname: string, startedAt: number | null): WorkloadFacts => ({
    ...base,
    state: 'exited',
    exitCode: -1,
    startedAt,
    finishedAt: now,
    node: hostname,
    failure: `swarm: node ${hostname} running the task was lost (it stopped answering the managers)`,
  });

  if (!task) {
    // Stopped by berth and its task already deleted: SIGTERM's code unless the task was seen ending.
    if (stoppedAt)
      return {
        ...base,
        state: 'exited',
        exitCode: lastExit?.exitCode ?? 143,
        startedAt: parseDockerTime(service.CreatedAt),
        finishedAt: lastExit?.at ?? stoppedAt,
      };
    return { ...base, state: 'pending', exitCode: 0, startedAt: null, finishedAt: null };
  }

  const state = task.Status?.State ?? 'new';
  const at = parseDockerTime(task.Status?.Timestamp);
  const created = parseDockerTime(task.CreatedAt);
  const where = node ? ` on node ${node.hostname}` : '';
  const exitCode = task.Status?.ContainerStatus?.ExitCode ?? 0;
  const err = task.Status?.Err ?? '';
  const on = node ? { node: node.hostname } : {};

  if (PENDING.has(state)) {
    // The scheduler says why it cannot place the task ("no suitable node (…)"); give it a while (a node may join).
    if (state === 'pending' && err && created !== null && now - created > scheduleTimeoutMs) {
      return {
        ...base,
        state: 'exited',
        exitCode: -1,
        startedAt: null,
        finishedAt: now,
        failure: `swarm: no node could take the task within ${Math.round(scheduleTimeoutMs / 1000)}s: ${err}`,
      };
    }
    if (node && node.state !== 'ready') return nodeLost(node.hostname, created);
    return { ...base, state: 'pending', exitCode: 0, startedAt: null, finishedAt: null, ...on };
  }
  if (state === 'running') {
    if (node && node.state !== 'ready') return nodeLost(node.hostname, at);
    return { ...base, state: 'running', exitCode: 0, startedAt: at, finishedAt: null, ...on };
  }
  const ended = { ...base, state: 'exited' as const, exitCode, startedAt: created, finishedAt: at, ...on };
  if (state === 'rejected') {
    const image = /no such image|not found|pull access denied/i.test(err) ? ` (is ${String(service.Spec.TaskTemplate.ContainerSpec.Image)} on that node?)` : '';
    return { ...ended, exitCode: -1, failure: `swarm: the task was rejected${where}: ${err || 'no reason given'}${image}` };
  }
  if (state === 'orphaned') return { ...ended, failure: `swarm: the task's node was lost${where}` };
  if (state === 'failed' && !task.Status?.ContainerStatus?.ExitCode)
    return { ...ended, exitCode: -1, failure: `swarm: the task failed to start${where}: ${err || 'no reason given'}` };
  // complete, failed with an exit code, shutdown (stopped).
  return ended;
}
