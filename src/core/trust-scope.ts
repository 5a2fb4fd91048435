import type { WebhookRules } from './webhook-rules.js';

/**
 * Which installations and repositories berth works for at all (`trust` in WEBHOOK_RULES_FILE).
 * The webhook route applies it to deliveries; the consumer applies it again to every task, from
 * the API and the board too, before it mints a token: a holder of the API token gets no token
 * for a repository the operator did not name.
 */
export function scopeRefusal(
  trust: Pick<WebhookRules['trust'], 'installations' | 'owners' | 'repositories'>,
  target: { installationId?: number; owner: string; repo: string },
): string | null {
  const installationAllowed =
    (target.installationId !== undefined && trust.installations.includes(target.installationId)) ||
    trust.owners.some((o) => o.toLowerCase() === target.owner.toLowerCase());
  if (!installationAllowed) return `installation ${target.installationId ?? '(none)'} of ${target.owner} is not allowed`;
  const repoAllowed = trust.repositories.length === 0 || trust.repositories.some((pattern) => repoMatches(pattern, target.repo));
  if (!repoAllowed) return `repository ${target.repo} is not allowed`;
  return null;
}

function repoMatches(pattern: string, repo: string): boolean {
  const [owner, name] = pattern.toLowerCase().split('/');
  const [repoOwner, repoName] = repo.toLowerCase().split('/');
  return owner === repoOwner && (name === '*' || name === repoName);
}
