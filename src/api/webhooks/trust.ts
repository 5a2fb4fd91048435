import type { WebhookRules } from '../../core/webhook-rules.js';
import { scopeRefusal } from '../../core/trust-scope.js';

export interface Actor {
  login: string;
  type: string;
  /** author_association when the payload has one (comments); undefined for a sender. */
  association?: string;
}

export type TrustDecision = { trusted: true } | { trusted: false; reason: string; detail: string };

const untrusted = (detail: string): TrustDecision => ({ trusted: false, reason: 'untrusted sender', detail });

/**
 * A delivery may start work only if its installation, its repository and its actor are all
 * allowed. Label and review-request events need triage or write access on GitHub, so their sender
 * is trusted without an association; comment authors and pushers need one (or the login list).
 */
export function decideTrust(
  trust: WebhookRules['trust'],
  delivery: { installationId?: number; owner: string; repo: string; actor: Actor; actorHasRepoAccess: boolean; fork: boolean; kind: string },
): TrustDecision {
  const outOfScope = scopeRefusal(trust, delivery);
  if (outOfScope) return untrusted(outOfScope);
  const { actor } = delivery;
  if (actor.type === 'Bot' && !trust.allowBots) return untrusted(`${actor.login} is a bot`);
  const listed = trust.logins.some((l) => l.toLowerCase() === actor.login.toLowerCase());
  const associated = actor.association !== undefined && (trust.associations as string[]).includes(actor.association);
  if (!listed && !associated && !delivery.actorHasRepoAccess) return untrusted(`${actor.login} (${actor.association ?? 'no association'}) is not trusted`);
  if (delivery.fork && delivery.kind === 'implement' && !trust.allowForkImplement) return untrusted('implement tasks are not started from forks');
  return { trusted: true };
}
