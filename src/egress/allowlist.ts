import { BlockList, isIP } from 'node:net';

/**
 * What one attempt may reach through the proxy, decided before any connection is made and again
 * on the addresses a name resolves to. Built by berth from operator config only (the task's GitHub
 * host, the model providers, the kind's extras); the proxy trusts it because it is signed.
 */
export interface Allowlist {
  /** Host names, lower case; `*.example.com` matches any name below example.com, not example.com itself. */
  hosts: string[];
  /** Ports a CONNECT or a plain request may go to. */
  ports: number[];
  /** Private, loopback or link-local ranges the operator allows (a GitHub Enterprise Server on 10.x, test hosts), CIDR. */
  allowPrivate: string[];
}

export type Decision = { allowed: true } | { allowed: false; reason: string };

/** Loopback, private, link-local (cloud metadata), CGNAT, unique-local and the unspecified ranges. */
const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  INTERNAL.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const)
  INTERNAL.addSubnet(net, prefix, 'ipv6');

/** Lower case, without a trailing dot or IPv6 brackets. */
export function normaliseHost(host: string): string {
  return host
    .trim()
    .toLowerCase()
    .replace(/\.$/, '')
    .replace(/^\[(.*)\]$/, '$1');
}

/** Whether `host` (a name, not an address) is on the list; wildcards match strictly below their domain. */
export function hostAllowed(list: Pick<Allowlist, 'hosts'>, host: string): boolean {
  const name = normaliseHost(host);
  return list.hosts.some((entry) => {
    const pattern = normaliseHost(entry);
    if (pattern.startsWith('*.')) return name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1;
    return name === pattern;
  });
}

/** The request's target, before resolution: a listed name on a listed port, never an IP literal. */
export function judgeTarget(list: Allowlist, host: string, port: number): Decision {
  const name = normaliseHost(host);
  if (!name) return { allowed: false, reason: 'no host named' };
  if (isIP(name) || /^\d+$/.test(name) || /^0x[0-9a-f]+$/i.test(name)) {
    return { allowed: false, reason: `${name} is an IP address; the proxy allows host names only (EGRESS_HOSTS_<KIND> lists names)` };
  }
  if (!hostAllowed(list, name)) return { allowed: false, reason: `${name} is not on this task's allowlist (add it to EGRESS_HOSTS or EGRESS_HOSTS_<KIND>)` };
  if (!list.ports.includes(port)) return { allowed: false, reason: `port ${port} is not allowed (EGRESS_PORTS: ${list.ports.join(', ')})` };
  return { allowed: true };
}

/** An address a name resolved to: refused when internal unless the operator allows that range (DNS rebinding). */
export function judgeAddress(list: Pick<Allowlist, 'allowPrivate'>, host: string, given: string): Decision {
  // An IPv4-mapped IPv6 address is judged as the IPv4 address it is (BlockList would match every
  // IPv4 address against a ::ffff:0:0/96 rule).
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(given)?.[1];
  const address = mapped ?? given;
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  if (!INTERNAL.check(address, family)) return { allowed: true };
  const allowed = new BlockList();
  for (const cidr of list.allowPrivate) {
    const [net = '', prefix = ''] = cidr.split('/');
    const netFamily = isIP(net) === 6 ? 'ipv6' : 'ipv4';
    allowed.addSubnet(net, Number(prefix || (netFamily === 'ipv6' ? 128 : 32)), netFamily);
  }
  if (allowed.check(address, family)) return { allowed: true };
  return {
    allowed: false,
    reason: `${normaliseHost(host)} resolves to ${given}, a private, loopback or link-local address (EGRESS_ALLOW_PRIVATE lists ranges that may be reached)`,
  };
}
