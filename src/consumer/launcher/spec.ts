import { agentCommandFor, type Config } from '../../core/config.js';
import { LABEL } from '../../core/labels.js';
import type { WorkerTask } from '../../core/task.js';
import type { VolumeMount, WorkloadSpec } from './launcher.js';

export type LaunchConfig = Pick<
  Config,
  | 'QUEUE_NAME'
  | 'CONSUMER_ID'
  | 'WORKER_IMAGE'
  | 'WORKER_USER'
  | 'WORKER_MEMORY'
  | 'WORKER_CPUS'
  | 'WORKER_PIDS_LIMIT'
  | 'WORKER_TMPFS_SIZE'
  | 'WORKER_NETWORK'
  | 'WORKER_BINDS'
  | 'WORKER_CAP_ADD'
  | 'WORKER_LOG_MAX_SIZE'
  | 'WORKER_STOP_GRACE'
  | 'WORKER_ENV'
  | 'EGRESS'
  | 'TASK_TIMEOUT'
  | 'CHECKOUT'
  | 'CHECKOUT_DEPTH'
  | 'CHECKOUT_SKIP'
  | 'GITHUB_SERVER_URL'
  | 'GITHUB_API_URL'
  | 'WORKER_GITHUB_API_URL'
  | 'agentCommands'
  | 'setupCommands'
  | 'workerEntrypoint'
>;

export interface LaunchRequest {
  name: string;
  task: WorkerTask;
  /** Short-lived credentials minted at launch; they live only in the workload's environment. */
  secrets?: Record<string, string>;
  /** EGRESS=proxy: the attempt's way out (its credential, the proxy's socket volume). */
  egress?: WorkloadEgress;
}

/** What one attempt's workload gets to reach the outside through the egress proxy (consumer/egress-gate.ts). */
export interface WorkloadEgress {
  env: Record<string, string>;
  secrets: Record<string, string>;
  volumes: VolumeMount[];
  labels: Record<string, string>;
}

/** Where the worker clones the task's repository; the agent's working directory. */
export const REPO_DIR = '/work/repo';

/** `auto` clones when the worker has a token: without an App, berth does not talk to GitHub at all. */
export function wantsCheckout(config: Pick<LaunchConfig, 'CHECKOUT' | 'CHECKOUT_SKIP'>, kind: string, hasToken: boolean): boolean {
  if (config.CHECKOUT_SKIP.includes(kind)) return false;
  return config.CHECKOUT === 'always' || (config.CHECKOUT === 'auto' && hasToken);
}

/**
 * The whole workload spec. Everything privileged comes from `config`; the task reaches the
 * workload only as the JSON value of BERTH_TASK, which the worker parses and validates. Neutral:
 * each backend translates it (launcher/docker.ts, launcher/swarm/service-spec.ts) and applies every hardening
 * setting it can express.
 */
export function buildWorkloadSpec(config: LaunchConfig, request: LaunchRequest, hostEnv: NodeJS.ProcessEnv = {}): WorkloadSpec {
  const { task } = request;
  const command = agentCommandFor(config, task.kind);
  if (!command) throw new Error(`no AGENT_COMMAND_${task.kind.toUpperCase()} configured`);
  const [uid = '', gid = uid] = config.WORKER_USER.split(':');

  const env: Record<string, string> = {
    BERTH_TASK: JSON.stringify(task),
    BERTH_COMMAND: JSON.stringify(command),
    ...(Object.hasOwn(config.setupCommands, task.kind) ? { BERTH_SETUP_COMMAND: JSON.stringify(config.setupCommands[task.kind]) } : {}),
    HOME: '/work',
    TMPDIR: '/tmp',
  };
  const secrets: Record<string, string> = {};
  for (const name of config.WORKER_ENV) {
    const value = hostEnv[name];
    if (value !== undefined) secrets[name] = value;
  }
  Object.assign(secrets, request.secrets ?? {}, request.egress?.secrets ?? {});
  Object.assign(env, request.egress?.env ?? {});
  // Where GitHub is, in the names GitHub Actions uses, so agents written for Actions find it.
  env.GITHUB_SERVER_URL = config.GITHUB_SERVER_URL.replace(/\/$/, '');
  env.GITHUB_API_URL = (config.WORKER_GITHUB_API_URL ?? config.GITHUB_API_URL).replace(/\/$/, '');
  env.GITHUB_REPOSITORY = task.repo;
  if (wantsCheckout(config, task.kind, request.secrets?.GITHUB_TOKEN !== undefined)) {
    env.BERTH_CHECKOUT_DEPTH = String(config.CHECKOUT_DEPTH);
    env.BERTH_REPO_DIR = REPO_DIR;
  }

  return {
    name: request.name,
    image: config.WORKER_IMAGE,
    command: config.workerEntrypoint,
    uid: Number(uid),
    gid: Number(gid),
    workingDir: '/work',
    env,
    secrets,
    labels: {
      [LABEL.managed]: 'true',
      [LABEL.queue]: config.QUEUE_NAME,
      [LABEL.jobId]: task.id,
      [LABEL.attempt]: String(task.attempt),
      [LABEL.timeoutMs]: String(config.TASK_TIMEOUT),
      [LABEL.memoryBytes]: String(config.WORKER_MEMORY),
      'berth.consumer': config.CONSUMER_ID,
      ...(request.egress?.labels ?? {}),
    },
    memoryBytes: config.WORKER_MEMORY,
    nanoCpus: Math.round(config.WORKER_CPUS * 1e9),
    pidsLimit: config.WORKER_PIDS_LIMIT,
    tmpfsBytes: config.WORKER_TMPFS_SIZE,
    capAdd: config.WORKER_CAP_ADD,
    binds: config.WORKER_BINDS,
    volumes: request.egress?.volumes ?? [],
    // Behind the proxy (or with no egress at all) a worker has no network: loopback only.
    network: config.EGRESS === 'open' ? config.WORKER_NETWORK : 'none',
    logMaxSize: config.WORKER_LOG_MAX_SIZE,
    stopGraceMs: config.WORKER_STOP_GRACE,
  };
}
