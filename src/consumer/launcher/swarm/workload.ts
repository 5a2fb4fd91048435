import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import { demuxDockerStream, unframed } from '../docker-frames.js';
import { unlessMissing } from '../docker-api.js';
import { WorkloadVanished, type LogStream, type Workload, type WorkloadFacts } from '../launcher.js';

/** How often a wait, and a log follower, looks at the task. Swarm has no per-task wait call. */
export const POLL_MS = 250;
/** Lines still in flight when a task exits, before the follower ends. */
const LOG_DRAIN_MS = 500;

/** What a service's handle needs from its launcher: the facts (node and exit caches live there), and the two calls that change a service. */
export interface SwarmServices {
  readonly docker: Dockerode;
  facts(id: string): Promise<WorkloadFacts | null>;
  /** Zero replicas, once: the running task (if any) is stopped; none starts. */
  endTasks(id: string, graceMs: number): Promise<void>;
  /** The service, its task's container and its secret. */
  removeService(id: string): Promise<void>;
}

/**
 * One attempt's service. A service starts its task as soon as it is created, so there is nothing
 * to start; swarm has no wait call, so both waits poll the newest task (and notice a lost node,
 * which swarm itself would show as running for a day).
 */
export class SwarmWorkload implements Workload {
  constructor(
    private readonly services: SwarmServices,
    readonly id: string,
  ) {}

  inspect(): Promise<WorkloadFacts | null> {
    return this.services.facts(this.id);
  }

  untilRunning(signal?: AbortSignal): Promise<WorkloadFacts> {
    return this.until((facts) => facts.state !== 'pending', signal);
  }

  untilExited(signal?: AbortSignal): Promise<WorkloadFacts> {
    return this.until((facts) => facts.state === 'exited', signal);
  }

  private async until(done: (facts: WorkloadFacts) => boolean, signal?: AbortSignal): Promise<WorkloadFacts> {
    for (;;) {
      signal?.throwIfAborted();
      const facts = await this.inspect();
      if (!facts) throw new WorkloadVanished(this.id);
      if (done(facts)) return facts;
      // An abort ends the pause; the check above then throws its reason.
      await delay(POLL_MS, undefined, { signal }).catch(() => {});
    }
  }

  /**
   * Swarm's follow opens on the task's container and never ends by itself, and one opened before
   * the task runs stays silent: so this returns at once and attaches when the task runs, and ends
   * the stream shortly after the task exits.
   */
  async follow(): Promise<LogStream> {
    const out = new PassThrough();
    const service = this.services.docker.getService(this.id);
    let source: LogStream | null = null;
    let closed = false;
    out.on('close', () => {
      closed = true;
      source?.destroy();
    });
    void (async () => {
      let facts = await this.inspect();
      while (!closed && facts?.state === 'pending') {
        await delay(POLL_MS);
        facts = await this.inspect();
      }
      if (closed || !facts) return out.end();
      if (facts.state === 'exited') {
        out.end(demuxDockerStream((await service.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer));
        return;
      }
      source = unframed((await service.logs({ stdout: true, stderr: true, follow: true })) as unknown as LogStream);
      source.on('data', (chunk: Buffer) => out.write(chunk));
      source.on('end', () => out.end());
      while (!closed && (await this.inspect())?.state === 'running') await delay(POLL_MS);
      await delay(LOG_DRAIN_MS);
      source.destroy();
      out.end();
    })().catch((error) => out.destroy(error as Error));
    return out;
  }

  async tail(lines = 200): Promise<string> {
    const raw = (await unlessMissing(
      this.services.docker.getService(this.id).logs({ stdout: true, stderr: true, follow: false, tail: lines }),
    )) as unknown as Buffer | null;
    return raw ? demuxDockerStream(raw) : '';
  }

  /**
   * A service cannot be told to stop its task, only updated: zero replicas ends the running task
   * (SIGTERM, then SIGKILL after the grace period) and starts none, and the service stays as the
   * name's holder.
   */
  async stop(graceMs: number): Promise<void> {
    const facts = await this.inspect();
    if (!facts || facts.state === 'exited') return;
    await this.services.endTasks(this.id, graceMs);
  }

  remove(): Promise<void> {
    return this.services.removeService(this.id);
  }
}
