import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { docker } from '../support/docker.js';
import { ensureWorkerImage, ROOT } from '../support/image.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startBerth, testEnv, type TestBerth } from '../support/berth.js';
import { createOutside } from '../support/outside.js';

/**
 * The agents users bring run on the image berth builds: a derived image with a real agent CLI from
 * npm (the example in examples/agent-images, which docs/agents.md shows), started as a berth task
 * under the full hardening. Claude Code is the one that needs more of Debian than node does (it
 * failed with a missing librt.so.1 on the earlier host-Node base).
 */
describe('a real agent CLI from npm on berth’s image', () => {
  let redis: TestRedis;
  let image: string;
  const derived = `berth-agent-claude:test-${process.pid}`;
  const codexImage = `berth-agent-codex:test-${process.pid}`;
  let berth: TestBerth | null = null;

  before(async () => {
    image = await ensureWorkerImage();
    redis = await startRedis();
    // The recipe as docs/agents.md gives it: its Dockerfile, built by the script the doc names.
    for (const [recipe, tag] of [
      ['claude-code', derived],
      ['codex', codexImage],
    ])
      execFileSync(join(ROOT, 'scripts/build-agent-image.sh'), [`examples/agent-images/${recipe}.Dockerfile`, tag!, image], {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
  });
  after(async () => {
    await berth?.close().catch(() => {});
    await redis.stop();
    for (const tag of [derived, codexImage])
      await docker
        .getImage(tag)
        .remove({ force: true })
        .catch(() => {});
  });

  it("claude --version runs as a berth task, in berth's hardened container spec with no network", async () => {
    berth = await startBerth(testEnv(redis, derived, { AGENT_COMMAND_CLAUDE: 'claude --version', AGENT_COMMAND_VERSION: 'node --version' }));
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'claude', repo: 'octo/widgets' });
    const task = await berth.waitFor(body.id, ['completed', 'failed'], 120_000);
    assert.equal(task.state, 'completed', JSON.stringify(task));
    const { body: logs } = await berth.api('GET', `/api/tasks/${body.id}/logs`);
    assert.ok(
      logs.lines.some((line: string) => /^\d+\.\d+\.\d+ \(Claude Code\)$/.test(line)),
      JSON.stringify(logs.lines),
    );
  });

  it("berth's own image runs Node 24 or newer", async () => {
    const { body } = await berth!.api('POST', '/api/tasks', { kind: 'version', repo: 'octo/widgets' });
    const task = await berth!.waitFor(body.id, ['completed', 'failed'], 60_000);
    const { body: logs } = await berth!.api('GET', `/api/tasks/${body.id}/logs`);
    assert.equal(task.state, 'completed', JSON.stringify(task));
    assert.ok(Number(/^v(\d+)\./.exec(logs.lines[0])?.[1]) >= 24, JSON.stringify(logs.lines));
  });
  it("claude -p answers through berth's egress proxy against a fake Anthropic API: the provider sees the real key, the worker only its credential", async () => {
    const realKey = `sk-ant-agent-cli-${process.pid}-real`;
    const world = await createOutside(image);
    const env = testEnv(redis, derived, {
      EGRESS: 'proxy',
      EGRESS_NETWORKS: world.network.name,
      EGRESS_ALLOW_PRIVATE: world.subnet,
      EGRESS_PROVIDERS: 'anthropic',
      PROVIDER_ANTHROPIC_URL: 'http://models.test',
      PROVIDER_ANTHROPIC_KEY: realKey,
      WORKER_ENV: 'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC,DISABLE_AUTOUPDATER',
      AGENT_COMMAND_ASK: 'claude -p "Answer with one word: pong" --output-format json --model claude-sonnet-4-5',
      TASK_ATTEMPTS: '1',
    });
    const asker = await startBerth(env, { hostEnv: { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_AUTOUPDATER: '1' } });
    try {
      const models = await world.host('models.test', 'anthropic', { env: ['STREAM_EVENTS=1', 'STREAM_DELAY_MS=10'] });
      const { body } = await asker.api('POST', '/api/tasks', { kind: 'ask', repo: 'octo/widgets' });
      const task = await asker.waitFor(body.id, ['completed', 'failed'], 180_000);
      const { body: logs } = await asker.api('GET', `/api/tasks/${body.id}/logs`);
      assert.equal(task.state, 'completed', `${JSON.stringify(task).slice(0, 1500)}\n${logs.lines.join('\n').slice(-3000)}`);
      const answer = logs.lines
        .map((line: string) => {
          try {
            return JSON.parse(line);
          } catch {
            return null;
          }
        })
        .find((j: { type?: string } | null) => j?.type === 'result');
      assert.ok(answer, logs.lines.join('\n').slice(-2000));
      assert.match(String(answer.result), /pong/, "Claude Code printed the fake provider's answer");
      const calls = String(await models.logs({ stdout: true }))
        .split('\n')
        .filter((line) => line.includes('"apiKey"'))
        .map((line) => JSON.parse(line.slice(line.indexOf('{'))) as { path: string; apiKey: string | null });
      assert.ok(
        calls.some((c) => c.path.startsWith('/v1/messages')),
        JSON.stringify(calls),
      );
      for (const call of calls) assert.equal(call.apiKey, realKey, `${call.path} carried the real key, swapped in by the proxy`);
      assert.ok(task.egress.usage.requests >= 1, JSON.stringify(task.egress));
      // Claude Code's own cost figure (its result line's total_cost_usd), kept beside the proxy's meter.
      assert.equal(task.spend?.selfReported?.usd, answer.total_cost_usd, JSON.stringify(task.spend));
      assert.equal(typeof answer.total_cost_usd, 'number');
    } finally {
      await asker.close();
      await world.remove([env.QUEUE_NAME!]);
    }
  });

  it("codex exec, as docs/agents.md sets it up, answers through berth's egress proxy against a fake OpenAI Responses API: the provider sees the real key, the worker only its credential", async () => {
    const realKey = `sk-openai-agent-cli-${process.pid}-real`;
    // The command line docs/agents.md gives, with a one-line prompt in place of its review prompt.
    const documented = /AGENT_COMMAND_REVIEW="(codex exec [^"]*?) '[^']*'"/.exec(readFileSync(join(ROOT, 'docs/agents.md'), 'utf8'))?.[1];
    assert.ok(documented, 'docs/agents.md shows a codex exec command line');
    const world = await createOutside(image);
    const env = testEnv(redis, codexImage, {
      EGRESS: 'proxy',
      EGRESS_NETWORKS: world.network.name,
      EGRESS_ALLOW_PRIVATE: world.subnet,
      EGRESS_PROVIDERS: 'openai',
      PROVIDER_OPENAI_URL: 'http://models.test/v1',
      PROVIDER_OPENAI_KEY: realKey,
      AGENT_COMMAND_ASK: `${documented} 'Answer with one word: pong'`,
      TASK_ATTEMPTS: '1',
    });
    const asker = await startBerth(env);
    try {
      const models = await world.host('models.test', 'anthropic', { env: ['STREAM_DELAY_MS=10'] });
      const { body } = await asker.api('POST', '/api/tasks', { kind: 'ask', repo: 'octo/widgets' });
      const task = await asker.waitFor(body.id, ['completed', 'failed'], 180_000);
      const { body: logs } = await asker.api('GET', `/api/tasks/${body.id}/logs`);
      assert.equal(task.state, 'completed', `${JSON.stringify(task).slice(0, 1500)}\n${logs.lines.join('\n').slice(-3000)}`);
      // codex exec --json: one event per line; the agent's answer is an item.completed agent_message.
      const events = logs.lines.flatMap((line: string) => {
        try {
          return [JSON.parse(line) as { type?: string; item?: { type?: string; text?: string } }];
        } catch {
          return [];
        }
      });
      const answer = events.find((e: { type?: string; item?: { type?: string } }) => e.type === 'item.completed' && e.item?.type === 'agent_message');
      assert.match(String(answer?.item?.text), /pong/, `Codex printed the fake provider's answer: ${logs.lines.join('\n').slice(-2000)}`);
      const calls = String(await models.logs({ stdout: true }))
        .split('\n')
        .filter((line) => line.includes('"authorization"'))
        .map((line) => JSON.parse(line.slice(line.indexOf('{'))) as { path: string; authorization: string | null });
      assert.ok(
        calls.some((c) => c.path === '/v1/responses'),
        JSON.stringify(calls),
      );
      for (const call of calls) assert.equal(call.authorization, `Bearer ${realKey}`, `${call.path} carried the real key, swapped in by the proxy`);
      assert.ok(task.egress.usage.requests >= 1, JSON.stringify(task.egress));
      assert.ok(task.egress.usage.outputTokens >= 9, "the proxy metered the stream's response.completed usage");
    } finally {
      await asker.close();
      await world.remove([env.QUEUE_NAME!]);
    }
  });
});
