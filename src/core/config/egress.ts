import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { kindVariables, noCommandFor, readSecretFile } from './kind-variables.js';

/** A model provider as the operator configured it: where it is, how its key is sent, the key. */
export interface ProviderConfig {
  name: string;
  url: string;
  api: 'anthropic' | 'openai';
  key: string;
}

/** What a worker of one kind may reach through the proxy beside GitHub and the model providers. */
export interface EgressSettings {
  /** EGRESS_HOSTS_<KIND>, by kind. */
  hostsByKind: Record<string, string[]>;
  providers: ProviderConfig[];
  /** PEM text of EGRESS_CA_FILE (upstream TLS the proxy should trust), or null. */
  extraCa: string | null;
}

const HOSTS_PREFIX = 'EGRESS_HOSTS_';
const PROVIDER_PREFIX = 'PROVIDER_';
/** Where the well-known providers are, and how they take a key. */
const KNOWN_PROVIDERS: Record<string, { url: string; api: ProviderConfig['api'] }> = {
  anthropic: { url: 'https://api.anthropic.com', api: 'anthropic' },
  openai: { url: 'https://api.openai.com/v1', api: 'openai' },
};
const HOST_PATTERN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A host entry of an allowlist: a name, or `*.` and a name; never an address. */
export function hostEntryProblem(entry: string): string | null {
  if (isIP(entry.replace(/^\[|\]$/g, ''))) return `'${entry}' is an IP address; list host names (addresses are refused by the proxy)`;
  if (!HOST_PATTERN.test(entry)) return `'${entry}' is not a host name or a *.domain wildcard`;
  return null;
}

/** `10.0.0.0/8`, `fd00::/8`, or one address. */
export function cidrProblem(entry: string): string | null {
  const [net = '', prefix] = entry.split('/');
  const family = isIP(net);
  if (!family) return `'${entry}' is not an address range (CIDR, e.g. 10.20.0.0/16)`;
  if (prefix !== undefined && (!/^\d+$/.test(prefix) || Number(prefix) > (family === 6 ? 128 : 32))) return `'${entry}' has a prefix length out of range`;
  return null;
}

/**
 * The egress settings whose names carry a kind or a provider (EGRESS_HOSTS_<KIND>,
 * PROVIDER_<NAME>_URL / _API / _KEY / _KEY_FILE), read once with the rest of the config.
 */
export function parseEgressSettings(
  env: NodeJS.ProcessEnv,
  providerNames: string[],
  kinds: string[],
  caFile: string | undefined,
  problems: string[],
): EgressSettings {
  const hostsByKind: Record<string, string[]> = Object.create(null);
  for (const { key, kind, value } of kindVariables(env, HOSTS_PREFIX)) {
    if (!kinds.includes(kind)) {
      problems.push(noCommandFor(key, kind));
      continue;
    }
    const hosts = value
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean);
    for (const host of hosts) {
      const problem = hostEntryProblem(host);
      if (problem) problems.push(`${key}: ${problem}`);
    }
    hostsByKind[kind] = hosts;
  }

  const providers: ProviderConfig[] = [];
  for (const name of providerNames) {
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(name)) {
      problems.push(`EGRESS_PROVIDERS: '${name}' must be a lower-case name (letters, digits, - or _)`);
      continue;
    }
    const upper = `${PROVIDER_PREFIX}${name.toUpperCase().replace(/-/g, '_')}`;
    const known = KNOWN_PROVIDERS[name];
    const url = env[`${upper}_URL`] || known?.url;
    const api = (env[`${upper}_API`] || known?.api) as ProviderConfig['api'] | undefined;
    if (!url) problems.push(`${upper}_URL: where the '${name}' API is (e.g. https://api.example.com/v1)`);
    else if (!/^https?:\/\//.test(url)) problems.push(`${upper}_URL: '${url}' is not an http(s) URL`);
    if (!api || !['anthropic', 'openai'].includes(api)) problems.push(`${upper}_API: 'anthropic' (x-api-key) or 'openai' (bearer token)`);
    let key = env[`${upper}_KEY`];
    const keyFile = env[`${upper}_KEY_FILE`];
    if (key && keyFile) problems.push(`${upper}_KEY and ${upper}_KEY_FILE: set one of them`);
    else if (keyFile) {
      try {
        key = readSecretFile(keyFile);
      } catch (error) {
        problems.push(`${upper}_KEY_FILE: cannot read ${keyFile} (${(error as Error).message})`);
      }
    }
    if (!key) problems.push(`${upper}_KEY or ${upper}_KEY_FILE: the '${name}' API key (it stays with berth's egress proxy; workers never get it)`);
    if (url && api && key) providers.push({ name, url: url.replace(/\/$/, ''), api, key });
  }

  let extraCa: string | null = null;
  if (caFile) {
    try {
      extraCa = readFileSync(caFile, 'utf8');
      if (!extraCa.includes('-----BEGIN CERTIFICATE-----')) problems.push(`EGRESS_CA_FILE: ${caFile} holds no PEM certificate`);
    } catch (error) {
      problems.push(`EGRESS_CA_FILE: cannot read ${caFile} (${(error as Error).message})`);
    }
  }
  return { hostsByKind, providers, extraCa };
}
