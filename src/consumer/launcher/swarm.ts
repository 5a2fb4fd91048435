import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import { LABEL, managedLabelFilter } from '../../core/labels.js';
import { demuxDockerStream, unframed } from './docker-frames.js';
import { envList, envRecord, parseDockerTime, statusOf, unlessMissing } from './docker-api.js';
import { networksOfBerthAndRedis } from './worker-network.js';
import { ImageMissing, parseBind, type Launcher, type LauncherDescription, type ManagedWorkload, type WorkloadFacts, type WorkloadSpec } from './launcher.js';

/**
 * Operator placement, never from a request. Constraints only: swarm weighs placement preferences
 * (spread) among one service's own tasks, and each berth attempt is a service of one task, so a
 * spread preference would never move anything. Across services swarm's scheduler already favours
 * the node with the fewest tasks.
 */
export interface SwarmPlacement {
  /** e.g. `node.labels.berth==worker`, `node.role==worker`. */
  constraints: string[];
  /** How long a task may wait for a node that can take it before the attempt fails with the scheduler's reason. */
  scheduleTimeoutMs: number;
}

/** When berth stopped a service (ms since epoch): the service stays, as the attempt's fence, until removed. */
const STOPPED_LABEL = 'berth.stopped-at';
/** Swarm names are DNS labels: at most 63 of [A-Za-z0-9_-], starting and ending alphanumeric. */
const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,61}[a-zA-Z0-9]$/;
/** How often a wait, and a log follower, looks at the task. Swarm has no per-task wait call. */
const POLL_MS = 250;
/** How long node states are reused across inspects: enough to notice a lost node, few API calls. */
const NODE_CACHE_MS = 1_000;
/** How long a removal waits for swarm to delete the service's tasks (and their containers). */
const REMOVE_WAIT_MS = 10_000;
/** Lines still in flight when a task exits, before the follower ends. */
const LOG_DRAIN_MS = 500;
/** Where a worker finds its secrets (JSON, name → value); the worker's entrypoint reads them into its environment. */
export const SECRETS_FILE = '/run/secrets/berth-env';
/** A secret whose service is gone is swept after this long (a create may be between the two calls). */
const ORPHAN_SECRET_MS = 60_000;

/** The name of an attempt's swarm secret: its service's, so the two go together and are found together. */
export function secretNameFor(serviceName: string): string {
  return `${serviceName}-env`;
}

