import { readFileSync } from 'node:fs';

/** Where the kernel counts OOM kills in this container's memory cgroup: cgroup v2, then v1. */
const COUNTERS = ['/sys/fs/cgroup/memory.events', '/sys/fs/cgroup/memory/memory.oom_control'];

/**
 * How many processes the kernel's OOM killer has killed in this container's memory cgroup (null
 * where no counter is readable). The engine's own OOMKilled flag only covers the container's init
 * and is not reported by every backend (a swarm task's status has no such field); the worker sees
 * its agent die by SIGKILL and reads the counter, so the reason is right on every backend.
 */
export function oomKills(files = COUNTERS, read = (path: string) => readFileSync(path, 'utf8')): number | null {
  for (const file of files) {
    try {
      const match = /^oom_kill\s+(\d+)/m.exec(read(file));
      if (match) return Number(match[1]);
    } catch {
      // not this cgroup version
    }
  }
  return null;
}
