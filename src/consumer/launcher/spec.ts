import type Dockerode from 'dockerode';
import { agentCommandFor, type Config } from '../../core/config.js';
import { LABEL } from '../../core/labels.js';
import type { WorkerTask } from '../../core/task.js';

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
  | 'TASK_TIMEOUT'
  | 'CHECKOUT'
  | 'CHECKOUT_DEPTH'
  | 'CHECKOUT_SKIP'
  | 'GITHUB_SERVER_URL'
  | 'GITHUB_API_URL'
  | 'agentCommands'
  | 'workerEntrypoint'
>;

export interface LaunchRequest {
  name: string;
  task: WorkerTask;
  /** Short-lived credentials minted at launch; they live only in the container's environment. */
  secrets?: Record<string, string>;
}

/** Where the worker clones the task's repository; the agent's working directory. */
export const REPO_DIR = '/work/repo';

/** `auto` clones when the worker has a token: without an App, berth does not talk to GitHub at all. */
export function wantsCheckout(config: Pick<LaunchConfig, 'CHECKOUT' | 'CHECKOUT_SKIP'>, kind: string, hasToken: boolean): boolean {
  if (config.CHECKOUT_SKIP.includes(kind)) return false;
  return config.CHECKOUT === 'always' || (config.CHECKOUT === 'auto' && hasToken);
}

/**
 * The whole container spec. Everything privileged comes from `config`; the task reaches the
 * container only as the JSON value of BERTH_TASK, which the worker parses and validates.
 */
export function buildContainerSpec(config: LaunchConfig, request: LaunchRequest, hostEnv: NodeJS.ProcessEnv = {}): Dockerode.ContainerCreateOptions {
  const { task } = request;
  const command = agentCommandFor(config, task.kind);
  if (!command) throw new Error(`no AGENT_COMMAND_${task.kind.toUpperCase()} configured`);
  const [uid, gid = uid] = config.WORKER_USER.split(':');
  const tmpfs = `rw,nosuid,nodev,size=${config.WORKER_TMPFS_SIZE}`;

  const env = [
    `BERTH_TASK=${JSON.stringify(task)}`,
    `BERTH_COMMAND=${JSON.stringify(command)}`,
    'HOME=/work',
    'TMPDIR=/tmp',
  ];
  for (const name of config.WORKER_ENV) {
    const value = hostEnv[name];
    if (value !== undefined) env.push(`${name}=${value}`);
  }
  for (const [name, value] of Object.entries(request.secrets ?? {})) env.push(`${name}=${value}`);
  // Where GitHub is, in the names GitHub Actions uses, so agents written for Actions find it.
  env.push(`GITHUB_SERVER_URL=${config.GITHUB_SERVER_URL.replace(/\/$/, '')}`, `GITHUB_API_URL=${config.GITHUB_API_URL.replace(/\/$/, '')}`, `GITHUB_REPOSITORY=${task.repo}`);
  if (wantsCheckout(config, task.kind, request.secrets?.GITHUB_TOKEN !== undefined)) env.push(`BERTH_CHECKOUT_DEPTH=${config.CHECKOUT_DEPTH}`, `BERTH_REPO_DIR=${REPO_DIR}`);

  return {
    name: request.name,
    Image: config.WORKER_IMAGE,
    Entrypoint: config.workerEntrypoint,
    Cmd: [],
    User: `${uid}:${gid}`,
    WorkingDir: '/work',
    Env: env,
    Labels: {
      [LABEL.managed]: 'true',
      [LABEL.queue]: config.QUEUE_NAME,
      [LABEL.jobId]: task.id,
      [LABEL.attempt]: String(task.attempt),
      [LABEL.timeoutMs]: String(config.TASK_TIMEOUT),
      [LABEL.memoryBytes]: String(config.WORKER_MEMORY),
      'berth.consumer': config.CONSUMER_ID,
    },
    // The image's HEALTHCHECK probes berth's API; a worker container has none.
    Healthcheck: { Test: ['NONE'] },
    StopSignal: 'SIGTERM',
    StopTimeout: Math.ceil(config.WORKER_STOP_GRACE / 1000),
    NetworkDisabled: config.WORKER_NETWORK === 'none',
    HostConfig: {
      Init: true,
      ReadonlyRootfs: true,
      Tmpfs: { '/work': `${tmpfs},uid=${uid},gid=${gid},mode=0700`, '/tmp': `${tmpfs},mode=1777` },
      CapDrop: ['ALL'],
      CapAdd: config.WORKER_CAP_ADD,
      SecurityOpt: ['no-new-privileges:true'],
      Privileged: false,
      Memory: config.WORKER_MEMORY,
      MemorySwap: config.WORKER_MEMORY,
      NanoCpus: Math.round(config.WORKER_CPUS * 1e9),
      PidsLimit: config.WORKER_PIDS_LIMIT,
      NetworkMode: config.WORKER_NETWORK,
      Binds: config.WORKER_BINDS,
      IpcMode: 'private',
      LogConfig: { Type: 'json-file', Config: { 'max-size': config.WORKER_LOG_MAX_SIZE, 'max-file': '1' } },
      RestartPolicy: { Name: 'no' },
      AutoRemove: false,
    },
  };
}
