import { splitCommandLine } from '../command-line.js';
import { KIND_PATTERN } from '../task.js';
import { PRIORITY_MAX, PRIORITY_MIN, priorityLevelSchema } from '../start-priority.js';
import { kindVariables, noCommandFor } from './kind-variables.js';

export type TokenPermissionsByKind = Record<string, Record<string, 'read' | 'write'>>;

const AGENT_COMMAND_PREFIX = 'AGENT_COMMAND_';
const TOKEN_PERMISSIONS_PREFIX = 'GITHUB_TOKEN_PERMISSIONS_';
const SETUP_COMMAND_PREFIX = 'SETUP_COMMAND_';

/**
 * A worker's token gets only what its kind needs (GitHub's installation-token permissions; metadata
 * read is always included by GitHub). Overridden per kind by GITHUB_TOKEN_PERMISSIONS_<KIND>.
 */
export const DEFAULT_TOKEN_PERMISSIONS: TokenPermissionsByKind = {
  review: { contents: 'read', pull_requests: 'write', issues: 'read' },
  implement: { contents: 'write', pull_requests: 'write', issues: 'write' },
};
const OTHER_KINDS: Record<string, 'read' | 'write'> = { contents: 'read' };

export function tokenPermissionsFor(configured: TokenPermissionsByKind, kind: string): Record<string, 'read' | 'write'> {
  return (
    (Object.hasOwn(configured, kind) ? configured[kind] : undefined) ??
    (Object.hasOwn(DEFAULT_TOKEN_PERMISSIONS, kind) ? DEFAULT_TOKEN_PERMISSIONS[kind]! : OTHER_KINDS)
  );
}

/** `contents:read,pull_requests:write` → {contents: 'read', pull_requests: 'write'}. */
export function parseTokenPermissions(text: string): Record<string, 'read' | 'write'> | string {
  const permissions: Record<string, 'read' | 'write'> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^([a-z_]{1,64}):(read|write)$/.exec(part);
    if (!match) return `'${part}' is not name:read or name:write (e.g. contents:read,pull_requests:write)`;
    permissions[match[1]!] = match[2] as 'read' | 'write';
  }
  return Object.keys(permissions).length ? permissions : 'names no permission';
}

/** The task kind's command, never a property inherited from Object (`constructor`, `toString`). */
export function agentCommandFor(config: { agentCommands: Record<string, string[]> }, kind: string): string[] | undefined {
  return Object.hasOwn(config.agentCommands, kind) ? config.agentCommands[kind] : undefined;
}

/** AGENT_COMMAND_<KIND>, SETUP_COMMAND_<KIND> and GITHUB_TOKEN_PERMISSIONS_<KIND>; every problem goes into `problems`. */
const TASK_PRIORITY_PREFIX = 'TASK_PRIORITY_';

export function parseKinds(
  env: NodeJS.ProcessEnv,
  problems: string[],
): {
  agentCommands: Record<string, string[]>;
  setupCommands: Record<string, string[]>;
  tokenPermissions: TokenPermissionsByKind;
  priorities: Record<string, number>;
} {
  // No prototype: a kind named `constructor` or `toString` must not find Object's methods.
  const agentCommands: Record<string, string[]> = Object.create(null);
  for (const { key, kind, value } of kindVariables(env, AGENT_COMMAND_PREFIX)) {
    if (!KIND_PATTERN.test(kind)) {
      problems.push(`${key}: the kind '${kind}' must start with a letter and use letters, digits, '-' or '_' (at most 32)`);
      continue;
    }
    const split = splitCommandLine(value);
    if (!split.ok) problems.push(`${key}: ${split.error}`);
    else agentCommands[kind] = split.argv;
  }
  if (Object.keys(agentCommands).length === 0 && !problems.some((p) => p.startsWith(AGENT_COMMAND_PREFIX))) {
    problems.push('AGENT_COMMAND_<KIND>: no task kind configured; set at least one, e.g. AGENT_COMMAND_REVIEW="my-agent review"');
  }

  // SETUP_COMMAND_<KIND>: run before the agent, in the checkout, with the setup's wider egress.
  const setupCommands: Record<string, string[]> = Object.create(null);
  for (const { key, kind, value } of kindVariables(env, SETUP_COMMAND_PREFIX)) {
    if (!Object.hasOwn(agentCommands, kind)) {
      problems.push(noCommandFor(key, kind));
      continue;
    }
    const split = splitCommandLine(value);
    if (!split.ok) problems.push(`${key}: ${split.error}`);
    else setupCommands[kind] = split.argv;
  }

  const tokenPermissions: TokenPermissionsByKind = {};
  for (const { key, kind, value } of kindVariables(env, TOKEN_PERMISSIONS_PREFIX)) {
    const parsed = parseTokenPermissions(value);
    if (typeof parsed === 'string') problems.push(`${key}: ${parsed}`);
    else if (!Object.hasOwn(agentCommands, kind)) problems.push(noCommandFor(key, kind));
    else tokenPermissions[kind] = parsed;
  }

  // TASK_PRIORITY_<KIND>: the start priority of the kind's tasks (API tasks may ask for another within API_PRIORITY_MIN..MAX).
  const priorities: Record<string, number> = Object.create(null);
  for (const { key, kind, value } of kindVariables(env, TASK_PRIORITY_PREFIX)) {
    const level = Number(value);
    if (!Object.hasOwn(agentCommands, kind)) problems.push(noCommandFor(key, kind));
    else if (!priorityLevelSchema.safeParse(level).success)
      problems.push(`${key}: expected a whole number from ${PRIORITY_MIN} to ${PRIORITY_MAX} (higher starts first), got '${value}'`);
    else priorities[kind] = level;
  }
  return { agentCommands, setupCommands, tokenPermissions, priorities };
}

/** A kind's start priority level (TASK_PRIORITY_<KIND>), 0 when it has none. */
export function kindPriority(priorities: Record<string, number>, kind: string): number {
  return Object.hasOwn(priorities, kind) ? (priorities[kind] ?? 0) : 0;
}
