// test-resources: compose
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import examples from '@octokit/webhooks-examples/api.github.com/index.json' with { type: 'json' };
import { deliver, rulesFile, WEBHOOK_SECRET } from '../support/github.js';
import { after, before, describe, it } from 'node:test';
import { docker, queueContainers, recordEvents, removeQueueContainers } from '../support/docker.js';
import { ensureWorkerImage, ROOT } from '../support/image.js';
import { freePort } from '../support/redis.js';
import { sleep, waitUntil } from '../support/wait.js';
import { LABEL } from '../../src/core/labels.js';

/**
 * The compose path for real: berth's image built from the Dockerfile, Redis and berth started by
 * docker-compose from compose.yaml, a task run in a worker container from the same image, then a
 * redeploy (berth container removed and started again) while a task runs.
 */
describe('deployment with compose.yaml', () => {
  const project = `berthdeploy${randomBytes(3).toString('hex')}`;
  const queue = `deploy-${randomBytes(3).toString('hex')}`;
  let token = '';
  let env: NodeJS.ProcessEnv;
  let url: string;
  const compose = (...args: string[]) =>
    execFileSync('docker-compose', ['-p', project, '-f', `${ROOT}/compose.yaml`, ...args], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  const composeContainer = async (service: string) => {
    const [found] = await docker.listContainers({ filters: { label: [`com.docker.compose.project=${project}`, `com.docker.compose.service=${service}`] } });
    assert.ok(found, `compose's ${service} container`);
    return docker.getContainer(found.Id).inspect();
  };
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${url}${path}`, {
      signal: AbortSignal.timeout(5000),
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, body: (await response.json()) as any };
  };
  const waitFor = async (id: string, states: string[], timeoutMs = 60_000) => {
    const keepAlive = setInterval(() => {}, 1000);
    try {
      return await waitUntil(
        async () => {
          // While berth is being redeployed the port answers nothing, or closes the connection.
          const task = await api('GET', `/api/tasks/${id}`).then(
            (r) => r.body,
            () => null,
          );
          return task && states.includes(task.state) ? task : null;
        },
        `task ${id} in ${states}`,
        timeoutMs,
        200,
      );
    } finally {
      clearInterval(keepAlive);
    }
  };

  before(async () => {
    const image = await ensureWorkerImage();
    const redisImage = execFileSync(`${ROOT}/scripts/make-redis-image.sh`).toString().trim();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // The secrets as an operator makes them: the script generates the API token; the webhook secret is filled in.
    const secrets = mkdtempSync(join(tmpdir(), 'berth-secrets-'));
    writeFileSync(join(secrets, 'github-webhook-secret'), `${WEBHOOK_SECRET}\n`);
    execFileSync(`${ROOT}/scripts/compose-secrets.sh`, { env: { ...process.env, BERTH_SECRETS_DIR: secrets }, stdio: 'ignore' });
    token = readFileSync(join(secrets, 'api-token'), 'utf8').trim();
    const rules = rulesFile({
      botLogin: 'octocat',
      trust: { owners: ['Codertocat'], permission: 'none' },
      rules: [{ on: 'pull_request.review_requested', kind: 'demo' }],
    });
    env = {
      ...process.env,
      COMPOSE_PROJECT_NAME: project,
      BERTH_IMAGE: image,
      REDIS_IMAGE: redisImage,
      BERTH_SECRETS_DIR: secrets,
      WEBHOOK_RULES: rules,
      PORT: String(port),
      BIND_IP: '127.0.0.1',
      QUEUE_NAME: queue,
      DOCKER_GID: String(statSync('/var/run/docker.sock').gid),
      WORKER_NETWORK: 'none',
      WORKER_MEMORY: '256m',
      WORKER_CPUS: '1',
    };
  });
  after(async () => {
    try {
      compose('down', '-v', '--remove-orphans', '-t', '2');
    } catch {
      // nothing was started
    }
    await removeQueueContainers(queue);
    // EGRESS=proxy (compose's default): berth started its proxy; it outlives compose down by design.
    for (const proxy of await docker.listContainers({ all: true, filters: { label: [`${LABEL.egressProxy}=${queue}`] } })) {
      await docker
        .getContainer(proxy.Id)
        .remove({ force: true, v: true })
        .catch(() => {});
      const name = proxy.Names[0]!.replace(/^\//, '');
      for (const volume of [name, `${name}-state`])
        await docker
          .getVolume(volume)
          .remove()
          .catch(() => {});
    }
  });

  it('compose.yaml validates; secrets are files, not environment values', () => {
    const config = compose('config');
    assert.match(config, /no-new-privileges:true/);
    assert.match(config, /127\.0\.0\.1/);
    assert.match(config, /--maxmemory-policy\s*\n?\s*-?\s*noeviction/);
    assert.doesNotMatch(config, /API_TOKEN: [0-9a-f]{20,}/, 'the token is not in the environment');
  });

  it('starts redis and berth as compose does; a task runs in a worker from the same image; a redeploy mid-task adopts it', async () => {
    // The documented start, as written (images made here: no registry is reachable).
    execFileSync(`${ROOT}/scripts/compose.sh`, ['up'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    // docker-proxy accepts connections before berth listens, and undici does not keep the event
    // loop alive for such a socket: time each probe out and hold the loop open meanwhile.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await waitUntil(
        async () =>
          (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
            (r) => r.status,
            () => 0,
          )) === 200,
        'berth ready',
        60_000,
        250,
      );
    } finally {
      clearInterval(keepAlive);
    }
    const berthContainer = (
      await docker.listContainers({ filters: { label: [`com.docker.compose.project=${project}`, 'com.docker.compose.service=berth'] } })
    )[0]!;
    const inspect = await docker.getContainer(berthContainer.Id).inspect();
    assert.equal(inspect.Config.User, '10001:10001', 'berth runs as non-root');
    assert.deepEqual(inspect.HostConfig.CapDrop, ['ALL']);
    assert.equal(inspect.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(inspect.HostConfig.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(inspect.HostConfig.PortBindings['3000/tcp']?.[0]?.HostIp, '127.0.0.1');
    assert.ok(!(inspect.Config.Env ?? []).some((e) => e.includes(token) || e.includes(WEBHOOK_SECRET)), '`docker inspect` shows no secret');

    // A signed delivery through the compose deployment: the rules file and the webhook secret file are in effect.
    const payload = JSON.parse(
      JSON.stringify((examples as any[]).find((e) => e.name === 'pull_request').examples.find((x: any) => x.action === 'review_requested')),
    );
    payload.requested_reviewer = { login: 'octocat' };
    const hook = await deliver(url, 'pull_request', payload);
    assert.equal(hook.status, 202, JSON.stringify(hook.body));
    assert.ok(hook.body.id, JSON.stringify(hook.body));
    const fromHook = await waitFor(hook.body.id, ['completed', 'failed']);
    assert.equal(fromHook.state, 'completed', JSON.stringify(fromHook));

    const recorder = await recordEvents(queue);
    const quick = await api('POST', '/api/tasks', { kind: 'demo', repo: 'octo/hello', prompt: '1' });
    assert.equal(quick.status, 202, JSON.stringify(quick.body));
    const done = await waitFor(quick.body.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done));
    assert.deepEqual(done.result, { summary: 'demo demo of octo/hello done', seconds: 1 });
    const created = recorder.events.find((e) => e.action === 'create')!;
    assert.ok(created, 'a worker container was created');
    const started = recorder.events.filter((e) => e.action === 'start');
    assert.equal(started.length, 1);

    const long = await api('POST', '/api/tasks', { kind: 'demo', repo: 'octo/hello', prompt: '12' });
    await waitUntil(() => recorder.events.filter((e) => e.action === 'start').length === 2, 'long task running');
    const running = (await queueContainers(queue)).find((c) => c.State === 'running')!;
    assert.equal((await docker.getImage(running.Image).inspect()).Id, (await docker.getImage(env.BERTH_IMAGE!).inspect()).Id, "worker runs berth's own image");
    await sleep(1500);
    // The documented redeploy, as written: berth alone recreated; Redis left running as it was.
    const redisBefore = await composeContainer('redis');
    execFileSync(`${ROOT}/scripts/compose.sh`, ['redeploy'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const redisAfter = await composeContainer('redis');
    assert.deepEqual([redisAfter.Id, redisAfter.State.StartedAt], [redisBefore.Id, redisBefore.State.StartedAt], 'the redeploy left Redis alone');
    const finished = await waitFor(long.body.id, ['completed', 'failed'], 60_000);
    assert.equal(finished.state, 'completed', JSON.stringify(finished));
    assert.equal(finished.attempts, 1);
    await waitUntil(async () => (await queueContainers(queue)).length === 0, 'worker removed after the outcome');
    await recorder.stop();
    assert.equal(recorder.events.filter((e) => e.action === 'create').length, 2, 'one container per task, none added by the redeploy');
  });
});
