import type Dockerode from 'dockerode';
import { LABEL } from '../../core/labels.js';
import { EGRESS_SOCKET_DIR, EGRESS_STATE_DIR } from '../../egress/config.js';
import { demuxDockerStream } from './docker-frames.js';
import { envList, statusOf, unlessMissing } from './docker-api.js';
import type { EgressProxySpec } from './launcher.js';

/**
 * The egress proxy as a container on one engine: restarted by Docker when it dies
 * (`unless-stopped`), its socket on a named volume workers mount read-only, its records on
 * another that only it mounts. The container's name is the fence: a second consumer creating the
 * same version gets 409 and adopts it.
 */
export class DockerEgress {
  constructor(private readonly docker: Dockerode) {}

  async ensure(spec: EgressProxySpec): Promise<{ id: string; created: boolean }> {
    const existing = await this.inspect(spec.name);
    if (existing) {
      if (!existing.State.Running)
        await this.docker
          .getContainer(existing.Id)
          .start()
          .catch((error: unknown) => (statusOf(error) === 304 ? undefined : Promise.reject(error)));
      return { id: existing.Id, created: false };
    }
    let id: string;
    try {
      id = (await this.docker.createContainer(createOptions(spec))).id;
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      const raced = await this.inspect(spec.name);
      if (!raced) throw error;
      return { id: raced.Id, created: false };
    }
    for (const network of spec.networks.slice(1)) await this.docker.getNetwork(network).connect({ Container: id });
    await this.docker.getContainer(id).start();
    return { id, created: true };
  }

  async list(queue: string): Promise<Array<{ name: string; running: boolean }>> {
    return (await this.proxies(queue)).map(({ name, running }) => ({ name, running }));
  }

  /** Old versions go once no running worker names them; their volumes with them. */
  async retire(queue: string, current: string): Promise<string[]> {
    const removed: string[] = [];
    for (const { id, name } of await this.proxies(queue)) {
      if (name === current) continue;
      const users = await this.docker.listContainers({
        filters: { label: [`${LABEL.egress}=${name}`], status: ['created', 'running', 'restarting', 'paused'] },
      });
      if (users.length > 0) continue;
      await unlessMissing(this.docker.getContainer(id).remove({ force: true, v: true }));
      for (const volume of [name, `${name}-state`])
        await this.docker
          .getVolume(volume)
          .remove()
          .catch(() => {});
      removed.push(name);
    }
    return removed;
  }

  /** Asks the proxy, inside its own container (no network between berth and it is needed); the attempt's credentials end with it. */
  record(proxyName: string, attempt: string): Promise<unknown> {
    return this.report(proxyName, [attempt, '--end']);
  }

  /** The attempts whose model budget the proxy found spent. */
  async overBudget(proxyName: string): Promise<string[]> {
    return ((await this.report(proxyName, ['--over-budget'])) as string[] | null) ?? [];
  }

  private async report(proxyName: string, args: string[]): Promise<unknown> {
    const exec = await this.docker
      .getContainer(proxyName)
      .exec({ Cmd: ['node', '/app/dist/egress/report.js', ...args], AttachStdout: true, AttachStderr: true });
    const stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream;
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const { ExitCode } = (await exec.inspect()) as { ExitCode: number | null };
    if (ExitCode === 3) return null;
    const output = demuxDockerStream(Buffer.concat(chunks)).trim();
    if (ExitCode !== 0) throw new Error(`the egress proxy's report failed (exit ${ExitCode}): ${output.slice(0, 200)}`);
    return JSON.parse(output.split('\n').pop() ?? 'null') as unknown;
  }

  private inspect(name: string): Promise<Dockerode.ContainerInspectInfo | null> {
    return unlessMissing(this.docker.getContainer(name).inspect());
  }

  private async proxies(queue: string): Promise<Array<{ id: string; name: string; running: boolean }>> {
    const found = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.egressProxy}=${queue}`] } });
    return found.map((p) => ({ id: p.Id, name: p.Names[0]?.replace(/^\//, '') ?? p.Id, running: p.State === 'running' }));
  }
}

function createOptions(spec: EgressProxySpec): Dockerode.ContainerCreateOptions {
  return {
    name: spec.name,
    Image: spec.image,
    Entrypoint: spec.command,
    Cmd: [],
    User: `${spec.uid}:${spec.gid}`,
    Env: envList(spec.env),
    Labels: spec.labels,
    Healthcheck: { Test: ['NONE'] },
    StopSignal: 'SIGTERM',
    HostConfig: {
      Init: true,
      // The engine brings it back when it dies; berth's shutdown never stops it.
      RestartPolicy: { Name: 'unless-stopped' },
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=64m,mode=1777' },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      Memory: spec.memoryBytes,
      MemorySwap: spec.memoryBytes,
      PidsLimit: 256,
      NetworkMode: spec.networks[0] ?? 'bridge',
      Mounts: [
        { Type: 'volume', Source: spec.socketVolume, Target: EGRESS_SOCKET_DIR },
        { Type: 'volume', Source: spec.stateVolume, Target: EGRESS_STATE_DIR },
      ],
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
    },
  };
}