type Task = {
  ID: string;
  NodeID?: string;
  CreatedAt?: string;
  DesiredState?: string;
  Status?: { State?: string; Timestamp?: string; Err?: string; Message?: string; ContainerStatus?: { ExitCode?: number } };
  Version?: { Index?: number };
};
type ServiceInfo = {
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

const PENDING = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting']);

/**
 * The neutral spec as a service of one replica that is never restarted (`restart-condition none`):
 * one task, run at most once, placed by operator rules. Not a replicated-job service, though that
 * is what it is: on Docker 20.10 a removed job service leaves its finished task and container on
 * the node for good (moby/moby#44312), and "nothing left behind" comes first. Swarm restarts
 * neither kind after an exit or a lost node.
 */
export function serviceSpec(spec: WorkloadSpec, placement: Pick<SwarmPlacement, 'constraints'>, secret?: { id: string; name: string }): Record<string, unknown> {
  return {
    Name: spec.name,
    Labels: spec.labels,
    Mode: { Replicated: { Replicas: 1 } },
    // Workers serve nothing: no virtual IP, no IPVS load balancer to set up per task.
    EndpointSpec: { Mode: 'dnsrr' },
    TaskTemplate: {
      ContainerSpec: {
        Image: spec.image,
        // Swarm cannot set no-new-privileges (moby/moby#41371): the worker and all it starts get it from setpriv (util-linux).
        Command: ['setpriv', '--no-new-privs', '--', ...spec.command],
        Args: [],
        User: `${spec.uid}:${spec.gid}`,
        Dir: spec.workingDir,
        // Never the secrets: a service's Env is in the raft store, every manager's inspect and PreviousSpec.
        Env: envList({ ...spec.env, ...(secret ? { BERTH_SECRETS_FILE: SECRETS_FILE } : {}) }),
        Labels: spec.labels,
        // Readable by the worker's user only, on the node's tmpfs; swarm never returns the data.
        Secrets: secret ? [{ SecretID: secret.id, SecretName: secret.name, File: { Name: SECRETS_FILE.split('/').pop(), UID: String(spec.uid), GID: String(spec.gid), Mode: 0o400 } }] : undefined,
        Init: true,
        ReadOnly: true,
        // The image's HEALTHCHECK probes berth's API; a worker has none (and a task would sit in `starting`).
        Healthcheck: { Test: ['NONE'] },
        StopSignal: 'SIGTERM',
        StopGracePeriod: spec.stopGraceMs * 1e6,
        CapabilityDrop: ['ALL'],
        CapabilityAdd: spec.capAdd.length ? spec.capAdd : undefined,
        Mounts: [
          // Swarm's tmpfs takes a size and a mode, not an owner, and its folder's mode from the image (/work is 1777 in berth's).
          { Type: 'tmpfs', Target: '/work', TmpfsOptions: { SizeBytes: spec.tmpfsBytes, Mode: 0o1777 } },
          { Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: spec.tmpfsBytes, Mode: 0o1777 } },
          ...spec.binds.map((bind) => {
            const { source, target, readOnly } = parseBind(bind);
            return { Type: 'bind', Source: source, Target: target, ReadOnly: readOnly };
          }),
          ...spec.volumes.map((v) => ({ Type: 'volume', Source: v.source, Target: v.target, ReadOnly: v.readOnly })),
        ],
      },
      Resources: { Limits: { MemoryBytes: spec.memoryBytes, NanoCPUs: spec.nanoCpus, Pids: spec.pidsLimit } },
      RestartPolicy: { Condition: 'none', MaxAttempts: 0 },
      Placement: {
        Constraints: placement.constraints,
      },
      Networks: [{ Target: spec.network }],
      LogDriver: { Name: 'json-file', Options: { 'max-size': spec.logMaxSize, 'max-file': '1' } },
    },
  };
}

/**
 * Workers as Docker Swarm services: one service of one never-restarted task per attempt, named like
 * the container would be, placed on any node the operator's constraints allow. berth talks to a
 * manager; the manager's refusal of a second service with the same name (409) is the fence, as the
 * container name is on one engine. Stopping keeps the service (and so the name) until the outcome
 * is recorded; only then is it removed.
 *
 * Swarm states a single engine never shows are turned into `failure`: a task rejected by its node,
 * one no node can take (after `scheduleTimeoutMs`), one whose node was lost.
 */
export class SwarmLauncher implements Launcher {
  readonly backend = 'swarm' as const;
  private cluster: Promise<string> | null = null;
  /** When orphan secrets were last swept: listManaged runs on every reconcile pass and scrape, the sweep needs far less. */
  private sweptAt = 0;
  private nodes: { at: number; byId: Map<string, { hostname: string; state: string; availability: string }> } | null = null;
  /** The last exit code seen per stopped service, in case swarm has deleted the stopped task by the time berth looks. */
  private readonly lastExit = new Map<string, { exitCode: number; at: number }>();

  constructor(
    readonly docker: Dockerode,
    private readonly placement: SwarmPlacement,
  ) {}

  nameFor(queue: string, jobId: string, attempt: number): string {
    const plain = `berth-${queue}-${jobId}-a${attempt}`;
    if (SERVICE_NAME.test(plain)) return plain;
    // Too long or with characters swarm refuses: a digest keeps it deterministic and distinct.
    const digest = createHash('sha256').update(`${queue}\0${jobId}`).digest('hex').slice(0, 32);
    return `berth-${queue.replace(/[^a-zA-Z0-9_-]/g, '').slice(0, 16)}-${digest}-a${attempt}`;
  }

