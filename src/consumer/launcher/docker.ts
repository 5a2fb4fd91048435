import { randomUUID } from 'node:crypto';
import Dockerode from 'dockerode';
import { LABEL, managedLabelFilter } from '../../core/labels.js';
import { containerName } from '../../core/names.js';
import { prepareWorkerNetwork } from './worker-network.js';
import type { DockerEndpoint } from '../../core/docker-endpoint.js';
import { buildWorkloadSpec } from './spec.js';
import { DockerEgress } from './docker-egress.js';
import { envList, statusOf, unlessMissing } from './docker-api.js';
import { DockerWorkload, workloadState } from './docker-workload.js';
import {
  ImageMissing,
  parseBind,
  type EgressProxySpec,
  type Launcher,
  type LauncherDescription,
  type ManagedWorkload,
  type Workload,
  type WorkloadSpec,
} from './launcher.js';

/** A client for the engine the config names (TLS with client certificates for a TCP engine). */
export function dockerClient(endpoint: DockerEndpoint): Dockerode {
  if (endpoint.kind === 'socket') return new Dockerode({ socketPath: endpoint.socketPath });
  if (!endpoint.tls) return new Dockerode({ host: endpoint.host, port: endpoint.port, protocol: 'http' });
  return new Dockerode({ host: endpoint.host, port: endpoint.port, protocol: 'https', ...endpoint.tls });
}

const ENGINE_ID_VOLUME = 'berth-engine-identity';
const ENGINE_ID_LABEL = 'berth.engine-id';

/** The neutral spec as a container: every hardening setting Docker has, and it has them all. */
export function containerCreateOptions(spec: WorkloadSpec): Dockerode.ContainerCreateOptions {
  const tmpfs = `rw,nosuid,nodev,size=${spec.tmpfsBytes}`;
  return {
    name: spec.name,
    Image: spec.image,
    Entrypoint: spec.command,
    Cmd: [],
    User: `${spec.uid}:${spec.gid}`,
    WorkingDir: spec.workingDir,
    // One engine has no secret store of its own; the environment is seen only by the socket's holders.
    Env: envList({ ...spec.env, ...spec.secrets }),
    Labels: spec.labels,
    // The image's HEALTHCHECK probes berth's API; a worker container has none.
    Healthcheck: { Test: ['NONE'] },
    StopSignal: 'SIGTERM',
    StopTimeout: Math.ceil(spec.stopGraceMs / 1000),
    NetworkDisabled: spec.network === 'none',
    HostConfig: {
      Init: true,
      ReadonlyRootfs: true,
      Tmpfs: { '/work': `${tmpfs},uid=${spec.uid},gid=${spec.gid},mode=0700`, '/tmp': `${tmpfs},mode=1777` },
      CapDrop: ['ALL'],
      CapAdd: spec.capAdd,
      SecurityOpt: ['no-new-privileges:true'],
      Privileged: false,
      Memory: spec.memoryBytes,
      MemorySwap: spec.memoryBytes,
      NanoCpus: spec.nanoCpus,
      PidsLimit: spec.pidsLimit,
      NetworkMode: spec.network,
      Binds: spec.binds.map((bind) => {
        const { source, target, readOnly } = parseBind(bind);
        return `${source}:${target}${readOnly ? ':ro' : ''}`;
      }),
      ...(spec.volumes.length
        ? { Mounts: spec.volumes.map((v) => ({ Type: 'volume' as const, Source: v.source, Target: v.target, ReadOnly: v.readOnly })) }
        : {}),
      IpcMode: 'private',
      LogConfig: { Type: 'json-file', Config: { 'max-size': spec.logMaxSize, 'max-file': '1' } },
      RestartPolicy: { Name: 'no' },
      AutoRemove: false,
    },
  };
}

/** The container berth would create for a request: what the benches hand to bare dockerode as their baseline. */
export function buildContainerSpec(...args: Parameters<typeof buildWorkloadSpec>): Dockerode.ContainerCreateOptions {
  return containerCreateOptions(buildWorkloadSpec(...args));
}

/**
 * Everything berth does to containers, in Docker's terms. Idempotent where Docker lets it be:
 * a name conflict on create is an adoption, and stopping or removing what is already gone is
 * not an error, so a consumer can repeat any step after a crash.
 */
