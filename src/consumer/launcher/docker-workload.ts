import type Dockerode from 'dockerode';
import { setTimeout as delay } from 'node:timers/promises';
import { demuxDockerStream, unframed } from './docker-frames.js';
import { envRecord, parseDockerTime, statusOf, unlessMissing } from './docker-api.js';
import { WorkloadVanished, type LogStream, type Workload, type WorkloadFacts, type WorkloadState } from './launcher.js';

/**
 * How often a waiting consumer looks at its container itself: after an engine restart (live-restore)
 * a wait request on the connection the engine dropped may neither return nor fail, while the
 * container carries on and exits.
 */
const WAIT_POLL_MS = 5_000;
/** The most of a container's tail read at exit: the worker's result line is its last. */
const TAIL_MAX_BYTES = 1_048_576;

/** Docker's container states in berth's words. */
export function workloadState(dockerState: string): WorkloadState {
  if (dockerState === 'created') return 'pending';
  if (dockerState === 'running' || dockerState === 'restarting' || dockerState === 'paused') return 'running';
  return 'exited';
}

/**
 * One container. Idempotent where Docker lets it be: starting a started container, stopping or
 * removing one that is over or gone are not errors, so a consumer can repeat any step after a crash.
 */
export class DockerWorkload implements Workload {
  /** `created`: this handle's own create made it, so it is known not to have started (no look before the start). */
  constructor(
    private readonly docker: Dockerode,
    readonly id: string,
    private created = false,
  ) {}

  private get container(): Dockerode.Container {
    return this.docker.getContainer(this.id);
  }

  async inspect(): Promise<WorkloadFacts | null> {
    const info = await unlessMissing(this.container.inspect());
    if (!info) return null;
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      state: workloadState(info.State.Status),
      exitCode: info.State.ExitCode,
      oomKilled: info.State.OOMKilled,
      startedAt: parseDockerTime(info.State.StartedAt),
      finishedAt: parseDockerTime(info.State.FinishedAt),
      labels: info.Config.Labels ?? {},
      env: envRecord(info.Config.Env),
    };
  }

  private async mustInspect(): Promise<WorkloadFacts> {
    const facts = await this.inspect();
    if (!facts) throw new WorkloadVanished(this.id);
    return facts;
  }

  /** Docker starts a container synchronously: once `start` returns it runs, or has already exited. */
  async untilRunning(signal?: AbortSignal): Promise<WorkloadFacts> {
    signal?.throwIfAborted();
    if (!this.created) {
      const facts = await this.mustInspect();
      if (facts.state !== 'pending') return facts;
    }
    this.created = false;
    try {
      await this.container.start();
    } catch (error) {
      if (statusOf(error) !== 304) throw error; // started by someone else in the meantime
    }
    return this.mustInspect();
  }

  /**
   * Docker's own wait, raced with a look every WAIT_POLL_MS, and never trusted alone: a wait that
   * returns while inspect still says running (an engine that answered early, as Nomad's driver
   * distrusts too) is waited again.
   */
  async untilExited(signal?: AbortSignal): Promise<WorkloadFacts> {
    for (;;) {
      signal?.throwIfAborted();
      const inner = new AbortController();
      const forward = () => inner.abort(signal?.reason);
      signal?.addEventListener('abort', forward, { once: true });
      const waited = this.container.wait({ condition: 'not-running', abortSignal: inner.signal });
      const polled = (async () => {
        for (;;) {
          await delay(WAIT_POLL_MS, undefined, { signal: inner.signal });
          const facts = await this.inspect();
          if (!facts || facts.state === 'exited') return;
        }
      })();
      waited.catch(() => {});
      polled.catch(() => {});
      try {
        await Promise.race([waited, polled]);
      } catch (error) {
        if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : error;
        throw error;
      } finally {
        signal?.removeEventListener('abort', forward);
        inner.abort(new Error('done'));
      }
      const facts = await this.mustInspect();
      // Still running: the wait was wrong. Created and never started (stopped before its start) is over too.
      if (facts.state !== 'running') return facts;
    }
  }

  /** The container's output from its start, following until it exits (Docker ends the stream then). */
  async follow(): Promise<LogStream> {
    return unframed((await this.container.logs({ follow: true, stdout: true, stderr: true, timestamps: false })) as LogStream);
  }

  /** Docker's own `tail`: a container that printed gigabytes costs the same as one that printed a line. */
  async tail(lines = 200): Promise<string> {
    const raw = (await unlessMissing(this.container.logs({ stdout: true, stderr: true, follow: false, tail: lines }))) as unknown as Buffer | null;
    if (!raw) return '';
    const text = demuxDockerStream(raw);
    return text.length > TAIL_MAX_BYTES ? text.slice(text.length - TAIL_MAX_BYTES) : text;
  }

  async stop(graceMs: number): Promise<void> {
    await unlessMissing(this.container.stop({ t: Math.ceil(graceMs / 1000) }), [304]);
  }

  async remove(): Promise<void> {
    // 409: a removal already under way (another consumer, the reconciler).
    await unlessMissing(this.container.remove({ force: true, v: true }), [409]);
  }
}
