// test-resources: extra-engines, berth-workers
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { before, describe, it } from 'node:test';
import { startRedis } from '../support/redis.js';
import { realParts } from '../support/suite.js';
import { startBerth, TEST_TOKEN, type TestBerth } from '../support/berth.js';
import { startSecondEngine } from '../support/second-engine.js';
import { runCli } from '../support/cli.js';

function cli(berth: TestBerth | null, args: string[], env: Record<string, string> = {}) {
  return runCli(args, { ...(berth ? { BERTH_URL: berth.url, BERTH_TOKEN: TEST_TOKEN } : {}), ...env });
}

describe('berth CLI against a real running berth', () => {
  const parts = realParts({ aof: true });
  let berth: TestBerth;

  before(async () => {
    berth = await startBerth(parts.env({ TASK_ATTEMPTS: '1', AGENT_COMMAND_FLAKY: 'node /agents/flaky.mjs' }));
    parts.berths.push(berth);
  });

  it('tasks logs -f prints the lines as they come and ends when the task does', async () => {
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/cli', prompt: '3' });
    const run = await cli(berth, ['tasks', 'logs', '-f', body.id]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.equal(lines[0], 'sleeping 3s');
    assert.ok(
      lines.some((line) => line.includes('{"slept":3}')),
      run.stdout,
    );
    assert.equal(new Set(lines).size, lines.length, 'each line once');
    assert.equal((await berth.api('GET', `/api/tasks/${body.id}`)).body.state, 'completed', 'it returned once the task had finished');
  });

  it('enqueue --wait prints the id and the finished task; exit 0 when it completed', async () => {
    const run = await cli(berth, ['enqueue', '--kind', 'echo', '--repo', 'octo/cli', '--prompt', 'from the cli', '--wait']);
    assert.equal(run.code, 0, run.stderr);
    const [id, ...rest] = run.stdout.split('\n');
    const task = JSON.parse(rest.join('\n'));
    assert.equal(task.id, id);
    assert.equal(task.state, 'completed');
    assert.equal(task.result.echo, 'from the cli');
    assert.match(run.stderr, /completed/);
  });

  it('a failing task: enqueue --wait exits 1; tasks list/show/logs/retry/replay/cancel act on it', async () => {
    const run = await cli(berth, ['enqueue', '--kind', 'flaky', '--repo', 'octo/cli', '--number', '5', '--wait']);
    assert.equal(run.code, 1);
    const id = run.stdout.split('\n')[0]!;
    const list = await cli(berth, ['tasks', 'list', '--repo', 'octo/cli', '--state', 'failed']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID\s+STATE\s+KIND/);
    assert.match(list.stdout, new RegExp(`${id}\\s+failed\\s+flaky\\s+octo/cli#5\\s+1\\s+exit code 3`));
    const show = JSON.parse((await cli(berth, ['tasks', 'show', id])).stdout);
    assert.equal(show.failedReason, 'exit code 3');
    assert.match((await cli(berth, ['tasks', 'logs', id])).stdout, /first attempt always fails/);
    const retry = JSON.parse((await cli(berth, ['tasks', 'retry', id])).stdout);
    assert.equal(retry.retried, true);
    await berth.waitFor(id, ['completed']);
    const retried = JSON.parse((await cli(berth, ['tasks', 'show', id])).stdout);
    assert.deepEqual([retried.attempts, retried.maxAttempts], [2, 2], 'a task retried by hand never reads as 2 of 1');
    const coloured = await cli(berth, ['tasks', 'list', '--repo', 'octo/cli'], { FORCE_COLOR: '1' });
    assert.match(coloured.stdout, new RegExp(`${id}\\s+\\x1b\\[32mcompleted\\s*\\x1b\\[39m`), 'a state in its colour where asked (FORCE_COLOR; a terminal)');
    assert.doesNotMatch(list.stdout, /\x1b/, 'no colour into a pipe');
    const replay = JSON.parse((await cli(berth, ['tasks', 'replay', id])).stdout);
    assert.equal(replay.replayOf, id);
    const waiting = (await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/cli', prompt: '30' })).body.id;
    await berth.waitFor(waiting, ['active']);
    const cancel = JSON.parse((await cli(berth, ['tasks', 'cancel', waiting])).stdout);
    assert.equal(cancel.state, 'cancelled');
  });

  it('kinds lists what the server runs; completion prints a bash script of every command and option', async () => {
    const kinds = await cli(berth, ['kinds']);
    assert.equal(kinds.code, 0, kinds.stderr);
    assert.match(kinds.stdout, /^flaky\s+priority 0$/m);
    const listed = JSON.parse((await cli(berth, ['kinds', '--json'])).stdout);
    assert.deepEqual(
      listed.kinds.map((k: { kind: string }) => k.kind),
      Object.keys(berth.config.agentCommands).sort(),
    );
    // The tasks the tests above ran, in the audit trail: who asked (the API), how each ended.
    const audit = await cli(berth, ['audit', '--since', '1h', '--limit', '200']);
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, /^\S+Z {2}\S+ {2}requested {2}source=api kind=\S+ repo=/m);
    assert.match(audit.stdout, /^\S+Z {2}\S+ {2}finished {2}attempt=\d+ state=completed/m);
    const exported = (await cli(berth, ['audit', '--jsonl'])).stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { at: string });
    assert.ok(exported.length > 0 && exported.every((e, i) => i === 0 || e.at >= exported[i - 1]!.at), 'JSON lines, oldest first');
    const completion = await cli(null, ['completion']);
    assert.match(completion.stdout, /^complete -F _berth berth$/m);
    assert.match(completion.stdout, /logs\) words="--raw --follow" ;;/);
    assert.match(completion.stdout, /words="tasks enqueue kinds audit completion doctor --version --url --token-file"/);
    // The script is bash: it parses, and completes `berth ta` to `tasks`.
    const bash = spawnSync('bash', ['-c', `${completion.stdout}\nCOMP_WORDS=(berth ta); COMP_CWORD=1; _berth; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
    assert.equal(bash.stdout.trim(), 'tasks', bash.stderr);
  });

  it('says what is wrong: no token, a wrong token, berth unreachable, an unknown task', async () => {
    const noToken = await cli(null, ['tasks', 'list'], { BERTH_URL: berth.url });
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /no token/);
    const wrong = await cli(null, ['tasks', 'list'], { BERTH_URL: berth.url, BERTH_TOKEN: 'wrong' });
    assert.match(wrong.stderr, /refused the token/);
    const down = await cli(null, ['tasks', 'list'], { BERTH_URL: 'http://127.0.0.1:9', BERTH_TOKEN: TEST_TOKEN });
    assert.match(down.stderr, /cannot reach berth/);
    const unknown = await cli(berth, ['tasks', 'show', 't-nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /404 no task t-nope/);
  });

  it('doctor: every check passes on a healthy setup, and names the failure and its fix with Redis or Docker stopped', async () => {
    const env = parts.env({ WORKER_BINDS: '', WORKER_NETWORK: 'none' });
    const ok = await cli(null, ['doctor'], env);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    for (const check of ['configuration', 'redis', 'docker engine', 'worker image', 'worker hardening'])
      assert.match(ok.stdout, new RegExp(`^pass\\s+${check}`, 'm'));
    assert.match(ok.stdout, /no capabilities, no-new-privileges, read-only root/);
    assert.match(ok.stdout, /^warn\s+board password\s+.*API token doubles as the board password/m);
    assert.match(ok.stdout, /^pass\s+worker network\s+EGRESS=none: workers have no network \(loopback only\)/m);
    assert.match(ok.stdout, /^pass\s+egress\s+EGRESS=none: workers have no network at all/m);
    assert.doesNotMatch((await cli(null, ['doctor'], { ...env, BOARD_PASSWORD: 'a-board-password' })).stdout, /board password/);

    // On berth's own network, with berth's API bound to every address: the probe container reaches
    // the API port through the bridge (a real listener here), and not Redis (bound to loopback).
    const listener = createServer((socket) => socket.end()).listen(0, '0.0.0.0');
    await once(listener, 'listening');
    try {
      const open = await cli(null, ['doctor'], {
        ...env,
        EGRESS: 'open',
        WORKER_NETWORK: '',
        HOST: '0.0.0.0',
        PORT: String((listener.address() as { port: number }).port),
      });
      assert.equal(open.code, 0, open.stdout + open.stderr);
      assert.match(open.stdout, /^warn\s+worker network\s+a worker on berth-workers can reach berth's API/m);
      assert.match(open.stdout, /^warn\s+egress\s+EGRESS=open: workers reach whatever this host can route to/m);
      assert.doesNotMatch(open.stdout, /can reach[^\n]*Redis \(/);
    } finally {
      listener.close();
    }

    const stoppedRedis = await startRedis();
    await stoppedRedis.stop();
    const noRedis = await cli(null, ['doctor'], { ...env, REDIS_URL: stoppedRedis.url });
    assert.equal(noRedis.code, 1);
    assert.match(noRedis.stdout, /^FAIL\s+redis\s+.*does not answer.*start Redis/m);

    // A real engine, stopped: the second dockerd of the scale-out tests, started and stopped again.
    const engine = await startSecondEngine([]);
    await engine.stop();
    const noDocker = await cli(null, ['doctor'], { ...env, DOCKER_HOST: engine.host });
    assert.equal(noDocker.code, 1);
    assert.match(noDocker.stdout, /^FAIL\s+docker engine\s+.*does not answer.*start dockerd/m);

    const badConfig = await cli(null, ['doctor'], { ...env, TASK_TIMEOUT: 'soon' });
    assert.match(badConfig.stdout, /^FAIL\s+configuration\s+TASK_TIMEOUT/m);
  });
});
