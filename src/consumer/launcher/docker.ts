import { randomUUID } from 'node:crypto';
import Dockerode from 'dockerode';
import { LABEL, managedLabelFilter } from '../../core/labels.js';
import { prepareWorkerNetwork } from './worker-network.js';
import { resolveDockerEndpoint } from '../../core/docker-endpoint.js';

export interface ContainerFacts {
  id: string;
  name: string;
  /** Docker's own state: created, running, exited, dead, … */
  state: string;
  exitCode: number;
  oomKilled: boolean;
  startedAt: number | null;
  finishedAt: number | null;
  labels: Record<string, string>;
  /** The container's environment (its secrets to mask, its token to revoke). Never logged or stored. */
  env: Record<string, string>;
}

export interface ManagedContainer {
  id: string;
  name: string;
  state: string;
  jobId: string;
  attempt: number;
  labels: Record<string, string>;
}

/** A client for the engine the config names (TLS with client certificates for a TCP engine). */
export function dockerClient(settings: Parameters<typeof resolveDockerEndpoint>[0]): Dockerode {
  const endpoint = resolveDockerEndpoint(settings);
  if (typeof endpoint === 'string') throw new Error(endpoint);
  if (endpoint.kind === 'socket') return new Dockerode({ socketPath: endpoint.socketPath });
  if (!endpoint.tls) return new Dockerode({ host: endpoint.host, port: endpoint.port, protocol: 'http' });
  return new Dockerode({ host: endpoint.host, port: endpoint.port, protocol: 'https', ...endpoint.tls });
}

const ENGINE_ID_VOLUME = 'berth-engine-identity';
const ENGINE_ID_LABEL = 'berth.engine-id';

/** The worker image is not on the engine: retrying cannot help until an operator builds or pulls it. */
export class ImageMissing extends Error {
  constructor(readonly image: string) {
    super(`worker image ${image} is not on this Docker engine; build or pull it (WORKER_IMAGE), then retry the task`);
  }
}

const statusOf = (error: unknown): number | undefined => (error as { statusCode?: number } | null)?.statusCode;

/** Docker reports "never" as year 1; berth reports it as null. */
function parseDockerTime(text: string | undefined): number | null {
  if (!text || text.startsWith('0001-')) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * Everything berth does to containers, in Docker's terms. Idempotent where Docker lets it be:
 * a name conflict on create is an adoption, and stopping or removing what is already gone is
 * not an error, so a consumer can repeat any step after a crash.
 */
export class DockerLauncher {
  private engine: Promise<string> | null = null;

  constructor(readonly docker: Dockerode) {}

  /**
   * A stable identity for this engine, for the cross-engine fence. Docker's own `info.ID` is not
   * enough: engines that share /etc/docker (two daemons on one host, cloned VMs) report the same
   * one. berth keeps its own in the labels of a named volume: creating a volume that exists returns
   * the existing one, so every consumer on this engine, now or after a restart, reads the same id.
   */
  engineId(): Promise<string> {
    this.engine ??= (async () => {
      const volume = (await this.docker.createVolume({ Name: ENGINE_ID_VOLUME, Labels: { [ENGINE_ID_LABEL]: randomUUID() } })) as unknown as { Labels?: Record<string, string> };
      const stored = volume.Labels?.[ENGINE_ID_LABEL] ?? (await this.docker.getVolume(ENGINE_ID_VOLUME).inspect()).Labels?.[ENGINE_ID_LABEL];
      if (!stored) throw new Error(`volume ${ENGINE_ID_VOLUME} has no ${ENGINE_ID_LABEL} label`);
      return stored;
    })();
    this.engine.catch(() => (this.engine = null));
    return this.engine;
  }

  /** Creates the container, or finds the one a previous consumer created under the same name. */
  async createOrAdopt(spec: Dockerode.ContainerCreateOptions): Promise<{ id: string; adopted: boolean }> {
    try {
      const container = await this.docker.createContainer(spec);
      return { id: container.id, adopted: false };
    } catch (error) {
      if (statusOf(error) === 404 && /no such image/i.test((error as Error).message)) throw new ImageMissing(String(spec.Image));
      if (statusOf(error) !== 409) throw error;
      const existing = await this.inspect(spec.name!);
      if (!existing) throw error;
      return { id: existing.id, adopted: true };
    }
  }

  async start(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (error) {
      if (statusOf(error) !== 304) throw error; // already started
    }
  }

  async inspect(idOrName: string): Promise<ContainerFacts | null> {
    try {
      const info = await this.docker.getContainer(idOrName).inspect();
      return {
        id: info.Id,
        name: info.Name.replace(/^\//, ''),
        state: info.State.Status,
        exitCode: info.State.ExitCode,
        oomKilled: info.State.OOMKilled,
        startedAt: parseDockerTime(info.State.StartedAt),
        finishedAt: parseDockerTime(info.State.FinishedAt),
        labels: info.Config.Labels ?? {},
        env: Object.fromEntries((info.Config.Env ?? []).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)])),
      };
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  /** Resolves when the container is no longer running. Rejects with AbortError when `signal` fires. */
  async wait(id: string, signal?: AbortSignal): Promise<void> {
    await this.docker.getContainer(id).wait({ condition: 'not-running', abortSignal: signal });
  }

  /**
   * The end of a container's output (stdout and stderr interleaved): Docker's own `tail`, so a
   * container that printed gigabytes costs the same as one that printed a line. The worker's result
   * line is always its last line.
   */
  async logs(id: string, tailLines = 200, maxBytes = 1_048_576): Promise<string> {
    try {
      const raw = (await this.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, tail: tailLines })) as unknown as Buffer;
      const text = demuxDockerStream(raw);
      return text.length > maxBytes ? text.slice(text.length - maxBytes) : text;
    } catch (error) {
      if (statusOf(error) === 404) return '';
      throw error;
    }
  }

  /** The container's output from its start, as Docker's multiplexed stream, following until it exits. */
  async followLogs(id: string): Promise<NodeJS.ReadableStream & { destroy(): void }> {
    return (await this.docker.getContainer(id).logs({ follow: true, stdout: true, stderr: true, timestamps: false })) as NodeJS.ReadableStream & { destroy(): void };
  }

  /** SIGTERM, then SIGKILL after `graceMs`. A no-op on a stopped or vanished container. */
  async stop(id: string, graceMs: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.ceil(graceMs / 1000) });
    } catch (error) {
      const status = statusOf(error);
      if (status !== 304 && status !== 404) throw error;
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (error) {
      const status = statusOf(error);
      // 409: removal already in progress by someone else.
      if (status !== 404 && status !== 409) throw error;
    }
  }

  async listManaged(queue: string): Promise<ManagedContainer[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: managedLabelFilter(queue) } });
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      state: c.State,
      jobId: c.Labels[LABEL.jobId] ?? '',
      attempt: Number(c.Labels[LABEL.attempt] ?? 0),
      labels: c.Labels,
    }));
  }

  /** Creates berth's own worker network when needed and refuses one berth or Redis is on. */
  async prepareNetwork(name: string, redisUrl: string): Promise<void> {
    await prepareWorkerNetwork(this.docker, name, redisUrl);
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

  async ping(): Promise<void> {
    await this.docker.ping();
  }
}

/** Docker multiplexes stdout/stderr of non-TTY containers as [stream, 0, 0, 0, size(4 bytes BE)] frames. */
export function demuxDockerStream(raw: Buffer | string): string {
  if (typeof raw === 'string') return raw;
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const size = raw.readUInt32BE(offset + 4);
    parts.push(raw.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}
