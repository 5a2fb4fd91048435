import type Dockerode from 'dockerode';
import { LABEL } from '../../../core/labels.js';
import { EGRESS_SOCKET_DIR, EGRESS_STATE_DIR } from '../../../egress/config.js';
import { journalEvents, overBudgetIn, replayJournal, type JournalEvent } from '../../../egress/journal.js';
import { demuxDockerStream } from '../docker-frames.js';
import { envList, statusOf, unlessMissing } from '../docker-api.js';
import type { EgressProxySpec } from '../launcher.js';
import { secretNameFor, type SwarmPlacement } from './service-spec.js';

/** Where the proxy finds its settings (the signing secret, the model keys): a swarm secret, never the service's Env. */
const ENV_FILE = '/run/secrets/berth-egress-env';
/** How far back the first look for spent budgets reads the proxy's journal (later looks read from the last one on). */
const FIRST_LOOK_MS = 6 * 3_600_000;
/** Journal lines of the same second may come after a look: each look reads again from a little before the last. */
const LOOK_OVERLAP_S = 2;

/**
 * The egress proxy on a swarm: a global service, so every node that can take workers (the same
 * constraints) runs one, restarted by swarm when it dies; berth's shutdown never removes it. A
 * worker reaches the proxy of its own node through the socket volume (a node-local volume of the
 * same name on each node). The manager's refusal of a second service with the same name is the
 * fence. berth cannot exec into another node's container, so it reads what the proxy recorded
 * from the service's logs, which the manager gathers from every node: the proxy journals each
 * change of an attempt's record there (egress/journal.ts).
 */
export class SwarmEgress {
  private readonly looks = new Map<string, { since: number; over: Set<string> }>();

  constructor(
    private readonly docker: Dockerode,
    private readonly placement: Pick<SwarmPlacement, 'constraints'>,
  ) {}

  async ensure(spec: EgressProxySpec): Promise<{ id: string; created: boolean }> {
    const existing = await this.service(spec.name);
    if (existing) return { id: existing.ID, created: false };
    const secret = await this.secretFor(spec);
    try {
      const created = (await this.docker.createService(proxyServiceSpec(spec, this.placement, secret))) as unknown as { id: string };
      return { id: created.id, created: true };
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      const raced = await this.service(spec.name);
      if (!raced) throw error;
      return { id: raced.ID, created: false };
    }
  }

  /** The version's settings as a secret; one left by an earlier try holds the same settings (its name carries their digest). */
  private async secretFor(spec: EgressProxySpec): Promise<{ id: string; name: string }> {
    const name = secretNameFor(spec.name);
    try {
      const created = (await this.docker.createSecret({
        Name: name,
        Labels: spec.labels,
        Data: Buffer.from(JSON.stringify(spec.env)).toString('base64'),
      })) as unknown as { id: string };
      return { id: created.id, name };
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      const found = (await this.docker.getSecret(name).inspect()) as { ID: string };
      return { id: found.ID, name };
    }
  }

  /** Running: at least one of its tasks runs (one per node that can take workers). */
  async list(queue: string): Promise<Array<{ name: string; running: boolean }>> {
    const services = await this.proxies(queue);
    if (services.length === 0) return [];
    const tasks = (await this.docker.listTasks({ filters: { service: services.map((s) => s.ID), 'desired-state': ['running'] } })) as Array<{
      ServiceID: string;
      Status?: { State?: string };
    }>;
    return services.map((s) => ({ name: s.Spec.Name, running: tasks.some((t) => t.ServiceID === s.ID && t.Status?.State === 'running') }));
  }

  /**
   * Old versions go once no worker service names them, with their secret. Their node-local volumes
   * stay on the nodes (the manager cannot remove another node's volume); they hold a socket and
   * the records of finished attempts.
   */
  async retire(queue: string, current: string): Promise<string[]> {
    const removed: string[] = [];
    for (const service of await this.proxies(queue)) {
      const name = service.Spec.Name;
      if (name === current) continue;
      const users = await this.docker.listServices({ filters: { label: [`${LABEL.egress}=${name}`] } });
      if (users.length > 0) continue;
      await unlessMissing(this.docker.getService(service.ID).remove());
      // Swarm refuses while the service's tasks still hold it; the next pass tries again.
      await unlessMissing(this.docker.getSecret(secretNameFor(name)).remove()).catch(() => {});
      removed.push(name);
    }
    return removed;
  }

