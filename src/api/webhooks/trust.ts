import type { WebhookRules } from '../../core/webhook-rules.js';
import { scopeRefusal } from '../../core/trust-scope.js';
import { roleAtLeast, type RepoRole } from '../../core/permission.js';

export interface Actor {
  login: string;
  type: string;
  /** author_association when the payload has one (comments): a first filter, never a grant. */
  association?: string;
}

/**
 * Refused, or trusted. A refusal with `approvable` is one a person with that role may lift (the
 * actor is in scope, only below the role): with approvals on, it becomes a task awaiting approval.
 */
export type TrustDecision = { trusted: true; role?: RepoRole } | { trusted: false; reason: string; detail: string; approvable?: RepoRole };

/** What the payload alone settles: refused, or the role GitHub must report for the actor. */
export type TrustScreen = TrustDecision | { trusted: 'ask'; minimum: RepoRole };

const untrusted = (detail: string, approvable?: RepoRole) => ({
  trusted: false as const,
  reason: 'untrusted sender',
  detail,
  ...(approvable ? { approvable } : {}),
});
/** Who may approve: the role needed to start it (`read` when the operator needs none, yet the association filter refused). */
const approver = (minimum: RepoRole): RepoRole => (minimum === 'none' ? 'read' : minimum);

/** The least role for a kind: the rule's own, else the kind's (`trust.kinds`), else `trust.permission`. */
export function requiredRole(trust: WebhookRules['trust'], kind: string, rulePermission?: RepoRole): RepoRole {
  return rulePermission ?? (Object.hasOwn(trust.kinds, kind) ? trust.kinds[kind]! : trust.permission);
}

/**
 * The checks the payload can settle without asking GitHub: installation and repository scope,
 * bots, forks, and author_association as a cheap first filter (a comment author who is no
 * owner, member or collaborator cannot hold the role). Everything that passes still needs the
 * role GitHub reports (`judgeRole`): a payload never grants trust.
 */
export function screenDelivery(
  trust: WebhookRules['trust'],
  delivery: { installationId?: number; owner: string; repo: string; actor: Actor; fork: boolean; kind: string; permission?: RepoRole },
): TrustScreen {
  const outOfScope = scopeRefusal(trust, delivery);
  if (outOfScope) return untrusted(outOfScope);
  const { actor } = delivery;
  if (actor.type === 'Bot' && !trust.allowBots) return untrusted(`${actor.login} is a bot`);
  const listed = trust.logins.some((l) => l.toLowerCase() === actor.login.toLowerCase());
  const minimum = requiredRole(trust, delivery.kind, delivery.permission);
  if (!listed && actor.association !== undefined && !(trust.associations as string[]).includes(actor.association)) {
    return untrusted(`${actor.login} (${actor.association}) is not an owner, member or collaborator of ${delivery.repo}`, approver(minimum));
  }
  if (delivery.fork && delivery.kind === 'implement' && !trust.allowForkImplement)
    return untrusted('implement tasks are not started from forks', trust.approval.forks ? approver(minimum) : undefined);
  // `none`: the operator opted out of asking (anyone in scope may start this kind).
  return minimum === 'none' ? { trusted: true } : { trusted: 'ask', minimum };
}

/** The role GitHub reported against the least one needed; a failed lookup refuses, with its reason. */
export function judgeRole(login: string, repo: string, minimum: RepoRole, answer: { role: RepoRole } | { error: string }): TrustDecision {
  if ('error' in answer) return untrusted(`${answer.error}; refused until GitHub answers`);
  if (!roleAtLeast(answer.role, minimum)) return untrusted(`${login} has ${answer.role} permission on ${repo}; ${minimum} is needed`, minimum);
  return { trusted: true, role: answer.role };
}
