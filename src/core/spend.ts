import { z } from 'zod';
import type { Usage } from './egress-record.js';

/**
 * What model calls cost, and when a task has spent its budget. Shared by the egress proxy (which
 * refuses a model call once the budget is reached) and berth (which shows the spend and fails the
 * task). Prices come only from the operator's table: berth has no built-in prices that would go
 * stale unnoticed.
 */

/** USD per million tokens, as providers publish them. */
export const modelPriceSchema = z.strictObject({
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  cache_read: z.number().nonnegative().optional(),
  cache_write: z.number().nonnegative().optional(),
});
export type ModelPrice = z.infer<typeof modelPriceSchema>;
/** Model name (or the start of one: `claude-sonnet-4-5` prices `claude-sonnet-4-5-20250929`) → price. */
export const priceTableSchema = z.record(z.string().min(1), modelPriceSchema);
export type PriceTable = z.infer<typeof priceTableSchema>;

/** Usage per model; `unknown` for a response that named none. */
export type ModelUsage = Record<string, Usage>;

export interface Budget {
  /** Tokens of every type (input, output, cache read and write) the task may use; absent: no cap. */
  tokens?: number;
  /** USD the task may spend, by the price table; absent: no cap. */
  usd?: number;
}

export interface Spend {
  tokens: number;
  usd: number;
  /** Models used that the price table does not price (their cost is not in `usd`). */
  unpriced: string[];
}

export const NOTHING_SPENT: Spend = { tokens: 0, usd: 0, unpriced: [] };

export const EMPTY_USAGE: Usage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, requests: 0 };

export function addUsage(a: Usage, b: Partial<Usage>): Usage {
  return {
    inputTokens: a.inputTokens + (b.inputTokens ?? 0),
    outputTokens: a.outputTokens + (b.outputTokens ?? 0),
    cacheReadTokens: a.cacheReadTokens + (b.cacheReadTokens ?? 0),
    cacheWriteTokens: a.cacheWriteTokens + (b.cacheWriteTokens ?? 0),
    requests: a.requests + (b.requests ?? 0),
  };
}

export function mergeModelUsage(...parts: Array<ModelUsage | undefined>): ModelUsage {
  const merged: ModelUsage = {};
  for (const part of parts) for (const [model, usage] of Object.entries(part ?? {})) merged[model] = addUsage(merged[model] ?? EMPTY_USAGE, usage);
  return merged;
}

export function tokensOf(usage: Usage): number {
  return usage.inputTokens + usage.outputTokens + usage.cacheReadTokens + usage.cacheWriteTokens;
}

/** The table's price for `model`: its own entry, else the longest entry it starts with. */
export function priceFor(prices: PriceTable, model: string): ModelPrice | undefined {
  if (Object.hasOwn(prices, model)) return prices[model];
  const prefix = Object.keys(prices)
    .filter((name) => model.startsWith(name))
    .sort((a, b) => b.length - a.length)[0];
  return prefix ? prices[prefix] : undefined;
}

/** Tokens and USD of usage per model; cache prices default to input's when the table gives none. */
export function spendOf(byModel: ModelUsage, prices: PriceTable): Spend {
  let tokens = 0;
  let usd = 0;
  const unpriced: string[] = [];
  for (const [model, usage] of Object.entries(byModel)) {
    tokens += tokensOf(usage);
    const price = priceFor(prices, model);
    if (!price) {
      if (tokensOf(usage) > 0) unpriced.push(model);
      continue;
    }
    usd +=
      (usage.inputTokens * price.input +
        usage.outputTokens * price.output +
        usage.cacheReadTokens * (price.cache_read ?? price.input) +
        usage.cacheWriteTokens * (price.cache_write ?? price.input)) /
      1e6;
  }
  return { tokens, usd, unpriced };
}

/** Why `spend` has used up `budget`, in words for the agent, the task and the check run; null while it has not. */
export function budgetReached(budget: Budget | undefined, spend: Spend): string | null {
  if (!budget) return null;
  if (budget.tokens !== undefined && spend.tokens >= budget.tokens)
    return `spent ${formatTokens(spend.tokens)} tokens of a budget of ${formatTokens(budget.tokens)}`;
  if (budget.usd !== undefined && spend.usd >= budget.usd) return `spent ${formatUsd(spend.usd)} of a budget of ${formatUsd(budget.usd)}`;
  return null;
}

/** 950, 12.3k, 1.2M. */
export function formatTokens(count: number): string {
  if (count >= 1e6) return `${(count / 1e6).toFixed(count >= 1e7 ? 0 : 1)}M`;
  if (count >= 1e3) return `${(count / 1e3).toFixed(count >= 1e4 ? 0 : 1)}k`;
  return String(count);
}

export function formatUsd(usd: number): string {
  return `$${usd < 0.01 && usd > 0 ? usd.toFixed(4) : usd.toFixed(2)}`;
}

/** What an agent said it used (e.g. Claude Code's `total_cost_usd` and `usage` in its result): kept beside the metered figures, never instead of them. */
export interface SelfReported {
  usd?: number;
  tokens?: number;
}

const SELF_REPORTED_TOKENS = ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens'] as const;

/** The agent's own usage figures in its result, or null where it gave none. Untrusted: shown as the agent's word only. */
export function selfReportedSpend(result: unknown): SelfReported | null {
  if (!result || typeof result !== 'object') return null;
  const r = result as { total_cost_usd?: unknown; cost_usd?: unknown; usage?: Record<string, unknown> };
  const reported: SelfReported = {};
  const usd = typeof r.total_cost_usd === 'number' ? r.total_cost_usd : typeof r.cost_usd === 'number' ? r.cost_usd : undefined;
  if (usd !== undefined && Number.isFinite(usd) && usd >= 0) reported.usd = usd;
  if (r.usage && typeof r.usage === 'object') {
    const counts = SELF_REPORTED_TOKENS.map((key) => r.usage?.[key]).filter((n): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0);
    if (counts.length) reported.tokens = counts.reduce((a, b) => a + b, 0);
  }
  return Object.keys(reported).length ? reported : null;
}
