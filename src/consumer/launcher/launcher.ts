import { FailureError } from '../../core/failure.js';

/**
 * What berth needs from whatever runs its workers. The consumer, the attempt runner, the
 * reconciler, the log streamer and doctor speak only this; a backend (Docker, Swarm) translates
 * it into its own terms and keeps those terms to itself. Shaped after Trigger.dev's
 * WorkloadManager and Woodpecker's backend interface, with berth's one extra duty: the workload's
 * name is the fence, so create must refuse a second workload of the same name and report it as an
 * adoption, never run it twice.
 */

/** Everything a backend needs to run one attempt. Built from operator config only (spec.ts). */
export interface WorkloadSpec {
  /** Deterministic per (queue, job, attempt): the backend refuses a second one (the fence). */
  name: string;
  image: string;
  /** The worker's entrypoint, argv form; the image's own is never used. */
  command: string[];
  uid: number;
  gid: number;
  workingDir: string;
  env: Record<string, string>;
  /**
   * The worker's secrets (its GitHub token, the operator's WORKER_ENV values), kept apart from
   * `env` so each backend can hand them over its safest way: in the container's environment on one
   * engine (only the socket's holders can inspect it), as a swarm secret on a swarm (a service's
   * Env is in the raft store and every manager's inspect). The worker sees them as environment.
   */
  secrets: Record<string, string>;
  /** berth's labels: how a workload is found again after a crash. */
  labels: Record<string, string>;
  memoryBytes: number;
  nanoCpus: number;
  pidsLimit: number;
  /** Size in bytes of each of the two writable tmpfs mounts (/work, /tmp); the root filesystem is read-only. */
  tmpfsBytes: number;
  capAdd: string[];
  /** Operator binds, `source:target[:ro]`. */
  binds: string[];
  /** Named volumes (berth's egress proxy socket), mounted as given. */
  volumes: VolumeMount[];
  /** `none`, or the name of the network workers join. */
  network: string;
  logMaxSize: string;
  stopGraceMs: number;
}

export interface VolumeMount {
  source: string;
  target: string;
  readOnly: boolean;
}

/**
 * berth's egress proxy as a backend runs it: one long-lived workload per version, found again by
 * its name, restarted by the engine when it dies, never stopped by berth's own shutdown.
 */
export interface EgressProxySpec {
  /** Per queue and version: a new version starts beside the old one. */
  name: string;
  image: string;
  command: string[];
  uid: number;
  gid: number;
  env: Record<string, string>;
  labels: Record<string, string>;
  /** Networks with a route out; the first is its primary. Never one workers are on (they have none). */
  networks: string[];
  memoryBytes: number;
  /** Holds the proxy's Unix socket; workers mount it read-only. */
  socketVolume: string;
  /** Holds its per-attempt records; no worker mounts it. */
  stateVolume: string;
}

/**
 * How a workload is doing, in berth's words. `pending`: created, not yet running (Docker's
 * `created`; a swarm task being scheduled, pulled or started). `running`. `exited`: over, for
 * whatever reason; `failure` says why when the backend, not the worker, ended it.
 */
export type WorkloadState = 'pending' | 'running' | 'exited';

export interface WorkloadFacts {
  id: string;
  name: string;
  state: WorkloadState;
  exitCode: number;
  oomKilled: boolean;
  startedAt: number | null;
  finishedAt: number | null;
  labels: Record<string, string>;
  /**
   * The workload's environment as the engine tells it: on one engine with its secrets (to mask, its
   * token to revoke); a swarm never gives a secret back, so there it holds none. Never logged or stored.
   */
  env: Record<string, string>;
  /**
   * Set when the platform ended the attempt without the worker's say: a swarm task rejected by its
   * node, no node able to take it, its node lost. Names what happened, for the failure reason.
   */
  failure?: string;
  /** Where it runs (a swarm node's hostname); absent on a single engine. */
  node?: string;
}

/** A workload's output as it is written, ending when it exits. */
export type LogStream = NodeJS.ReadableStream & { destroy(): void };

/**
 * One workload (a container, a swarm service) as the attempt runner, the reconciler and doctor hold
 * it. Each backend owns its waiting, its polling and its distrust of its engine in here (Docker's
 * wait raced with a look, a swarm's placement poll), so its callers never name a backend. Engine
 * outages are not handled here: `resilient()` (engine-health.ts) retries any of these calls once,
 * for every backend alike.
 */
