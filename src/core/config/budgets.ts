import { readFileSync } from 'node:fs';
import { priceTableSchema, type Budget, type PriceTable } from '../spend.js';
import { kindVariables, noCommandFor } from './kind-variables.js';
import { amountHint, parseAmount } from './fields.js';

const TOKENS_PREFIX = 'TASK_BUDGET_TOKENS_';
const USD_PREFIX = 'TASK_BUDGET_USD_';

export interface Budgets {
  /** TASK_BUDGET_TOKENS and TASK_BUDGET_USD: every kind's, unless its own says otherwise. */
  all: Budget;
  /** TASK_BUDGET_TOKENS_<KIND>, TASK_BUDGET_USD_<KIND>. */
  byKind: Record<string, Budget>;
}

/** A kind's model budget per task (retries draw on it too); undefined when it has none. */
export function budgetFor(budgets: Budgets, kind: string): Budget | undefined {
  const budget = { ...budgets.all, ...(Object.hasOwn(budgets.byKind, kind) ? budgets.byKind[kind] : {}) };
  const set = Object.fromEntries(Object.entries(budget).filter(([, value]) => value !== undefined && value > 0)) as Budget;
  return Object.keys(set).length ? set : undefined;
}

/** The budgets and the price table; every problem goes into `problems`. */
export function parseBudgets(
  env: NodeJS.ProcessEnv,
  raw: { TASK_BUDGET_TOKENS?: string; TASK_BUDGET_USD?: string; MODEL_PRICES_FILE?: string },
  kinds: string[],
  problems: string[],
): { budgets: Budgets; prices: PriceTable } {
  const number = (key: string, text: string | undefined, whole: boolean): number | undefined => {
    if (text === undefined || text.trim() === '') return undefined;
    const value = parseAmount(text, whole);
    if (value === null) problems.push(`${key}: expected ${amountHint(whole)}, got '${text}' (0: no budget)`);
    return value ?? undefined;
  };
  const all: Budget = {};
  const tokens = number('TASK_BUDGET_TOKENS', raw.TASK_BUDGET_TOKENS, true);
  const usd = number('TASK_BUDGET_USD', raw.TASK_BUDGET_USD, false);
  if (tokens !== undefined) all.tokens = tokens;
  if (usd !== undefined) all.usd = usd;
  const byKind: Record<string, Budget> = Object.create(null);
  for (const [prefix, field, whole] of [
    [TOKENS_PREFIX, 'tokens', true],
    [USD_PREFIX, 'usd', false],
  ] as const) {
    for (const { key, kind, value } of kindVariables(env, prefix)) {
      if (!kinds.includes(kind)) {
        problems.push(noCommandFor(key, kind));
        continue;
      }
      const parsed = number(key, value, whole);
      if (parsed !== undefined) byKind[kind] = { ...byKind[kind], [field]: parsed };
    }
  }
  let prices: PriceTable = {};
  if (raw.MODEL_PRICES_FILE) {
    try {
      const parsed = priceTableSchema.safeParse(JSON.parse(readFileSync(raw.MODEL_PRICES_FILE, 'utf8')));
      if (parsed.success) prices = parsed.data;
      else
        problems.push(
          `MODEL_PRICES_FILE: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'the table'}: ${i.message}`).join('; ')} (expected {"<model>": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}} in USD per million tokens)`,
        );
    } catch (error) {
      problems.push(`MODEL_PRICES_FILE: cannot read ${raw.MODEL_PRICES_FILE} as JSON (${(error as Error).message})`);
    }
  }
  const budgets = { all, byKind };
  const usdBudgets = kinds.some((kind) => budgetFor(budgets, kind)?.usd !== undefined);
  if (usdBudgets && Object.keys(prices).length === 0)
    problems.push('TASK_BUDGET_USD: a budget in USD needs the price table (MODEL_PRICES_FILE); berth has no built-in prices');
  return { budgets, prices };
}
