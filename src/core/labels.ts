/**
 * Container labels are berth's only link between a Docker container and a BullMQ job. Adoption
 * and the reconciler key on them, so they are written once here and never spelled elsewhere.
 */
export const LABEL = {
  managed: 'berth.managed',
  queue: 'berth.queue',
  jobId: 'berth.job-id',
  attempt: 'berth.attempt',
  /** Timeout in ms chosen at launch, so a restarted consumer keeps the original deadline. */
  timeoutMs: 'berth.timeout-ms',
  /** Memory limit in bytes, so an exit 137 can be read as OOM without the launch config. */
  memoryBytes: 'berth.memory-bytes',
  /** On a worker: the egress proxy it reaches out through (an old proxy stays while one uses it). */
  egress: 'berth.egress',
  /** On an egress proxy (never `managed`: it is not a worker): its queue, and the version of its settings. */
  egressProxy: 'berth.egress-proxy',
  egressVersion: 'berth.egress-version',
} as const;

export function managedLabelFilter(queue: string): string[] {
  return [`${LABEL.managed}=true`, `${LABEL.queue}=${queue}`];
}