  /** The swarm's cluster id: every manager reports the same one, so every consumer on this swarm shares the fence. */
  engineId(): Promise<string> {
    this.cluster ??= (async () => {
      const swarm = (await this.docker.swarmInspect()) as { ID?: string };
      if (!swarm.ID) throw new Error('this engine is not a swarm manager (LAUNCHER=swarm needs DOCKER_HOST to name a manager)');
      return `swarm-${swarm.ID}`;
    })();
    this.cluster.catch(() => (this.cluster = null));
    return this.cluster;
  }

  async createOrAdopt(spec: WorkloadSpec): Promise<{ id: string; adopted: boolean }> {
    const existing = await this.service(spec.name);
    if (existing) return { id: existing.ID, adopted: true };
    let secret: { id: string; name: string } | undefined;
    try {
      secret = Object.keys(spec.secrets).length ? await this.createSecret(spec) : undefined;
    } catch (error) {
      // The secret is in use: another consumer made it and its service in the meantime.
      const adopted = await this.service(spec.name);
      if (adopted) return { id: adopted.ID, adopted: true };
      throw error;
    }
    try {
      const service = (await this.docker.createService(serviceSpec({ ...spec, image: await this.pinned(spec.image) }, this.placement, secret))) as unknown as { id: string };
      return { id: service.id, adopted: false };
    } catch (error) {
      if (statusOf(error) !== 409) {
        if (secret) await unlessMissing(this.docker.getSecret(secret.id).remove()).catch(() => {});
        throw error;
      }
      // Another consumer created the service between our look and our create: its own secret is in
      // use; the one made here is not (removing it fails harmlessly if it is the same one).
      const adopted = await this.service(spec.name);
      if (!adopted) throw error;
      return { id: adopted.ID, adopted: true };
    }
  }

  /**
   * The attempt's secrets as one swarm secret, labelled like its service. One left by a consumer
   * that died before creating the service holds a token minted then: replaced, since no service
   * uses it (one in use cannot be removed, and the create below then adopts that service).
   */
  private async createSecret(spec: WorkloadSpec): Promise<{ id: string; name: string }> {
    const name = secretNameFor(spec.name);
    const body = { Name: name, Labels: spec.labels, Data: Buffer.from(JSON.stringify(spec.secrets)).toString('base64') };
    try {
      const created = (await this.docker.createSecret(body)) as unknown as { id: string };
      return { id: created.id, name };
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      await unlessMissing(this.docker.getSecret(name).remove()).catch(() => {});
      const created = (await this.docker.createSecret(body)) as unknown as { id: string };
      return { id: created.id, name };
    }
  }

  /** A service starts its task as soon as it is created. */
  async start(): Promise<void> {}

