import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import { LABEL, managedLabelFilter } from '../../../core/labels.js';
import { parseDockerTime, statusOf, unlessMissing } from '../docker-api.js';
import { networksOfBerthAndRedis } from '../worker-network.js';
import {
  type EgressProxySpec,
  ImageMissing,
  type Launcher,
  type LauncherDescription,
  type ManagedWorkload,
  type Workload,
  type WorkloadFacts,
  type WorkloadSpec,
} from '../launcher.js';
import { SwarmEgress } from './egress.js';
import { SEALED_NETWORK, SERVICE_NAME, STOPPED_LABEL, secretNameFor, serviceSpec, type SwarmPlacement } from './service-spec.js';
import { listedState, taskFacts, type NodeInfo, type ServiceInfo, type Task } from './task-facts.js';
import { POLL_MS, SwarmWorkload, type SwarmServices } from './workload.js';

/** How long node states are reused across inspects: enough to notice a lost node, few API calls. */
const NODE_CACHE_MS = 1_000;
/** How long a removal waits for swarm to delete the service's tasks (and their containers). */
const REMOVE_WAIT_MS = 10_000;
/** A secret whose service is gone is swept after this long (a create may be between the two calls). */
const ORPHAN_SECRET_MS = 60_000;

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
export class SwarmLauncher implements Launcher, SwarmServices {
  readonly backend = 'swarm' as const;
  readonly noun = 'service' as const;
  private cluster: Promise<string> | null = null;
  /** When orphan secrets were last swept: listManaged runs on every reconcile pass and scrape, the sweep needs far less. */
  private sweptAt = 0;
  private nodes: { at: number; byId: Map<string, NodeInfo> } | null = null;
  /** The last exit code seen per stopped service, in case swarm has deleted the stopped task by the time berth looks. */
  private readonly lastExit = new Map<string, { exitCode: number; at: number }>();

  private readonly egress: SwarmEgress;
  private sealed: Promise<void> | null = null;

  constructor(
    readonly docker: Dockerode,
    private readonly placement: SwarmPlacement,
  ) {
    this.egress = new SwarmEgress(docker, placement);
  }

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

