import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { realParts } from '../support/suite.js';
import { recordEvents } from '../support/docker.js';
import { ROOT } from '../support/image.js';
import { startBerth, type TestBerth } from '../support/berth.js';
import { waitUntil } from '../support/wait.js';

const OUTPUT = join(ROOT, 'test-output/board');
const PASSWORD = 'board-password-123';

/** Debian's chromium, driven by playwright-core; never a downloaded browser. */
describe('Bull Board in a real browser', () => {
  const parts = realParts();
  let berth: TestBerth;
  let browser: Browser;

  before(async () => {
    berth = await startBerth(parts.env({ TASK_ATTEMPTS: '1', AGENT_COMMAND_FLAKY: 'node /agents/flaky.mjs', BOARD_PASSWORD: PASSWORD }));
    parts.berths.push(berth);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    mkdirSync(OUTPUT, { recursive: true });
  });
  after(async () => {
    await browser?.close();
  });

  it('refuses an anonymous visit; after login shows the queue, a failed task’s logs and reason; Retry runs it in a new container', async () => {
    const anonymous = await browser.newPage();
    const refused = await anonymous.goto(`${berth.url}/admin/queues`).then(
      (response) => String(response?.status()),
      (error: Error) => error.message,
    );
    assert.match(refused, /401|ERR_INVALID_AUTH_CREDENTIALS/);
    const direct = await anonymous.request.get(`${berth.url}/admin/queues`);
    assert.equal(direct.status(), 401);
    assert.doesNotMatch(await direct.text(), /bull-board|<html/i);
    await anonymous.close();

    const recorder = await recordEvents(berth.config.QUEUE_NAME);
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'flaky', repo: 'octo/board' });
    await berth.waitFor(body.id, ['failed']);

    const context = await browser.newContext({ httpCredentials: { username: 'admin', password: PASSWORD } });
    const page = await context.newPage();
    await page.goto(`${berth.url}/admin/queues`);
    await page.getByText(berth.config.QUEUE_NAME).first().waitFor();

    await page.goto(`${berth.url}/admin/queues/queue/${berth.config.QUEUE_NAME}/${body.id}`);
    await page.getByText('exit code 3').first().waitFor();
    await page.locator('button', { hasText: 'Logs' }).click();
    await page.getByText('first attempt always fails').waitFor();
    await page.screenshot({ path: join(OUTPUT, 'failed-task-logs.png'), fullPage: true });

    // The job card's actions are unlabelled icon buttons on the job id's row (bull-board 9.10);
    // the leftmost is Retry.
    const idBox = (await page.getByText(body.id, { exact: true }).first().boundingBox())!;
    const row: Array<{ x: number; index: number }> = [];
    const buttons = page.locator('button:has(svg)');
    for (let i = 0; i < (await buttons.count()); i++) {
      const box = await buttons.nth(i).boundingBox();
      if (box && Math.abs(box.y + box.height / 2 - (idBox.y + idBox.height / 2)) < 15 && box.x > idBox.x) row.push({ x: box.x, index: i });
    }
    assert.equal(row.length, 4, 'retry, duplicate, update, remove');
    await buttons.nth(row.sort((a, b) => a.x - b.x)[0]!.index).click();
    const confirm = page.getByRole('button', { name: /^(retry|confirm|ok|yes)$/i });
    if (await confirm.count()) await confirm.first().click();
    await berth.waitFor(body.id, ['waiting', 'active', 'completed'], 15_000).catch(() => null);
    const done = await berth.waitFor(body.id, ['completed', 'failed'], 60_000).catch(() => null);
    await page.screenshot({ path: join(OUTPUT, 'after-retry.png'), fullPage: true });
    assert.equal(done?.state, 'completed', JSON.stringify(done));
    assert.deepEqual(done!.result, { attempt: 2 });
    await waitUntil(() => recorder.events.filter((e) => e.action === 'create').length === 2, 'second container');
    await recorder.stop();
    assert.deepEqual(
      recorder.events.filter((e) => e.action === 'create').map((e) => e.attempt),
      ['1', '2'],
      'Retry ran in a new container',
    );
  });
});