  async inspect(idOrName: string): Promise<WorkloadFacts | null> {
    const service = await this.service(idOrName);
    if (!service) return null;
    const labels = service.Spec.Labels ?? {};
    const env = envRecord(service.Spec.TaskTemplate.ContainerSpec.Env);
    const task = await this.latestTask(service.ID);
    const base = { id: service.ID, name: service.Spec.Name, labels, env, oomKilled: false };
    const stoppedAt = Number(labels[STOPPED_LABEL]) || null;

    if (!task) {
      if (stoppedAt) {
        const seen = this.lastExit.get(service.ID);
        // Stopped by berth and its task already deleted: SIGTERM's code unless the task was seen ending.
        return { ...base, state: 'exited', exitCode: seen?.exitCode ?? 143, startedAt: parseDockerTime(service.CreatedAt), finishedAt: seen?.at ?? stoppedAt };
      }
      return { ...base, state: 'pending', exitCode: 0, startedAt: null, finishedAt: null };
    }

    const state = task.Status?.State ?? 'new';
    const at = parseDockerTime(task.Status?.Timestamp);
    const created = parseDockerTime(task.CreatedAt);
    const node = task.NodeID ? await this.node(task.NodeID) : undefined;
    const where = node ? ` on node ${node.hostname}` : '';
    const exitCode = task.Status?.ContainerStatus?.ExitCode ?? 0;
    const err = task.Status?.Err ?? '';

    if (PENDING.has(state)) {
      // The scheduler says why it cannot place the task ("no suitable node (…)"); give it a while (a node may join).
      if (state === 'pending' && err && created !== null && Date.now() - created > this.placement.scheduleTimeoutMs) {
        return { ...base, state: 'exited', exitCode: -1, startedAt: null, finishedAt: Date.now(), failure: `swarm: no node could take the task within ${Math.round(this.placement.scheduleTimeoutMs / 1000)}s: ${err}` };
      }
      if (node && node.state !== 'ready') return this.nodeLost(base, node.hostname, created);
      return { ...base, state: 'pending', exitCode: 0, startedAt: null, finishedAt: null, ...(node ? { node: node.hostname } : {}) };
    }
    if (state === 'running') {
      // A node that stopped reporting: swarm keeps showing its task as running (for a day). berth does not wait that long.
      if (node && node.state !== 'ready') return this.nodeLost(base, node.hostname, at);
      return { ...base, state: 'running', exitCode: 0, startedAt: at, finishedAt: null, ...(node ? { node: node.hostname } : {}) };
    }
    if (stoppedAt) this.lastExit.set(service.ID, { exitCode, at: at ?? Date.now() });
    const ended = { ...base, state: 'exited' as const, exitCode, startedAt: created, finishedAt: at, ...(node ? { node: node.hostname } : {}) };
    if (state === 'rejected') {
      const image = /no such image|not found|pull access denied/i.test(err) ? ` (is ${String(service.Spec.TaskTemplate.ContainerSpec.Image)} on that node?)` : '';
      return { ...ended, exitCode: -1, failure: `swarm: the task was rejected${where}: ${err || 'no reason given'}${image}` };
    }
    if (state === 'orphaned') return { ...ended, failure: `swarm: the task's node was lost${where}` };
    if (state === 'failed' && !task.Status?.ContainerStatus?.ExitCode) return { ...ended, exitCode: -1, failure: `swarm: the task failed to start${where}: ${err || 'no reason given'}` };
    // complete, failed with an exit code, shutdown (stopped).
    return ended;
  }

  private nodeLost(base: Omit<WorkloadFacts, 'state' | 'exitCode' | 'startedAt' | 'finishedAt'>, hostname: string, startedAt: number | null): WorkloadFacts {
    return { ...base, state: 'exited', exitCode: -1, startedAt, finishedAt: Date.now(), node: hostname, failure: `swarm: node ${hostname} running the task was lost (it stopped answering the managers)` };
  }