  async createOrAdopt(spec: WorkloadSpec): Promise<{ workload: Workload; adopted: boolean }> {
    const existing = await this.service(spec.name);
    if (existing) return { workload: this.handle(existing.ID), adopted: true };
    if (spec.network === 'none') await this.sealedNetwork();
    let secret: { id: string; name: string } | undefined;
    try {
      secret = Object.keys(spec.secrets).length ? await this.createSecret(spec) : undefined;
    } catch (error) {
      // The secret is in use: another consumer made it and its service in the meantime.
      const adopted = await this.service(spec.name);
      if (adopted) return { workload: this.handle(adopted.ID), adopted: true };
      throw error;
    }
    try {
      const service = (await this.docker.createService(serviceSpec({ ...spec, image: await this.pinned(spec.image) }, this.placement, secret))) as unknown as {
        id: string;
      };
      return { workload: this.handle(service.id), adopted: false };
    } catch (error) {
      if (statusOf(error) !== 409) {
        if (secret) await unlessMissing(this.docker.getSecret(secret.id).remove()).catch(() => {});
        throw error;
      }
      // Another consumer created the service between our look and our create: its own secret is in
      // use; the one made here is not (removing it fails harmlessly if it is the same one).
      const adopted = await this.service(spec.name);
      if (!adopted) throw error;
      return { workload: this.handle(adopted.ID), adopted: true };
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

  handle(idOrName: string): Workload {
    return new SwarmWorkload(this, idOrName);
  }

  /** The service's facts from its newest task (for its handle). */
  async facts(idOrName: string): Promise<WorkloadFacts | null> {
    const service = await this.service(idOrName);
    if (!service) return null;
    const task = await this.latestTask(service.ID);
    const node = task?.NodeID ? await this.node(task.NodeID) : undefined;
    const facts = taskFacts(service, {
      task,
      node,
      scheduleTimeoutMs: this.placement.scheduleTimeoutMs,
      lastExit: this.lastExit.get(service.ID),
      now: Date.now(),
    });
    if (task && facts.state === 'exited' && service.Spec.Labels?.[STOPPED_LABEL])
      this.lastExit.set(service.ID, { exitCode: facts.exitCode, at: facts.finishedAt ?? Date.now() });
    return facts;
  }

  /**
   * Removes the service; swarm stops its task if it still runs (with its grace period) and removes
   * the container from its node. A service berth stopped (scaled to zero) is removed only once
   * swarm has deleted its stopped task: removing it while swarm's task reaper deletes that task
   * crashes the manager on Docker 20.10 (a nil task in SetServiceTasksRemove, seen here under
   * chaos). A task on a lost node is not waited for past REMOVE_WAIT_MS; swarm removes it when the
   * node is back.
   */
  async removeService(id: string): Promise<void> {
    const service = await this.service(id);
    if (!service) return;
    if (service.Spec.Labels?.[STOPPED_LABEL]) {
      const until = Date.now() + REMOVE_WAIT_MS;
      while (Date.now() < until && (await this.docker.listTasks({ filters: { service: [service.ID] } })).length > 0) await delay(POLL_MS);
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
        await delay(POLL_MS);
      }
    }
  }

  /** Secrets of berth's workers whose service is gone (a consumer died between the two, or a removal gave up). */
  private async sweepSecrets(queue: string, serviceNames: Set<string>): Promise<void> {
    const secrets = (await this.docker.listSecrets({ filters: { label: managedLabelFilter(queue) } })) as unknown as Array<{
      ID: string;
      CreatedAt?: string;
      Spec?: { Name?: string };
    }>;
    for (const secret of secrets) {
      const name = secret.Spec?.Name ?? '';
      const owner = name.replace(/-env$/, '');
      const age = Date.now() - (parseDockerTime(secret.CreatedAt) ?? Date.now());
      if (serviceNames.has(owner) || age < ORPHAN_SECRET_MS) continue;
      await unlessMissing(this.docker.getSecret(secret.ID).remove()).catch(() => {});
    }
  }

  /** Zero replicas, once: the running task (if any) is stopped; none starts. The label says it was berth, and when. */
  async endTasks(id: string, graceMs: number): Promise<void> {
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
          state: listedState(state, node),
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
    if (name === 'none' || name === 'host')
      throw new Error(
        `WORKER_NETWORK=${name} is not available to swarm services; use berth's default or a swarm-scoped network (an --internal one cuts workers off)`,
      );
    const existing = await unlessMissing(this.docker.getNetwork(name).inspect());
    if (!existing) return this.createOverlay(name, { internal: false });
    if (existing.Scope !== 'swarm')
      throw new Error(`WORKER_NETWORK=${name} is ${existing.Scope}-scoped; swarm services need a swarm-scoped network (docker network create --scope swarm …)`);
    const refused = await networksOfBerthAndRedis(this.docker, new URL(redisUrl).hostname);
    if (refused.has(existing.Id) || refused.has(name)) throw new Error(`WORKER_NETWORK=${name} is a network berth or Redis is on; workers must not share it`);
  }

  /** An overlay of berth's own, not attachable (no standalone container joins it); one another consumer made first is as good. */
  private async createOverlay(name: string, { internal }: { internal: boolean }): Promise<void> {
    await this.docker
      .createNetwork({
        Name: name,
        Driver: 'overlay',
        Internal: internal,
        Attachable: false,
        CheckDuplicate: true,
        Labels: { [LABEL.managed]: 'true' },
      } as Dockerode.NetworkCreateOptions)
      .catch((error: unknown) => {
        if (statusOf(error) !== 409) throw error;
      });
  }

  /** berth's sealed overlay, made once per process (and found when another consumer made it). */
  private sealedNetwork(): Promise<void> {
    this.sealed ??= (async () => {
      if (await unlessMissing(this.docker.getNetwork(SEALED_NETWORK).inspect())) return;
      await this.createOverlay(SEALED_NETWORK, { internal: true });
    })();
    this.sealed.catch(() => (this.sealed = null));
    return this.sealed;
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

  ensureEgressProxy(spec: EgressProxySpec): Promise<{ id: string; created: boolean }> {
    return this.egress.ensure(spec);
  }

  retireEgressProxies(queue: string, current: string): Promise<string[]> {
    return this.egress.retire(queue, current);
  }

  egressProxies(queue: string): Promise<Array<{ name: string; running: boolean }>> {
    return this.egress.list(queue);
  }

  egressRecord(proxyName: string, attempt: string, since?: number): Promise<unknown> {
    return this.egress.record(proxyName, attempt, since);
  }

  /** The manager's copy, as services are pinned to it. */
  async imageId(image: string): Promise<string | null> {
    return (await unlessMissing(this.docker.getImage(image).inspect()))?.Id ?? null;
  }

  egressOverBudget(proxyName: string): Promise<string[]> {
    return this.egress.overBudget(proxyName);
  }

  async describe(): Promise<LauncherDescription> {
    const [version, info, nodes] = await Promise.all([
      this.docker.version() as Promise<{ Version: string; ApiVersion: string }>,
      this.docker.info() as Promise<{ SecurityOptions?: string[] }>,
      this.docker.listNodes() as Promise<Array<{ Status?: { State?: string }; Spec?: { Availability?: string } }>>,
    ]);
    const ready = nodes.filter((n) => n.Status?.State === 'ready' && n.Spec?.Availability === 'active').length;
    return {
      backend: 'swarm',
      engine: `swarm manager, engine ${version.Version} (API ${version.ApiVersion}), ${ready} of ${nodes.length} nodes ready`,
      securityOptions: info.SecurityOptions ?? [],
      nodes: ready,
    };
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

  private async node(id: string): Promise<NodeInfo | undefined> {
    if (!this.nodes || Date.now() - this.nodes.at > NODE_CACHE_MS) {
      const list = (await this.docker.listNodes()) as Array<{
        ID: string;
        Description?: { Hostname?: string };
        Status?: { State?: string };
        Spec?: { Availability?: string };
      }>;
      this.nodes = {
        at: Date.now(),
        byId: new Map(
          list.map((n) => [
            n.ID,
            { hostname: n.Description?.Hostname ?? n.ID, state: n.Status?.State ?? 'unknown', availability: n.Spec?.Availability ?? 'active' },
          ]),
        ),
      };
    }
    return this.nodes.byId.get(id);
  }
}
