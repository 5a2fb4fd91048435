import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type {
  EgressProxySpec,
  Launcher,
  LauncherDescription,
  LogStream,
  ManagedWorkload,
  Workload,
  WorkloadFacts,
  WorkloadSpec,
} from '../../src/consumer/launcher/launcher.js';
import { LABEL } from '../../src/core/labels.js';
import { containerName } from '../../src/core/names.js';

interface Held {
  facts: WorkloadFacts;
  output: string;
  exited: Promise<void>;
  end: () => void;
}

/**
 * A launcher that runs nothing: workloads are records that a test starts, ends, loses or lets the
 * "engine" drop calls for. For fast tests of the attempt runner's and the reconciler's every branch;
 * real engines are what the end-to-end tests use. It keeps the one rule a real engine enforces for
 * berth: a second workload of the same name is an adoption, never a second workload.
 */
export class MemoryLauncher implements Launcher {
  readonly backend = 'docker' as const;
  readonly noun = 'container' as const;
  engine = 'engine-a';
  /** Every spec create was called with, adoption or not. */
  readonly creates: WorkloadSpec[] = [];
  /** Every call, by name ("untilExited", "stop"), in order: what the runner asked the engine. */
  readonly calls: string[] = [];
  private readonly held = new Map<string, Held>();
  private unreachableCalls = 0;
  private nextId = 1;

  /** The next `count` engine calls fail as an unreachable engine does (ECONNREFUSED). */
  dropCalls(count: number): void {
    this.unreachableCalls = count;
  }

  private async engineCall(name: string): Promise<void> {
    this.calls.push(name);
    await Promise.resolve();
    if (this.unreachableCalls > 0) {
      this.unreachableCalls--;
      throw Object.assign(new Error('connect ECONNREFUSED /var/run/docker.sock'), { code: 'ECONNREFUSED' });
    }
  }

  nameFor(queue: string, jobId: string, attempt: number): string {
    return containerName(queue, jobId, attempt);
  }

  async engineId(): Promise<string> {
    return this.engine;
  }

  /** A workload a previous consumer left (created, or already running). */
  leave(spec: Pick<WorkloadSpec, 'name'> & Partial<WorkloadSpec>, state: 'pending' | 'running' = 'running'): WorkloadFacts {
    const facts = this.record({ labels: {}, env: {}, secrets: {}, ...spec } as WorkloadSpec);
    if (state === 'running') Object.assign(facts, { state: 'running', startedAt: Date.now() });
    return facts;
  }

  private record(spec: WorkloadSpec): WorkloadFacts {
    let end = () => {};
    const exited = new Promise<void>((resolve) => (end = resolve));
    const facts: WorkloadFacts = {
      id: `m${this.nextId++}`,
      name: spec.name,
      state: 'pending',
      exitCode: 0,
      oomKilled: false,
      startedAt: null,
      finishedAt: null,
      labels: { ...spec.labels },
      env: { ...spec.env, ...spec.secrets },
    };
    this.held.set(facts.id, { facts, output: '', exited, end });
    return facts;
  }

  async createOrAdopt(spec: WorkloadSpec): Promise<{ workload: Workload; adopted: boolean }> {
    await this.engineCall('create');
    this.creates.push(spec);
    const existing = this.find(spec.name);
    if (existing) return { workload: this.handle(existing.facts.id), adopted: true };
    return { workload: this.handle(this.record(spec).id), adopted: false };
  }

  private find(idOrName: string): Held | undefined {
    return this.held.get(idOrName) ?? [...this.held.values()].find((h) => h.facts.name === idOrName);
  }

  /** The workload's facts as the engine holds them (undefined once removed). */
  facts(idOrName: string): WorkloadFacts | undefined {
    return this.find(idOrName)?.facts;
  }

  /** Ends a workload as its agent or its platform would. */
  exit(idOrName: string, exitCode: number, options: { output?: string; oomKilled?: boolean; failure?: string } = {}): void {
    const held = this.find(idOrName);
    if (!held || held.facts.state === 'exited') return;
    Object.assign(held.facts, {
      state: 'exited',
      exitCode,
      oomKilled: options.oomKilled ?? false,
      finishedAt: Date.now(),
      ...(options.failure ? { failure: options.failure } : {}),
    });
    held.output += options.output ?? '';
    held.end();
  }

  /** Resolves once a workload of that name is running. */
  async untilRunning(name: string): Promise<WorkloadFacts> {
    for (;;) {
      const held = this.find(name);
      if (held && held.facts.state === 'running') return held.facts;
      await delay(5);
    }
  }

  handle(idOrName: string): Workload {
    const self = this;
    const look = () => self.find(idOrName);
    const aborted = (signal: AbortSignal) =>
      new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error(`aborted: ${String(signal.reason)}`)), { once: true }));
    return {
      id: idOrName,
      async inspect() {
        await self.engineCall('inspect');
        const held = look();
        return held ? { ...held.facts } : null;
      },
      async untilRunning(signal) {
        await self.engineCall('untilRunning');
        signal?.throwIfAborted();
        const held = look();
        if (!held) throw new Error(`workload ${idOrName} vanished`);
        if (held.facts.state === 'pending') Object.assign(held.facts, { state: 'running', startedAt: Date.now() });
        return { ...held.facts };
      },
      async untilExited(signal) {
        await self.engineCall('untilExited');
        const held = look();
        if (!held) throw new Error(`workload ${idOrName} vanished`);
        await (signal ? Promise.race([held.exited, aborted(signal)]) : held.exited);
        return { ...held.facts };
      },
      async follow(): Promise<LogStream> {
        await self.engineCall('follow');
        const out = new PassThrough();
        const held = look();
        void held?.exited.then(() => out.end(held.output));
        return out;
      },
      async tail() {
        await self.engineCall('tail');
        return look()?.output ?? '';
      },
      async stop() {
        await self.engineCall('stop');
        const held = look();
        if (held?.facts.state === 'running') self.exit(idOrName, 143);
        else if (held?.facts.state === 'pending') self.exit(idOrName, 0);
      },
      async remove() {
        await self.engineCall('remove');
        const held = look();
        if (held) self.held.delete(held.facts.id);
      },
    };
  }

  async listManaged(queue: string): Promise<ManagedWorkload[]> {
    await this.engineCall('list');
    return [...this.held.values()]
      .filter((h) => h.facts.labels[LABEL.queue] === queue)
      .map(({ facts }) => ({
        id: facts.id,
        name: facts.name,
        state: facts.state,
        jobId: facts.labels[LABEL.jobId] ?? '',
        attempt: Number(facts.labels[LABEL.attempt] ?? 0),
        labels: facts.labels,
      }));
  }

  async prepareNetwork(): Promise<void> {}
  async networkGateway(): Promise<string> {
    return '';
  }
  async checkImage(): Promise<void> {}
  async imageId(): Promise<string | null> {
    return null;
  }
  async ping(): Promise<void> {
    await this.engineCall('ping');
  }
  async describe(): Promise<LauncherDescription> {
    return { backend: 'docker', engine: 'in memory', securityOptions: ['name=no-new-privileges'] };
  }
  async ensureEgressProxy(spec: EgressProxySpec): Promise<{ id: string; created: boolean }> {
    return { id: spec.name, created: true };
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
  async egressOverBudget(): Promise<string[]> {
    return [];
  }
}