  async wait(id: string, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const facts = await this.inspect(id);
      if (!facts || facts.state === 'exited') return;
      await sleep(POLL_MS, signal);
    }
  }

  /**
   * Swarm's follow opens on the task's container and never ends by itself, and one opened before
   * the task runs stays silent: so this returns at once and attaches when the task runs, and ends
   * the stream shortly after the task exits.
   */
  async followLogs(id: string): Promise<NodeJS.ReadableStream & { destroy(): void }> {
    const out = new PassThrough();
    let source: (NodeJS.ReadableStream & { destroy(): void }) | null = null;
    let closed = false;
    out.on('close', () => {
      closed = true;
      source?.destroy();
    });
    void (async () => {
      let facts = await this.inspect(id);
      while (!closed && facts?.state === 'pending') {
        await sleep(POLL_MS);
        facts = await this.inspect(id);
      }
      if (closed || !facts) return out.end();
      if (facts.state === 'exited') {
        out.end(demuxDockerStream((await this.docker.getService(id).logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer));
        return;
      }
      source = unframed((await this.docker.getService(id).logs({ stdout: true, stderr: true, follow: true })) as unknown as NodeJS.ReadableStream & { destroy(): void });
      source.on('data', (chunk: Buffer) => out.write(chunk));
      source.on('end', () => out.end());
      while (!closed && (await this.inspect(id))?.state === 'running') await sleep(POLL_MS);
      await sleep(LOG_DRAIN_MS);
      source.destroy();
      out.end();
    })().catch((error) => out.destroy(error as Error));
    return out;
  }

  async logs(id: string, tailLines = 200): Promise<string> {
    try {
      return demuxDockerStream((await this.docker.getService(id).logs({ stdout: true, stderr: true, follow: false, tail: tailLines })) as unknown as Buffer);
    } catch (error) {
      if (statusOf(error) === 404) return '';
      throw error;
    }
  }

  /**
   * A service cannot be told to stop its task, only updated: zero replicas ends the running task
   * (SIGTERM, then SIGKILL after the grace period) and starts none, and the service stays as the
   * name's holder. The label says it was berth, and when.
   */
  async stop(id: string, graceMs: number): Promise<void> {
    const facts = await this.inspect(id);
    if (!facts || facts.state === 'exited') return;
    await this.endTasks(id, graceMs);
  }

  /**
   * Removes the service; swarm stops its task if it still runs (with its grace period) and removes
   * the container from its node. A service berth stopped (scaled to zero) is removed only once
   * swarm has deleted its stopped task: removing it while swarm's task reaper deletes that task
   * crashes the manager on Docker 20.10 (a nil task in SetServiceTasksRemove, seen here under
   * chaos). A task on a lost node is not waited for past REMOVE_WAIT_MS; swarm removes it when the
   * node is back.
   */
  async remove(id: string): Promise<void> {
    const service = await this.service(id);
    if (!service) return;
    if (service.Spec.Labels?.[STOPPED_LABEL]) {
      const until = Date.now() + REMOVE_WAIT_MS;
      while (Date.now() < until && (await this.docker.listTasks({ filters: { service: [service.ID] } })).length > 0) await sleep(POLL_MS);
    }
    await unlessMissing(this.docker.getService(id).remove());
    this.lastExit.delete(service.ID);
    await this.removeSecret(secretNameFor(service.Spec.Name));
  }

  /** Swarm refuses to remove a secret while the service's tasks still hold it: tried again for a while, then left to the sweep. */
  private async removeSecret(name: string): Promise<void> {
    const until = Date.now() + REMOVE_WAIT_MS;
    for (;;) {
      try {
        await unlessMissing(this.docker.getSecret(name).remove());
        return;
      } catch (error) {
        if (Date.now() > until) return;
        if (!/in use/i.test((error as Error).message)) throw error;
        await sleep(POLL_MS);
      }
    }
  }

  /** Secrets of berth's workers whose service is gone (a consumer died between the two, or a removal gave up). */
  private async sweepSecrets(queue: string, serviceNames: Set<string>): Promise<void> {
    const secrets = (await this.docker.listSecrets({ filters: { label: managedLabelFilter(queue) } })) as unknown as Array<{ ID: string; CreatedAt?: string; Spec?: { Name?: string } }>;
    for (const secret of secrets) {
      const name = secret.Spec?.Name ?? '';
      const owner = name.replace(/-env$/, '');
      const age = Date.now() - (parseDockerTime(secret.CreatedAt) ?? Date.now());
      if (serviceNames.has(owner) || age < ORPHAN_SECRET_MS) continue;
      await unlessMissing(this.docker.getSecret(secret.ID).remove()).catch(() => {});
    }
  }

  /** Zero replicas, once: the running task (if any) is stopped; none starts. */
  private async endTasks(id: string, graceMs: number): Promise<void> {
    for (let tries = 0; tries < 5; tries++) {
      const service = await this.service(id);
      if (!service || service.Spec.Labels?.[STOPPED_LABEL]) return;
      const spec = structuredClone(service.Spec);
      spec.Labels = { ...spec.Labels, [STOPPED_LABEL]: String(Date.now()) };
      spec.Mode = { Replicated: { Replicas: 0 } };
      spec.TaskTemplate.ContainerSpec.StopGracePeriod = graceMs * 1e6;
      try {
        await this.docker.getService(id).update({ _query: { version: service.Version.Index }, _body: spec });
        return;
      } catch (error) {
        // "update out of sequence": someone else changed it between our read and write; read again.
        if (statusOf(error) === 404) return;
        if (!/out of sequence/i.test((error as Error).message)) throw error;
      }
    }
  }

  async listManaged(queue: string): Promise<ManagedWorkload[]> {
    const services = (await this.docker.listServices({ filters: { label: managedLabelFilter(queue) } })) as unknown as ServiceInfo[];
    if (Date.now() - this.sweptAt >= ORPHAN_SECRET_MS) {
      this.sweptAt = Date.now();
      await this.sweepSecrets(queue, new Set(services.map((s) => s.Spec.Name))).catch(() => {});
    }
    if (services.length === 0) return [];
    const tasks = (await this.docker.listTasks({ filters: { service: services.map((s) => s.ID) } })) as unknown as Array<Task & { ServiceID: string }>;
    const newest = new Map<string, Task>();
    for (const task of tasks) {
      const held = newest.get(task.ServiceID);
      if (!held || (task.Version?.Index ?? 0) > (held.Version?.Index ?? 0)) newest.set(task.ServiceID, task);
    }
    return Promise.all(
      services.map(async (service) => {
        const labels = service.Spec.Labels ?? {};
        const task = newest.get(service.ID);
        const state = task?.Status?.State ?? (labels[STOPPED_LABEL] ? 'shutdown' : 'new');
        const node = task?.NodeID ? await this.node(task.NodeID) : undefined;
        return {
          id: service.ID,
          name: service.Spec.Name,
          state: PENDING.has(state) ? 'pending' : state === 'running' && (!node || node.state === 'ready') ? 'running' : 'exited',
          jobId: labels[LABEL.jobId] ?? '',
          attempt: Number(labels[LABEL.attempt] ?? 0),
          labels,
          ...(node ? { node: node.hostname } : {}),
        } satisfies ManagedWorkload;
      }),
    );
  }

  /**
   * An overlay of berth's own, not attachable, so no standalone container can join it. Not a
   * swarm-scoped bridge, though that would keep inter-container traffic off: its local copy breaks
   * after an engine restart ("network … exists", moby/moby#37087), and surviving engine restarts
   * comes first. `none` and `host` do not exist for services; a named network must be swarm-scoped.
   */
  async prepareNetwork(name: string, redisUrl: string): Promise<void> {
    if (name === 'none' || name === 'host') throw new Error(`WORKER_NETWORK=${name} is not available to swarm services; use berth's default or a swarm-scoped network (an --internal one cuts workers off)`);
    const existing = await unlessMissing(this.docker.getNetwork(name).inspect());
    if (!existing) {
      await this.docker
        .createNetwork({ Name: name, Driver: 'overlay', Attachable: false, CheckDuplicate: true, Labels: { [LABEL.managed]: 'true' } } as Dockerode.NetworkCreateOptions)
        .catch((error: unknown) => {
          if (statusOf(error) !== 409) throw error;
        });
      return;
    }
    if (existing.Scope !== 'swarm') throw new Error(`WORKER_NETWORK=${name} is ${existing.Scope}-scoped; swarm services need a swarm-scoped network (docker network create --scope swarm …)`);
    const refused = await networksOfBerthAndRedis(this.docker, new URL(redisUrl).hostname);
    if (refused.has(existing.Id) || refused.has(name)) throw new Error(`WORKER_NETWORK=${name} is a network berth or Redis is on; workers must not share it`);
  }

  /** Not known until a node runs it: swarm gives the network no gateway of its own (each node has its bridge). */
  async networkGateway(): Promise<string> {
    return '';
  }

  /**
   * The image has to be on the nodes, and only the manager can be asked here: a missing image
   * shows per node as a rejected task, named in the failure. The manager's own copy is checked when
   * it can run tasks itself.
   */
  async checkImage(image: string): Promise<void> {
    const self = (await this.docker.info()) as { Swarm?: { NodeID?: string } };
    const node = self.Swarm?.NodeID ? await this.node(self.Swarm.NodeID) : undefined;
    if (node?.availability !== 'active') return;
    try {
      await this.docker.getImage(image).inspect();
    } catch (error) {
      if (statusOf(error) === 404) throw new ImageMissing(image, `the swarm manager ${node.hostname}`);
      throw error;
    }
  }

  async ping(): Promise<void> {
    await this.docker.ping();
  }

  // EGRESS=proxy is refused at config time on a swarm (a proxy per node is still to come).
  async ensureEgressProxy(): Promise<{ id: string; created: boolean }> {
    throw new Error('EGRESS=proxy is not available on a swarm yet');
  }

  async retireEgressProxies(): Promise<string[]> {
    return [];
  }

  async egressProxies(): Promise<Array<{ name: string; running: boolean }>> {
    return [];
  }

  async egressRecord(): Promise<unknown> {
    return null;
  }

  async describe(): Promise<LauncherDescription> {
    const [version, info, nodes] = await Promise.all([
      this.docker.version() as Promise<{ Version: string; ApiVersion: string }>,
      this.docker.info() as Promise<{ SecurityOptions?: string[] }>,
      this.docker.listNodes() as Promise<Array<{ Status?: { State?: string }; Spec?: { Availability?: string } }>>,
    ]);
    const ready = nodes.filter((n) => n.Status?.State === 'ready' && n.Spec?.Availability === 'active').length;
    return { backend: 'swarm', engine: `swarm manager, engine ${version.Version} (API ${version.ApiVersion}), ${ready} of ${nodes.length} nodes ready`, securityOptions: info.SecurityOptions ?? [], nodes: ready };
  }

  /**
   * The image as an immutable reference, as `docker service create` pins it: every node runs the
   * same image, whatever the tag points at later. A registry image by its digest (a node without it
   * pulls that digest); an image built or loaded here by its id, which a node never tries to pull
   * (it only has to have it). A swarm node otherwise tries the registry for a tag on every task,
   * and waits out the registry's timeout where there is none. The tag as given when the manager
   * does not hold the image.
   */
  private async pinned(image: string): Promise<string> {
    if (image.includes('@sha256:') || image.startsWith('sha256:')) return image;
    const info = await unlessMissing(this.docker.getImage(image).inspect());
    if (!info) return image;
    const repository = image.replace(/:[^:/]+$/, '');
    const digest = info.RepoDigests?.find((d) => d.startsWith(`${repository}@`)) ?? info.RepoDigests?.[0];
    return digest ?? info.Id;
  }

  private service(idOrName: string): Promise<ServiceInfo | null> {
    return unlessMissing(this.docker.getService(idOrName).inspect() as Promise<unknown> as Promise<ServiceInfo>);
  }

  private async latestTask(serviceId: string): Promise<Task | null> {
    const tasks = (await this.docker.listTasks({ filters: { service: [serviceId] } })) as unknown as Task[];
    return tasks.reduce<Task | null>((newest, task) => (!newest || (task.Version?.Index ?? 0) > (newest.Version?.Index ?? 0) ? task : newest), null);
  }

  private async node(id: string): Promise<{ hostname: string; state: string; availability: string } | undefined> {
    if (!this.nodes || Date.now() - this.nodes.at > NODE_CACHE_MS) {
      const list = (await this.docker.listNodes()) as Array<{ ID: string; Description?: { Hostname?: string }; Status?: { State?: string }; Spec?: { Availability?: string } }>;
      this.nodes = { at: Date.now(), byId: new Map(list.map((n) => [n.ID, { hostname: n.Description?.Hostname ?? n.ID, state: n.Status?.State ?? 'unknown', availability: n.Spec?.Availability ?? 'active' }])) };
    }
    return this.nodes.byId.get(id);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason instanceof Error ? signal.reason : Object.assign(new Error('aborted'), { name: 'AbortError' }));
      },
      { once: true },
    );
  });
}
