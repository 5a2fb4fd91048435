import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { NO_SPEND_BUDGETS, SpendBudgets, spendPeriod } from '../../src/core/spend-budgets.js';
import { uniqueQueue } from '../support/berth.js';
import { startRedis, type TestRedis } from '../support/redis.js';

/** Budgets per repository and installation, per UTC day and month, against a real Redis. */
describe('spend budgets', () => {
  let redis: TestRedis;
  let client: Redis;
  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  after(async () => {
    client.disconnect();
    await redis.stop();
  });

  it("a repository's day and month, its installation's over all its repositories; each refusal names its budget and when it resets", async () => {
    const budgets = new SpendBudgets(client, {
      ...NO_SPEND_BUDGETS,
      QUEUE_NAME: uniqueQueue(),
      REPO_BUDGET_TOKENS_DAY: 1_000,
      REPO_BUDGET_USD_MONTH: 10,
      INSTALLATION_BUDGET_TOKENS_DAY: 1_500,
    });
    const day1 = Date.UTC(2026, 11, 3, 12);
    const app = { repo: 'octo/app', installationId: 42 };
    const lib = { repo: 'octo/lib', installationId: 42 };
    assert.equal(await budgets.refusal(app, day1), null);
    assert.deepEqual(await budgets.add(app, { tokens: 900, usd: 4 }, day1), { repo: 0.9, installation: 0.6 });
    assert.equal(await budgets.refusal(app, day1), null, 'under every budget');
    await budgets.add(lib, { tokens: 700, usd: 1 }, day1);
    assert.equal(
      await budgets.refusal(app, day1),
      'installation 42 spent 1.6k tokens today of its daily budget of 1.5k (INSTALLATION_BUDGET_TOKENS_DAY); new tasks start again at 00:00 UTC',
      "the installation's day is spent, though octo/app's is not",
    );
    assert.equal(await budgets.refusal({ repo: 'octo/app' }, day1), null, 'a task without a known installation is held to its repository only');
    await budgets.add(app, { tokens: 200, usd: 7 }, day1);
    assert.match(
      (await budgets.refusal({ repo: 'octo/app' }, day1))!,
      /^octo\/app spent 1\.1k tokens today of its daily budget of 1\.0k \(REPO_BUDGET_TOKENS_DAY\)/,
    );

    const day2 = day1 + 86_400_000;
    assert.equal(
      await budgets.refusal({ repo: 'octo/app' }, day2),
      'octo/app spent $11.00 this month of its monthly budget of $10.00 (REPO_BUDGET_USD_MONTH); new tasks start again on the 1st of next month (UTC)',
      'a new day, the same month',
    );
    assert.equal(await budgets.refusal(lib, day2), null, "another repository of the installation, on a new day: the installation's day reset");
    assert.equal(await budgets.refusal({ repo: 'octo/app' }, Date.UTC(2027, 0, 1, 0, 0, 1)), null, 'a new month');
    assert.equal(spendPeriod('month', day1), '2026-12');
    const ttl = await client.ttl(`berth:${(budgets as unknown as { config: { QUEUE_NAME: string } }).config.QUEUE_NAME}:repo-spend:octo/app:2026-12`);
    assert.ok(ttl > 60 * 86_400 - 10, `a month's totals are kept past the month: ${ttl}`);
  });
});