export class DockerLauncher implements Launcher {
  readonly backend = 'docker' as const;
  readonly noun = 'container' as const;
  private engine: Promise<string> | null = null;

  private readonly egress: DockerEgress;

  constructor(readonly docker: Dockerode) {
    this.egress = new DockerEgress(docker);
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

  egressRecord(proxyName: string, attempt: string): Promise<unknown> {
    return this.egress.record(proxyName, attempt);
  }

  egressOverBudget(proxyName: string): Promise<string[]> {
    return this.egress.overBudget(proxyName);
  }

  nameFor(queue: string, jobId: string, attempt: number): string {
    return containerName(queue, jobId, attempt);
  }

  /**
   * A stable identity for this engine, for the cross-engine fence. Docker's own `info.ID` is not
   * enough: engines that share /etc/docker (two daemons on one host, cloned VMs) report the same
   * one. berth keeps its own in the labels of a named volume: creating a volume that exists returns
   * the existing one, so every consumer on this engine, now or after a restart, reads the same id.
   */
  engineId(): Promise<string> {
    this.engine ??= (async () => {
      const volume = (await this.docker.createVolume({ Name: ENGINE_ID_VOLUME, Labels: { [ENGINE_ID_LABEL]: randomUUID() } })) as unknown as {
        Labels?: Record<string, string>;
      };
      const stored = volume.Labels?.[ENGINE_ID_LABEL] ?? (await this.docker.getVolume(ENGINE_ID_VOLUME).inspect()).Labels?.[ENGINE_ID_LABEL];
      if (!stored) throw new Error(`volume ${ENGINE_ID_VOLUME} has no ${ENGINE_ID_LABEL} label`);
      return stored;
    })();
    this.engine.catch(() => (this.engine = null));
    return this.engine;
  }

  /** Creates the container, or finds the one a previous consumer created under the same name. */
  async createOrAdopt(spec: WorkloadSpec): Promise<{ workload: Workload; adopted: boolean }> {
    try {
      const container = await this.docker.createContainer(containerCreateOptions(spec));
      // The hot path: create, start, one inspect, as the bare-dockerode baseline does.
      return { workload: new DockerWorkload(this.docker, container.id, true), adopted: false };
    } catch (error) {
      if (statusOf(error) === 404 && /no such image/i.test((error as Error).message)) throw new ImageMissing(spec.image);
      if (statusOf(error) !== 409) throw error;
      const existing = await this.handle(spec.name).inspect();
      if (!existing) throw error;
      return { workload: this.handle(existing.id), adopted: true };
    }
  }

  handle(idOrName: string): Workload {
    return new DockerWorkload(this.docker, idOrName);
  }

  async listManaged(queue: string): Promise<ManagedWorkload[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: managedLabelFilter(queue) } });
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      state: workloadState(c.State),
      jobId: c.Labels[LABEL.jobId] ?? '',
      attempt: Number(c.Labels[LABEL.attempt] ?? 0),
      labels: c.Labels,
    }));
  }

  /** Creates berth's own worker network when needed and refuses one berth or Redis is on. */
  async prepareNetwork(name: string, redisUrl: string): Promise<void> {
    await prepareWorkerNetwork(this.docker, name, redisUrl);
  }

  async imageId(image: string): Promise<string | null> {
    return (await unlessMissing(this.docker.getImage(image).inspect()))?.Id ?? null;
  }

  /** Rejects when the image is not on the engine. */
  async checkImage(image: string): Promise<void> {
    try {
      await this.docker.getImage(image).inspect();
    } catch (error) {
      if (statusOf(error) === 404) throw new ImageMissing(image);
      throw error;
    }
  }

  async networkGateway(name: string): Promise<string> {
    const network = await this.docker.getNetwork(name).inspect();
    return (network.IPAM?.Config?.[0]?.Gateway as string | undefined) ?? '';
  }

  async ping(): Promise<void> {
    await this.docker.ping();
  }

  async describe(): Promise<LauncherDescription> {
    const [version, info] = await Promise.all([
      this.docker.version() as Promise<{ Version: string; ApiVersion: string }>,
      this.docker.info() as Promise<{ SecurityOptions?: string[] }>,
    ]);
    return { backend: 'docker', engine: `engine ${version.Version} (API ${version.ApiVersion})`, securityOptions: info.SecurityOptions ?? [] };
  }
}
