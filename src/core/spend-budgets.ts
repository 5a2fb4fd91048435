import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { berthKeys } from './keys.js';
import { formatTokens, formatUsd, type Spend } from './spend.js';

/** The budgets per repository and installation, per day and month. */
export const SPEND_BUDGET_SETTINGS = [
  'REPO_BUDGET_TOKENS_DAY',
  'REPO_BUDGET_USD_DAY',
  'REPO_BUDGET_TOKENS_MONTH',
  'REPO_BUDGET_USD_MONTH',
  'INSTALLATION_BUDGET_TOKENS_DAY',
  'INSTALLATION_BUDGET_USD_DAY',
  'INSTALLATION_BUDGET_TOKENS_MONTH',
  'INSTALLATION_BUDGET_USD_MONTH',
] as const;
export type SpendBudgetSettings = Pick<Config, (typeof SPEND_BUDGET_SETTINGS)[number]>;
export type SpendBudgetConfig = Pick<Config, 'QUEUE_NAME'> & SpendBudgetSettings;
/** Every budget off. */
export const NO_SPEND_BUDGETS = Object.fromEntries(SPEND_BUDGET_SETTINGS.map((name) => [name, 0])) as SpendBudgetSettings;

/** Who spends: a repository, and the GitHub App installation it belongs to when that is known. */
export interface Spender {
  repo: string;
  installationId?: number | undefined;
}

type Period = 'day' | 'month';
type Totals = { tokens: number; usd: number };

interface Scope {
  /** The spend key's subject: a repository (lower case) or `installation:<id>` (a repository name has no colon). */
  subject: string;
  /** How people read it: `octo/app`, `installation 42`. */
  label: string;
  setting: 'REPO' | 'INSTALLATION';
}

/** How long a period's totals are kept (the current one is what budgets read; the rest is for people). */
const KEEP_SECONDS: Record<Period, number> = { day: 3 * 86_400, month: 62 * 86_400 };
const RESETS: Record<Period, string> = { day: 'at 00:00 UTC', month: 'on the 1st of next month (UTC)' };

/** The UTC day or month a spend counts against: `2026-12-03`, `2026-12`. */
export function spendPeriod(period: Period, at = Date.now()): string {
  return new Date(at).toISOString().slice(0, period === 'day' ? 10 : 7);
}

/**
 * What each repository's and installation's tasks spent per UTC day and month (tokens and USD, as
 * the egress proxy metered them), added by the consumer as each attempt ends; and the budgets new
 * tasks are held to (REPO_BUDGET_*, INSTALLATION_BUDGET_*, per day and per month). Running tasks
 * always finish: a spent budget only refuses new ones.
 */
export class SpendBudgets {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    private readonly config: SpendBudgetConfig,
  ) {
    this.keys = berthKeys(config.QUEUE_NAME);
  }

  private budget(setting: Scope['setting'], period: Period): Totals {
    const p = period.toUpperCase() as 'DAY' | 'MONTH';
    return { tokens: this.config[`${setting}_BUDGET_TOKENS_${p}`], usd: this.config[`${setting}_BUDGET_USD_${p}`] };
  }

  private scopes(spender: Spender): Scope[] {
    return [
      { subject: spender.repo.toLowerCase(), label: spender.repo, setting: 'REPO' as const },
      ...(spender.installationId !== undefined
        ? [{ subject: `installation:${spender.installationId}`, label: `installation ${spender.installationId}`, setting: 'INSTALLATION' as const }]
        : []),
    ];
  }

  get budgeted(): boolean {
    return (['REPO', 'INSTALLATION'] as const).some((setting) =>
      (['day', 'month'] as const).some((period) => {
        const b = this.budget(setting, period);
        return b.tokens > 0 || b.usd > 0;
      }),
    );
  }

  /** Adds an attempt's spend to its repository's and installation's day and month; returns how much of their budgets each has used. */
  async add(spender: Spender, spend: Pick<Spend, 'tokens' | 'usd'>, at = Date.now()): Promise<{ repo: number; installation: number | null }> {
    const multi = this.redis.multi();
    const scopes = this.scopes(spender);
    for (const scope of scopes)
      for (const period of ['day', 'month'] as const) {
        const key = this.keys.repoSpend(scope.subject, spendPeriod(period, at));
        multi
          .hincrby(key, 'tokens', Math.max(0, Math.round(spend.tokens)))
          .hincrbyfloat(key, 'usd', Math.max(0, spend.usd))
          .expire(key, KEEP_SECONDS[period]);
      }
    const results = (await multi.exec()) ?? [];
    const totals = (index: number): Totals => ({ tokens: Number(results[index * 3]?.[1] ?? 0), usd: Number(results[index * 3 + 1]?.[1] ?? 0) });
    const ratio = (scope: Scope, first: number) =>
      Math.max(this.usedRatio(totals(first), this.budget(scope.setting, 'day')), this.usedRatio(totals(first + 1), this.budget(scope.setting, 'month')));
    return { repo: ratio(scopes[0]!, 0), installation: scopes[1] ? ratio(scopes[1], 2) : null };
  }

  async spent(subject: string, period: Period, at = Date.now()): Promise<Totals> {
    const stored = await this.redis.hgetall(this.keys.repoSpend(subject, spendPeriod(period, at)));
    return { tokens: Number(stored.tokens ?? 0), usd: Number(stored.usd ?? 0) };
  }

  /** The larger of tokens and USD used of a budget; 0 without one. */
  private usedRatio(spent: Totals, budget: Totals): number {
    return Math.max(budget.tokens > 0 ? spent.tokens / budget.tokens : 0, budget.usd > 0 ? spent.usd / budget.usd : 0);
  }

  /** Why a new task for this repository (and installation) is refused now (a budget of theirs is spent), or null. */
  async refusal(spender: Spender, at = Date.now()): Promise<string | null> {
    if (!this.budgeted) return null;
    for (const scope of this.scopes(spender))
      for (const period of ['day', 'month'] as const) {
        const budget = this.budget(scope.setting, period);
        if (budget.tokens <= 0 && budget.usd <= 0) continue;
        const spent = await this.spent(scope.subject, period, at);
        const name = (unit: 'TOKENS' | 'USD') => `${scope.setting}_BUDGET_${unit}_${period.toUpperCase()}`;
        const when = period === 'day' ? 'today' : 'this month';
        const again = `new tasks start again ${RESETS[period]}`;
        if (budget.tokens > 0 && spent.tokens >= budget.tokens)
          return `${scope.label} spent ${formatTokens(spent.tokens)} tokens ${when} of its ${period === 'day' ? 'daily' : 'monthly'} budget of ${formatTokens(budget.tokens)} (${name('TOKENS')}); ${again}`;
        if (budget.usd > 0 && spent.usd >= budget.usd)
          return `${scope.label} spent ${formatUsd(spent.usd)} ${when} of its ${period === 'day' ? 'daily' : 'monthly'} budget of ${formatUsd(budget.usd)} (${name('USD')}); ${again}`;
      }
    return null;
  }
}
