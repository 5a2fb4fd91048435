import { z } from 'zod';

/**
 * A person's role on a repository as GitHub reports it (`GET /repos/{o}/{r}/collaborators/{login}/permission`),
 * weakest first. `author_association` is not one of these: MEMBER is any member of the
 * organisation and COLLABORATOR includes read-only collaborators.
 */
export const REPO_ROLES = ['none', 'read', 'triage', 'write', 'maintain', 'admin'] as const;
export type RepoRole = (typeof REPO_ROLES)[number];
export const repoRoleSchema = z.enum(REPO_ROLES);

export const roleAtLeast = (role: RepoRole, minimum: RepoRole): boolean => REPO_ROLES.indexOf(role) >= REPO_ROLES.indexOf(minimum);

/**
 * GitHub's answer as a role: `role_name` when it is one of the built-in five; a custom role by its
 * legacy `permission` (which reads maintain as write and triage as read: never stronger than it is).
 */
export function roleFromGithub(answer: { permission?: unknown; role_name?: unknown }): RepoRole {
  const name = typeof answer.role_name === 'string' ? answer.role_name.toLowerCase() : '';
  if ((REPO_ROLES as readonly string[]).includes(name) && name !== 'none') return name as RepoRole;
  const legacy = typeof answer.permission === 'string' ? answer.permission.toLowerCase() : '';
  return legacy === 'admin' || legacy === 'write' || legacy === 'read' ? legacy : 'none';
}
