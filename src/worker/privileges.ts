import { readFileSync } from 'node:fs';

/**
 * Whether the kernel's no_new_privs flag is set on this process (and so on everything it starts):
 * no setuid binary or file capability can raise an agent's privileges. Docker sets it from the
 * container's security options; swarm cannot (moby/moby#41371), so berth starts the worker under
 * `setpriv --no-new-privs`. Null where /proc does not say (not Linux).
 */
export function noNewPrivsInEffect(status = readStatus()): boolean | null {
  const value = /^NoNewPrivs:\s*(\d)/m.exec(status ?? '')?.[1];
  return value === undefined ? null : value === '1';
}

function readStatus(): string | null {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return null;
  }
}
