import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { docker } from '../support/docker.js';
import { ensureWorkerImage, ROOT } from '../support/image.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startBerth, testEnv, type TestBerth } from '../support/berth.js';

const cli = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

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
  let berth: TestBerth | null = null;

  before(async () => {
    image = await ensureWorkerImage();
    redis = await startRedis();
    const ca = '/etc/ssl/certs/ca-certificates.crt';
    execFileSync(cli, ['build', '--network', 'host', ...(existsSync(ca) ? ['--secret', `id=ca,src=${ca}`] : []), '--build-arg', `BERTH_IMAGE=${image}`, '-f', join(ROOT, 'examples/agent-images/claude-code.Dockerfile'), '-t', derived, join(ROOT, 'examples/agent-images')], {
      env: { ...process.env, DOCKER_BUILDKIT: '1' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  });
  after(async () => {
    await berth?.close().catch(() => {});
    await redis.stop();
    await docker.getImage(derived).remove({ force: true }).catch(() => {});
  });

  it("claude --version runs as a berth task, in berth's hardened container spec with no network", async () => {
    berth = await startBerth(testEnv(redis, derived, { AGENT_COMMAND_CLAUDE: 'claude --version', AGENT_COMMAND_VERSION: 'node --version' }));
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'claude', repo: 'octo/widgets' });
    const task = await berth.waitFor(body.id, ['completed', 'failed'], 120_000);
    assert.equal(task.state, 'completed', JSON.stringify(task));
    const { body: logs } = await berth.api('GET', `/api/tasks/${body.id}/logs`);
    assert.ok(logs.lines.some((line: string) => /^\d+\.\d+\.\d+ \(Claude Code\)$/.test(line)), JSON.stringify(logs.lines));
  });

  it("berth's own image runs Node 24 or newer", async () => {
    const { body } = await berth!.api('POST', '/api/tasks', { kind: 'version', repo: 'octo/widgets' });
    const task = await berth!.waitFor(body.id, ['completed', 'failed'], 60_000);
    const { body: logs } = await berth!.api('GET', `/api/tasks/${body.id}/logs`);
    assert.equal(task.state, 'completed', JSON.stringify(task));
    assert.ok(Number(/^v(\d+)\./.exec(logs.lines[0])?.[1]) >= 24, JSON.stringify(logs.lines));
  });
});