export interface Workload {
  readonly id: string;
  /** How it is doing now; null once it is gone. */
  inspect(): Promise<WorkloadFacts | null>;
  /** Starts it if it was created and not started, and waits while the platform places or starts it: the facts once it runs, or has already ended. */
  untilRunning(signal?: AbortSignal): Promise<WorkloadFacts>;
  /** Until it has exited, however its engine reports that: the facts then. Rejects with the signal's reason when `signal` fires. */
  untilExited(signal?: AbortSignal): Promise<WorkloadFacts>;
  /** Its raw output (stdout and stderr interleaved) from its start, ending when it exits. */
  follow(): Promise<LogStream>;
  /** The end of its output, at most `lines` lines: the worker's result line is always its last. */
  tail(lines?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`. Keeps the workload (and so its name) until remove. A no-op on one that is over or gone. */
  stop(graceMs: number): Promise<void>;
  /** Removes it and what it ran; a no-op when gone. Only after BullMQ recorded the outcome. */
  remove(): Promise<void>;
}

/** The workload vanished while berth held it (removed by hand, or by another consumer's reconciler). */
export class WorkloadVanished extends Error {
  constructor(readonly id: string) {
    super(`workload ${id} vanished`);
  }
}

export interface ManagedWorkload {
  id: string;
  name: string;
  state: WorkloadState;
  jobId: string;
  attempt: number;
  labels: Record<string, string>;
  node?: string;
}

/** The engine berth talks to, for doctor and the logs. */
export interface LauncherDescription {
  backend: 'docker' | 'swarm';
  engine: string;
  /** Engine-wide security options (`no-new-privileges` among them on engines that list it). */
  securityOptions: string[];
  /** Swarm only: the nodes that can take workers. */
  nodes?: number;
}

export interface Launcher {
  readonly backend: 'docker' | 'swarm';
  /** What its workloads are called in logs ("started container"): operators and scripts read these lines. */
  readonly noun: 'container' | 'service';
  /** The workload name for an attempt; the fence, so it must be deterministic and valid for the backend. */
  nameFor(queue: string, jobId: string, attempt: number): string;
  /** A stable identity of the engine or cluster, for the cross-engine fence in Redis. */
  engineId(): Promise<string>;
  /** Creates the workload, or finds the one a previous consumer created under the same name. */
  createOrAdopt(spec: WorkloadSpec): Promise<{ workload: Workload; adopted: boolean }>;
  /** A handle on the workload of that id or name (listed, remembered, or the attempt's name); no engine call. */
  handle(idOrName: string): Workload;
  /** berth's workloads for `queue` on this engine or cluster. */
  listManaged(queue: string): Promise<ManagedWorkload[]>;
  /** Creates berth's own worker network when needed; refuses one berth or Redis is on. */
  prepareNetwork(name: string, redisUrl: string): Promise<void>;
  /** The worker network's gateway as workers see it (doctor probes berth's own addresses through it). */
  networkGateway(name: string): Promise<string>;
  /** The image's id on the engine (what a rebuild under the same name changes); null when it is not there. */
  imageId(image: string): Promise<string | null>;
  /** Rejects with ImageMissing when the image cannot run here. */
  checkImage(image: string): Promise<void>;
  ping(): Promise<void>;
  describe(): Promise<LauncherDescription>;
  /** Creates the egress proxy, or adopts the one of that name (starting it when stopped). */
  ensureEgressProxy(spec: EgressProxySpec): Promise<{ id: string; created: boolean }>;
  /** Removes `queue`'s proxies other than `current` once no running workload uses them. Returns the names removed. */
  retireEgressProxies(queue: string, current: string): Promise<string[]>;
  /** `queue`'s egress proxies on this engine, for doctor. */
  egressProxies(queue: string): Promise<Array<{ name: string; running: boolean }>>;
  /** The proxy's record of one attempt (`<jobId>#<attempt>`, started at `since` ms), or null when it has none. Ends the attempt's credentials where the backend can reach the proxy: only asked once its workload has exited. */
  egressRecord(proxyName: string, attempt: string, since?: number): Promise<unknown>;
  /** The attempts (`<jobId>#<attempt>`) whose model budget the proxy found spent: berth stops their workloads. */
  egressOverBudget(proxyName: string): Promise<string[]>;
}

/** The worker image is not where the workload would run: retrying cannot help until an operator builds or pulls it. */
export class ImageMissing extends FailureError {
  constructor(
    readonly image: string,
    where = 'this Docker engine',
  ) {
    super({ cause: 'image', detail: `worker image ${image} is not on ${where}; build or pull it (WORKER_IMAGE), then retry the task` });
  }
}

/** Docker's `source:target[:ro|rw]` bind, as parts. */
export function parseBind(bind: string): { source: string; target: string; readOnly: boolean } {
  const [source = '', target = '', mode = ''] = bind.split(':');
  return { source, target, readOnly: mode.split(',').includes('ro') };
}