  /** The attempt's record, replayed from the journal since the attempt started; null when the journal never named it. */
  async record(proxyName: string, attempt: string, since?: number): Promise<unknown> {
    return replayJournal(await this.journal(proxyName, since === undefined ? undefined : since / 1000 - LOOK_OVERLAP_S), attempt);
  }

  /** The attempts whose budget the proxy found spent, from the journal lines since the last look. */
  async overBudget(proxyName: string): Promise<string[]> {
    let look = this.looks.get(proxyName);
    if (!look) {
      look = { since: (Date.now() - FIRST_LOOK_MS) / 1000, over: new Set() };
      this.looks.set(proxyName, look);
    }
    const from = look.since;
    look.since = Date.now() / 1000;
    for (const attempt of overBudgetIn(await this.journal(proxyName, from - LOOK_OVERLAP_S))) look.over.add(attempt);
    return [...look.over];
  }

  private async journal(proxyName: string, sinceSeconds?: number): Promise<JournalEvent[]> {
    const raw = (await unlessMissing(
      this.docker.getService(proxyName).logs({
        stdout: true,
        stderr: false,
        follow: false,
        ...(sinceSeconds === undefined ? {} : { since: Math.max(0, Math.floor(sinceSeconds)) }),
      }),
    )) as unknown as Buffer | null;
    return raw ? journalEvents(demuxDockerStream(raw).split('\n')) : [];
  }

  private service(name: string): Promise<{ ID: string } | null> {
    return unlessMissing(this.docker.getService(name).inspect() as Promise<{ ID: string }>);
  }

  private async proxies(queue: string): Promise<Array<{ ID: string; Spec: { Name: string } }>> {
    return (await this.docker.listServices({ filters: { label: [`${LABEL.egressProxy}=${queue}`] } })) as unknown as Array<{
      ID: string;
      Spec: { Name: string };
    }>;
  }
}

/** The proxy under the workers' own hardening, on every node the operator's constraints allow workers on. */
export function proxyServiceSpec(
  spec: EgressProxySpec,
  placement: Pick<SwarmPlacement, 'constraints'>,
  secret: { id: string; name: string },
): Record<string, unknown> {
  return {
    Name: spec.name,
    Labels: spec.labels,
    Mode: { Global: {} },
    EndpointSpec: { Mode: 'dnsrr' },
    TaskTemplate: {
      ContainerSpec: {
        Image: spec.image,
        // Swarm cannot set no-new-privileges (moby/moby#41371).
        Command: ['setpriv', '--no-new-privs', '--', ...spec.command],
        Args: [],
        User: `${spec.uid}:${spec.gid}`,
        Env: envList({ EGRESS_ENV_FILE: ENV_FILE, EGRESS_JOURNAL: '1' }),
        Labels: spec.labels,
        Secrets: [
          {
            SecretID: secret.id,
            SecretName: secret.name,
            File: { Name: ENV_FILE.split('/').pop(), UID: String(spec.uid), GID: String(spec.gid), Mode: 0o400 },
          },
        ],
        Init: true,
        ReadOnly: true,
        Healthcheck: { Test: ['NONE'] },
        StopSignal: 'SIGTERM',
        StopGracePeriod: 10e9,
        CapabilityDrop: ['ALL'],
        Mounts: [
          { Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 0o1777 } },
          { Type: 'volume', Source: spec.socketVolume, Target: EGRESS_SOCKET_DIR },
          { Type: 'volume', Source: spec.stateVolume, Target: EGRESS_STATE_DIR },
        ],
      },
      Resources: { Limits: { MemoryBytes: spec.memoryBytes, Pids: 256 } },
      // Back within a second of dying, on its node; swarm keeps doing so for good.
      RestartPolicy: { Condition: 'any', Delay: 1e9, MaxAttempts: 0 },
      Placement: { Constraints: placement.constraints },
      Networks: spec.networks.map((target) => ({ Target: target })),
      LogDriver: { Name: 'json-file', Options: { 'max-size': '10m', 'max-file': '2' } },
    },
  };
}
