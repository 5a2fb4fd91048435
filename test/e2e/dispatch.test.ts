// test-resources: berth-workers
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maxRunning, queueContainers, recordEvents } from '../support/docker.js';
import { BACKENDS } from '../support/backends.js';
import { startBerth } from '../support/berth.js';
import { realParts } from '../support/suite.js';
import { LABEL } from '../../src/core/labels.js';
import { waitUntil } from '../support/wait.js';

for (const backendName of BACKENDS)
  describe(`dispatch on ${backendName}: HTTP → BullMQ → one hardened workload per attempt → result`, () => {
    const parts = realParts({ backend: backendName });
    const { berths } = parts;
    const start = async (overrides: Record<string, string> = {}, options?: { consumer?: boolean }) => {
      const berth = await startBerth(parts.env(overrides), options);
      berths.push(berth);
      return berth;
    };
    /** The container that ran (or runs) a task, on the engine where the backend put it. */
    const containerOf = (queue: string, jobId: string) =>
      waitUntil(
        async () => (await queueContainers(queue, parts.backend.docker)).find((c) => c.Labels[LABEL.jobId] === jobId && c.State === 'running'),
        'container running',
      );

    it('runs N tasks in N containers and completes them with their results', async () => {
      const berth = await start();
      const recorder = await recordEvents(berth.config.QUEUE_NAME, parts.backend.docker);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const response = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets', number: i + 1, prompt: `hello ${i}` });
        assert.equal(response.status, 202, JSON.stringify(response.body));
        assert.ok(['waiting', 'active'].includes(response.body.state), response.body.state);
        ids.push(response.body.id);
      }
      const tasks = await Promise.all(ids.map((id) => berth.waitFor(id, ['completed', 'failed'])));
      for (const [i, task] of tasks.entries()) {
        assert.equal(task.state, 'completed', JSON.stringify(task));
        assert.deepEqual(task.result, { echo: `hello ${i}`, id: ids[i], attempt: 1, uid: 10001, github: 'none' });
        assert.equal(task.attempts, 1);
        assert.equal(task.container.state, 'exited');
        assert.equal(task.container.exitCode, 0);
        assert.ok(task.startedAt && task.finishedAt && task.createdAt);
      }
      await waitUntil(async () => (await parts.backend.leftovers(berth.config.QUEUE_NAME)) === 0, 'finished workloads removed');
      await recorder.stop();
      const created = recorder.events.filter((e) => e.action === 'create');
      assert.equal(created.length, 5);
      assert.deepEqual(new Set(created.map((e) => e.jobId)), new Set(ids));
    });

    it('retries a failing command with exponential backoff up to TASK_ATTEMPTS, then fails', async () => {
      const berth = await start({ TASK_ATTEMPTS: '3', TASK_BACKOFF: '400ms' });
      const recorder = await recordEvents(berth.config.QUEUE_NAME, parts.backend.docker);
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'exit', repo: 'octo/widgets', prompt: '3' });
      const task = await berth.waitFor(body.id, ['failed'], 60_000);
      assert.equal(task.attempts, 3);
      assert.match(task.failedReason, /exit code 3/);
      assert.equal(task.failure.cause, 'exit_code', 'the cause recorded with the task');
      await recorder.stop();
      const creates = recorder.events.filter((e) => e.action === 'create');
      const starts = recorder.events.filter((e) => e.action === 'start');
      const dies = recorder.events.filter((e) => e.action === 'die');
      assert.deepEqual(
        creates.map((e) => e.attempt),
        ['1', '2', '3'],
        'one container per attempt, attempt label increments',
      );
      // Exponential: ≥ 400 ms before attempt 2, ≥ 800 ms before attempt 3.
      assert.ok(starts[1]!.time - dies[0]!.time >= 380, `backoff 1 was ${starts[1]!.time - dies[0]!.time}ms`);
      assert.ok(starts[2]!.time - dies[1]!.time >= 780, `backoff 2 was ${starts[2]!.time - dies[1]!.time}ms`);
    });

    it('fails at once, without retries, on the reserved do-not-retry exit code', async () => {
      const berth = await start({ TASK_ATTEMPTS: '3' });
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'exit', repo: 'octo/widgets', prompt: '78' });
      const task = await berth.waitFor(body.id, ['failed']);
      assert.equal(task.attempts, 1);
      assert.match(task.failedReason, /exit code 78 \(do not retry\)/);
      assert.equal(task.failure.cause, 'no_retry', 'the cause recorded with the task');
    });

    it('stops a container that runs past TASK_TIMEOUT and fails the task as timeout', async () => {
      const berth = await start({ TASK_TIMEOUT: '2s', WORKER_STOP_GRACE: '20s' });
      const recorder = await recordEvents(berth.config.QUEUE_NAME, parts.backend.docker);
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '60' });
      const task = await berth.waitFor(body.id, ['failed'], 30_000);
      assert.match(task.failedReason, /^timeout/);
      assert.equal(task.failure.cause, 'timeout', 'the cause recorded with the task');
      assert.equal(task.attempts, 1, 'timeouts are not retried by default');
      await recorder.stop();
      const started = recorder.events.find((e) => e.action === 'start')!;
      const die = recorder.events.find((e) => e.action === 'die')!;
      // SIGTERM reaches the agent through the init process and the worker: no wait for the 20 s grace.
      assert.ok(die.time - started.time < 10_000, `container ran ${die.time - started.time}ms`);
    });

    it('reports an OOM-killed container as out of memory', async () => {
      const berth = await start({ WORKER_MEMORY: '64m', TASK_ATTEMPTS: '1' });
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'oom', repo: 'octo/widgets' });
      const task = await berth.waitFor(body.id, ['failed'], 60_000);
      assert.match(task.failedReason, /out of memory/);
      assert.equal(task.failure.cause, 'oom', 'the cause recorded with the task');
    });

    it('never runs more containers than GLOBAL_CONCURRENCY across consumers', async () => {
      const first = await start({ GLOBAL_CONCURRENCY: '2', WORKER_CONCURRENCY: '4' });
      // A second consumer on the same queue, as a scaled-out deployment would have.
      const second = await start({ QUEUE_NAME: first.config.QUEUE_NAME, GLOBAL_CONCURRENCY: '2', WORKER_CONCURRENCY: '4' }, {});
      const recorder = await recordEvents(first.config.QUEUE_NAME, parts.backend.docker);
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push((await first.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '1.5' })).body.id);
      for (const id of ids) assert.equal((await second.waitFor(id, ['completed', 'failed'], 90_000)).state, 'completed');
      await recorder.stop();
      assert.equal(recorder.events.filter((e) => e.action === 'start').length, 6);
      const peak = maxRunning(recorder.events);
      assert.ok(peak <= 2, `peak running ${peak}`);
      assert.equal(peak, 2, 'the cap is reached, not undershot');
    });

    it('launches every workload with the hardening settings from operator config, as the agent sees them', async () => {
      const berth = await start({
        WORKER_MEMORY: '300m',
        WORKER_CPUS: '0.5',
        WORKER_PIDS_LIMIT: '77',
        WORKER_LOG_MAX_SIZE: '3m',
        AGENT_COMMAND_PROBE: 'node /agents/probe.mjs',
      });
      // From inside: what the agent process itself can do.
      const probed = await berth.waitFor((await berth.api('POST', '/api/tasks', { kind: 'probe', repo: 'octo/widgets' })).body.id, ['completed', 'failed']);
      assert.equal(probed.state, 'completed', JSON.stringify(probed));
      assert.deepEqual(probed.result, {
        uid: 10001,
        gid: 10001,
        noNewPrivs: '1',
        capEff: '0000000000000000',
        rootWritable: false,
        workWritable: true,
        tmpWritable: true,
        socket: false,
        memoryLimit: String(300 * 1024 * 1024),
        pidsLimit: '77',
      });

      // From outside: the engine's record of the container.
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '30' });
      const running = await berth.waitFor(body.id, ['active']);
      const listed = await containerOf(berth.config.QUEUE_NAME, body.id);
      const info = await parts.backend.docker.getContainer(listed.Id).inspect();
      assert.equal(running.state, 'active');
      const host = info.HostConfig;
      assert.equal(info.Config.User, '10001:10001');
      assert.deepEqual(host.CapDrop, ['ALL']);
      assert.ok(!host.CapAdd || host.CapAdd.length === 0);
      assert.equal(host.Privileged, false);
      assert.equal(host.Memory, 300 * 1024 * 1024);
      assert.equal(host.NanoCpus, 0.5e9);
      assert.equal(host.PidsLimit, 77);
      assert.equal(host.ReadonlyRootfs, true);
      assert.deepEqual(host.LogConfig, { Type: 'json-file', Config: { 'max-size': '3m', 'max-file': '1' } });
      assert.equal(host.Init, true);
      const mounts = info.Mounts.map((m) => m.Source);
      assert.ok(!mounts.some((m) => m.includes('docker.sock')), 'never the Docker socket');
      assert.deepEqual(
        mounts.filter((m) => m.startsWith('/') && !m.startsWith('/var/lib/')),
        [parts.env().WORKER_BINDS!.split(':')[0]],
        'only the operator-configured bind',
      );
      assert.equal(info.Config.Labels[LABEL.managed], 'true');
      assert.equal(info.Config.Labels[LABEL.jobId], body.id);
      assert.equal(info.Config.Labels[LABEL.attempt], '1');
      assert.equal(info.Config.Labels[LABEL.queue], berth.config.QUEUE_NAME);
      if (parts.backend.name === 'docker') {
        assert.deepEqual(host.SecurityOpt, ['no-new-privileges:true']);
        assert.equal(host.MemorySwap, 300 * 1024 * 1024, 'no swap beyond the memory limit');
        assert.match(host.Tmpfs?.['/work'] ?? '', /size=/);
        assert.equal(host.NetworkMode, 'none');
        assert.equal(info.Name, `/berth-${berth.config.QUEUE_NAME}-${body.id}-a1`);
      } else {
        // Swarm cannot set it (moby/moby#41371); the worker runs under setpriv instead, as the probe showed.
        assert.deepEqual([info.Path, ...info.Args].slice(0, 3), ['setpriv', '--no-new-privs', '--']);
        assert.equal(info.Config.Labels['com.docker.swarm.service.name'], `berth-${berth.config.QUEUE_NAME}-${body.id}-a1`);
        // berth's own overlay, which no standalone container can join.
        const network = await parts.backend.docker.getNetwork('berth-workers').inspect();
        assert.deepEqual([network.Scope, network.Driver, network.Attachable], ['swarm', 'overlay', false]);
      }
    });

    it('rejects request fields that try to shape the container, and the spec stays as configured', async () => {
      const berth = await start();
      const before = await berth.queue.getJobCounts();
      for (const extra of [
        { Binds: ['/var/run/docker.sock:/var/run/docker.sock'] },
        { Privileged: true },
        { Image: 'alpine' },
        { HostConfig: { Privileged: true } },
        { env: { X: '1' } },
      ]) {
        const response = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets', ...extra });
        assert.equal(response.status, 400, JSON.stringify(extra));
        assert.match(response.body.message, /unrecognized key|Unrecognized key/i);
      }
      assert.deepEqual(await berth.queue.getJobCounts(), before, 'nothing queued');
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '20' });
      const info = await parts.backend.docker.getContainer((await containerOf(berth.config.QUEUE_NAME, body.id)).Id).inspect();
      // Swarm runs the image pinned to its id (a tag would send every node to a registry first).
      assert.equal(info.Config.Image, parts.backend.name === 'swarm' ? (await parts.backend.docker.getImage(parts.image).inspect()).Id : parts.image);
      assert.equal(info.HostConfig.Privileged, false);
      assert.ok(!(info.HostConfig.Binds ?? []).some((b) => b.includes('docker.sock')));
      const taskEnv = info.Config.Env.find((e) => e.startsWith('BERTH_TASK='))!;
      assert.deepEqual(Object.keys(JSON.parse(taskEnv.slice('BERTH_TASK='.length))).sort(), ['attempt', 'id', 'kind', 'prompt', 'repo']);
    });
  });
