import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { berthKeys } from './keys.js';
import { formatTokens, formatUsd, type Spend } from './spend.js';

/** Days of per-repository spend kept (today's is the one budgets read; the rest is for people). */
const KEEP_DAYS = 3;

export type RepoBudgetConfig = Pick<Config, 'REPO_BUDGET_TOKENS_DAY' | 'REPO_BUDGET_USD_DAY' | 'QUEUE_NAME'>;

/** The UTC day a spend counts against: budgets per repository reset at 00:00 UTC. */
export function spendDay(at = Date.now()): string {
  return new Date(at).toISOString().slice(0, 10);
}

/**
 * What each repository's tasks spent per day (tokens and USD, as the egress proxy metered them),
 * added by the consumer as each attempt ends; and the daily budgets new tasks are held to
 * (REPO_BUDGET_TOKENS_DAY, REPO_BUDGET_USD_DAY). Running tasks always finish: a spent budget only
 * refuses new ones.
 */
export class RepoSpend {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    private readonly config: RepoBudgetConfig,
  ) {
    this.keys = berthKeys(config.QUEUE_NAME);
  }

  get budgeted(): boolean {
    return this.config.REPO_BUDGET_TOKENS_DAY > 0 || this.config.REPO_BUDGET_USD_DAY > 0;
  }

  /** Adds an attempt's spend to its repository's day; returns the day's totals after it. */
  async add(repo: string, spend: Pick<Spend, 'tokens' | 'usd'>, at = Date.now()): Promise<{ tokens: number; usd: number }> {
    const key = this.keys.repoSpend(repo, spendDay(at));
    const results = await this.redis
      .multi()
      .hincrby(key, 'tokens', Math.max(0, Math.round(spend.tokens)))
      .hincrbyfloat(key, 'usd', Math.max(0, spend.usd))
      .expire(key, KEEP_DAYS * 86_400)
      .exec();
    return { tokens: Number(results?.[0]?.[1] ?? 0), usd: Number(results?.[1]?.[1] ?? 0) };
  }

  async today(repo: string, at = Date.now()): Promise<{ tokens: number; usd: number }> {
    const stored = await this.redis.hgetall(this.keys.repoSpend(repo, spendDay(at)));
    return { tokens: Number(stored.tokens ?? 0), usd: Number(stored.usd ?? 0) };
  }

  /** How much of its daily budget the repository has used (the larger of tokens and USD); 0 without a budget. */
  usedRatio(spent: { tokens: number; usd: number }): number {
    const ratios = [
      this.config.REPO_BUDGET_TOKENS_DAY > 0 ? spent.tokens / this.config.REPO_BUDGET_TOKENS_DAY : 0,
      this.config.REPO_BUDGET_USD_DAY > 0 ? spent.usd / this.config.REPO_BUDGET_USD_DAY : 0,
    ];
    return Math.max(...ratios);
  }

  /** Why a new task for `repo` is refused today (its daily budget is spent), or null. */
  async refusal(repo: string, at = Date.now()): Promise<string | null> {
    if (!this.budgeted) return null;
    const spent = await this.today(repo, at);
    const { REPO_BUDGET_TOKENS_DAY: tokens, REPO_BUDGET_USD_DAY: usd } = this.config;
    if (tokens > 0 && spent.tokens >= tokens)
      return `${repo} spent ${formatTokens(spent.tokens)} tokens today of its daily budget of ${formatTokens(tokens)} (REPO_BUDGET_TOKENS_DAY); new tasks start again at 00:00 UTC`;
    if (usd > 0 && spent.usd >= usd)
      return `${repo} spent ${formatUsd(spent.usd)} today of its daily budget of ${formatUsd(usd)} (REPO_BUDGET_USD_DAY); new tasks start again at 00:00 UTC`;
    return null;
  }
}
