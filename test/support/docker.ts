import Dockerode from 'dockerode';
import { LABEL } from '../../src/core/labels.js';

export const docker = new Dockerode();

/** Every test cleans up by label, so a failing test never leaves containers behind. */
export async function removeQueueContainers(queue: string, client: Dockerode = docker): Promise<number> {
  const list = await client.listContainers({ all: true, filters: { label: [`${LABEL.managed}=true`, `${LABEL.queue}=${queue}`] } });
  await Promise.all(
    list.map((c) =>
      client
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
  return list.length;
}

export async function queueContainers(queue: string, client: Dockerode = docker): Promise<Dockerode.ContainerInfo[]> {
  return client.listContainers({ all: true, filters: { label: [`${LABEL.managed}=true`, `${LABEL.queue}=${queue}`] } });
}

export interface DockerEvent {
  action: string;
  id: string;
  name: string;
  jobId: string;
  attempt: string;
  time: number;
}

/** Docker's own event stream for one queue's containers: the ground truth for "how many created". */
export async function recordEvents(queue: string, client: Dockerode = docker): Promise<{ events: DockerEvent[]; stop: () => Promise<void> }> {
  const events: DockerEvent[] = [];
  const stream = (await client.getEvents({ filters: { type: ['container'], label: [`${LABEL.queue}=${queue}`] } })) as NodeJS.ReadableStream & {
    destroy(): void;
  };
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (!line.trim()) continue;
      const event = JSON.parse(line) as { Action: string; Actor: { ID: string; Attributes: Record<string, string> }; timeNano: number };
      events.push({
        action: event.Action,
        id: event.Actor.ID,
        name: event.Actor.Attributes.name ?? '',
        jobId: event.Actor.Attributes[LABEL.jobId] ?? '',
        attempt: event.Actor.Attributes[LABEL.attempt] ?? '',
        time: Math.round(event.timeNano / 1e6),
      });
    }
  });
  stream.on('error', () => {});
  // A test that fails before stop() must not keep its process alive on this socket.
  (stream as unknown as { socket?: { unref(): void } }).socket?.unref();
  return {
    events,
    async stop() {
      // Give the engine a moment to flush events of what just happened.
      await new Promise((r) => setTimeout(r, 300));
      stream.destroy();
    },
  };
}

/** Highest number of containers running at once, from start/die events. */
export function maxRunning(events: DockerEvent[]): number {
  let running = 0;
  let max = 0;
  for (const e of [...events].sort((a, b) => a.time - b.time)) {
    if (e.action === 'start') max = Math.max(max, ++running);
    else if (e.action === 'die') running--;
  }
  return max;
}
