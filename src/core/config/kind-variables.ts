import { readFileSync } from 'node:fs';

/**
 * The `<PREFIX><KIND>` variables that are set, with their kind in lower case (AGENT_COMMAND_,
 * SETUP_COMMAND_, GITHUB_TOKEN_PERMISSIONS_, EGRESS_HOSTS_). Empty means unset, as for every other
 * variable (compose passes `${AGENT_COMMAND_X:-}`).
 */
export function kindVariables(env: NodeJS.ProcessEnv, prefix: string): Array<{ key: string; kind: string; value: string }> {
  return Object.entries(env).flatMap(([key, value]) =>
    key.startsWith(prefix) && value !== undefined && value.trim() !== '' ? [{ key, kind: key.slice(prefix.length).toLowerCase(), value }] : [],
  );
}

/** The problem of a per-kind setting for a kind no AGENT_COMMAND_<KIND> configures. */
export function noCommandFor(key: string, kind: string): string {
  return `${key}: no AGENT_COMMAND_${kind.toUpperCase()} for the kind '${kind}'`;
}

/** A secret's file as compose and Docker secrets write it: a trailing newline is not part of it, an empty file is an unset secret. */
export function readSecretFile(file: string): string | undefined {
  return readFileSync(file, 'utf8').replace(/\r?\n$/, '') || undefined;
}
