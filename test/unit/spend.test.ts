import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/core/config.js';
import { budgetFor } from '../../src/core/config/budgets.js';
import { budgetReached, formatTokens, formatUsd, priceFor, selfReportedSpend, spendOf } from '../../src/core/spend.js';
import { priorSpend } from '../../src/core/task-view.js';
import { spendFacts } from '../../src/github/check-run.js';

const usage = (inputTokens: number, outputTokens: number, cacheReadTokens = 0, cacheWriteTokens = 0) => ({
  inputTokens,
  outputTokens,
  cacheReadTokens,
  cacheWriteTokens,
  requests: 1,
});
const prices = {
  'claude-sonnet-4-5': { input: 3, output: 15, cache_read: 0.3, cache_write: 3.75 },
  'claude-sonnet-4': { input: 1, output: 1 },
  'gpt-5': { input: 1.25, output: 10 },
};

describe('spend', () => {
  it('prices a model by its own name, else by the longest name it starts with (dated ids)', () => {
    assert.equal(priceFor(prices, 'claude-sonnet-4-5-20250929'), prices['claude-sonnet-4-5']);
    assert.equal(priceFor(prices, 'claude-sonnet-4-20250514'), prices['claude-sonnet-4']);
    assert.equal(priceFor(prices, 'claude-opus-4'), undefined);
  });

  it('counts every token type and prices each; cache prices default to the input price; an unpriced model is named, not guessed', () => {
    const spend = spendOf(
      { 'claude-sonnet-4-5-20250929': usage(1_000_000, 100_000, 2_000_000, 10_000), 'gpt-5': usage(0, 0, 1_000), mystery: usage(5, 5) },
      prices,
    );
    assert.equal(spend.tokens, 1_000_000 + 100_000 + 2_000_000 + 10_000 + 1_000 + 10);
    assert.ok(Math.abs(spend.usd - (3 + 1.5 + 0.6 + 0.0375 + 0.00125)) < 1e-9, String(spend.usd));
    assert.deepEqual(spend.unpriced, ['mystery']);
  });

  it('a budget is reached at its figure, in tokens or USD, and says what was spent against what', () => {
    assert.equal(budgetReached({ tokens: 100 }, { tokens: 99, usd: 0, unpriced: [] }), null);
    assert.equal(budgetReached({ tokens: 100 }, { tokens: 142, usd: 0, unpriced: [] }), 'spent 142 tokens of a budget of 100');
    assert.equal(budgetReached({ usd: 2 }, { tokens: 5, usd: 2.5, unpriced: [] }), 'spent $2.50 of a budget of $2.00');
    assert.equal(budgetReached(undefined, { tokens: 1e9, usd: 1e9, unpriced: [] }), null);
    assert.equal(formatTokens(1_234_567), '1.2M');
    assert.equal(formatTokens(12_345), '12k');
    assert.equal(formatUsd(0.0003825), '$0.0004');
  });

  it("retries draw on one budget: an attempt's earlier attempts are counted once, also when it is re-delivered", () => {
    const progress = { attempt: 1, spentBefore: {}, egress: { byModel: { m: usage(10, 5) } } };
    assert.deepEqual(priorSpend(progress, 2), { m: usage(10, 5) }, 'attempt 2 starts with what attempt 1 spent');
    assert.deepEqual(
      priorSpend({ attempt: 2, spentBefore: { m: usage(10, 5) } }, 2),
      { m: usage(10, 5) },
      'attempt 2 adopted after a crash: the same, not doubled',
    );
    assert.deepEqual(priorSpend(undefined, 1), {});
  });

  it('per-kind budgets over the default; USD budgets need a price table; budgets need the proxy', () => {
    const base = {
      REDIS_URL: 'redis://127.0.0.1:6379',
      API_TOKEN: 'a'.repeat(32),
      WORKER_IMAGE: 'berth:local',
      AGENT_COMMAND_REVIEW: 'agent',
      AGENT_COMMAND_FIX: 'agent',
    };
    const config = parseConfig({ ...base, TASK_BUDGET_TOKENS: '1000000', TASK_BUDGET_TOKENS_FIX: '50', TASK_BUDGET_USD_FIX: '0' });
    assert.deepEqual(budgetFor(config.budgets, 'review'), { tokens: 1_000_000 });
    assert.deepEqual(budgetFor(config.budgets, 'fix'), { tokens: 50 }, 'a kind of its own, 0 meaning none');
    assert.throws(() => parseConfig({ ...base, TASK_BUDGET_USD: '2' }), /TASK_BUDGET_USD: a budget in USD needs the price table \(MODEL_PRICES_FILE\)/);
    assert.throws(() => parseConfig({ ...base, TASK_BUDGET_TOKENS: 'lots' }), /TASK_BUDGET_TOKENS: expected a whole number of tokens, got 'lots'/);
    assert.throws(() => parseConfig({ ...base, TASK_BUDGET_TOKENS_NOPE: '5' }), /TASK_BUDGET_TOKENS_NOPE: no AGENT_COMMAND_NOPE/);
    assert.throws(() => parseConfig({ ...base, EGRESS: 'open', TASK_BUDGET_TOKENS: '5' }), /budgets are kept by the egress proxy.*need EGRESS=proxy/);
    assert.equal(parseConfig({ ...base, REPO_BUDGET_TOKENS_DAY: '2000000' }).REPO_BUDGET_TOKENS_DAY, 2_000_000);
    assert.throws(() => parseConfig({ ...base, REPO_BUDGET_USD_DAY: '25' }), /REPO_BUDGET_USD_DAY: a budget in USD needs the price table/);
    assert.throws(() => parseConfig({ ...base, REPO_BUDGET_USD_DAY: 'lots' }), /REPO_BUDGET_USD_DAY: expected an amount in USD/);
    assert.throws(
      () => parseConfig({ ...base, INSTALLATION_BUDGET_USD_MONTH: '300', REPO_BUDGET_USD_MONTH: '50' }),
      /REPO_BUDGET_USD_MONTH\/INSTALLATION_BUDGET_USD_MONTH: a budget in USD needs the price table/,
    );
    assert.throws(() => parseConfig({ ...base, EGRESS: 'open', REPO_BUDGET_TOKENS_DAY: '5' }), /REPO_BUDGET_TOKENS_DAY: .*need EGRESS=proxy/);
  });

  it('the check run says what the task spent', () => {
    assert.deepEqual(spendFacts({ attempts: 2, spend: { tokens: 1_234_567, usd: 3.4, unpriced: [], byModel: {} } }), [
      '- Spend: 1.2M tokens, $3.40 over 2 attempts',
    ]);
    assert.deepEqual(spendFacts({ attempts: 1, spend: { tokens: 500, usd: 0, unpriced: ['m'], byModel: {} } }), ['- Spend: 500 tokens (no price for `m`)']);
    assert.deepEqual(spendFacts({ attempts: 1, spend: null }), []);
    const said = { tokens: 1_234_567, usd: 3.4, unpriced: [], byModel: {}, selfReported: { usd: 3.1, tokens: 1_200_000 } };
    assert.deepEqual(spendFacts({ attempts: 1, spend: said }), ['- Spend: 1.2M tokens, $3.40 (the agent reported 1.2M tokens, $3.10)']);
    assert.deepEqual(spendFacts({ attempts: 1, spend: { tokens: 0, usd: 0, unpriced: [], byModel: {}, selfReported: { usd: 0.5 } } }), [
      '- Spend: none metered; the agent reported $0.50',
    ]);
  });

  it("an agent's own figures (Claude Code's result) are read beside the meter, and only numbers count", () => {
    assert.deepEqual(
      selfReportedSpend({
        type: 'result',
        total_cost_usd: 0.0123,
        usage: { input_tokens: 10, output_tokens: 20, cache_read_input_tokens: 5, cache_creation_input_tokens: 1, service_tier: 'standard' },
      }),
      { usd: 0.0123, tokens: 36 },
    );
    assert.deepEqual(selfReportedSpend({ cost_usd: 2 }), { usd: 2 });
    assert.equal(selfReportedSpend({ total_cost_usd: '9', usage: { input_tokens: -1 } }), null, 'strings and negatives are not figures');
    assert.equal(selfReportedSpend(null), null);
    assert.equal(selfReportedSpend('done'), null);
  });
});
