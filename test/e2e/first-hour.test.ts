import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { docker } from '../support/docker.js';
import { ensureWorkerImage } from '../support/image.js';
import { uniqueQueue } from '../support/berth.js';
import { waitUntil } from '../support/wait.js';
import { LABEL } from '../../src/core/labels.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = promisify(execFile);

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/**
 * The README's first path, run as written: `scripts/up.sh` with the user's own worker image, then
 * the `berth` command it installs, `berth doctor` on the settings it wrote, a task, and Ctrl-C.
 */
describe('the first hour: scripts/up.sh as the README runs it', () => {
  let up: ChildProcess;
  let output = '';
  let dataDir: string;
  let bin: string;
  let imageId: string;
  let port: number;
  let redisPort: number;
  const queue = uniqueQueue();

  before(async () => {
    // "Bring your own agent": an image of the user's own, which up.sh must use as it is.
    const image = await ensureWorkerImage();
    imageId = (await docker.getImage(image).inspect()).Id;
    dataDir = mkdtempSync(join(tmpdir(), 'berth-up-'));
    bin = join(dataDir, 'bin');
    port = await freePort();
    redisPort = await freePort();
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(REDIS_URL|API_TOKEN|AGENT_COMMAND_|HOST$|PORT$|BERTH_)/.test(key)));
    up = spawn('scripts/up.sh', [], {
      cwd: ROOT,
      env: {
        ...env,
        WORKER_IMAGE: image,
        QUEUE_NAME: queue,
        BERTH_DATA_DIR: dataDir,
        BERTH_BIN_DIR: bin,
        BERTH_PORT: String(port),
        BERTH_REDIS_PORT: String(redisPort),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, as a terminal's foreground job: Ctrl-C reaches every process in it.
      detached: true,
    });
    up.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    up.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitUntil(
      async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok,
      `berth from up.sh ready (output so far: ${output.slice(-2000)})`,
      240_000,
      500,
    );
  });
  after(async () => {
    if (up?.pid && up.exitCode === null) process.kill(-up.pid, 'SIGKILL');
    for (const label of [`${LABEL.queue}=${queue}`, `${LABEL.egressProxy}=${queue}`]) {
      for (const c of await docker.listContainers({ all: true, filters: { label: [label] } })) {
        await docker
          .getContainer(c.Id)
          .remove({ force: true, v: true })
          .catch(() => {});
        const name = c.Names[0]?.replace(/^\//, '') ?? '';
        if (label.startsWith(LABEL.egressProxy))
          for (const volume of [name, `${name}-state`])
            await docker
              .getVolume(volume)
              .remove()
              .catch(() => {});
      }
    }
  });

  it("keeps the user's worker image, and says so", async () => {
    assert.match(output, /up: using your worker image .* as it is/);
    assert.equal((await docker.getImage(await ensureWorkerImage()).inspect()).Id, imageId, 'not rebuilt or overwritten');
  });

  it('writes the settings it used where the CLI finds them, with secrets only as file paths, and the banner names the next steps', async () => {
    const file = join(dataDir, 'berth.env');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const settings = readFileSync(file, 'utf8');
    assert.match(settings, new RegExp(`^BERTH_URL="http://127\\.0\\.0\\.1:${port}"$`, 'm'));
    assert.match(settings, /^API_TOKEN_FILE=".*\/api-token"$/m);
    const token = readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
    assert.ok(!settings.includes(token), 'the token itself is not in the settings file');
    assert.match(output, /CLI: +.*\/bin\/berth/);
    assert.match(output, /berth enqueue --kind demo --repo octo\/hello --prompt 10 --wait/);
  });

  it('the installed `berth` works with no flags: --version, a task to the end, and doctor on the same settings', async () => {
    const berth = join(bin, 'berth');
    const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(REDIS_URL|API_TOKEN|BERTH_|WORKER_|AGENT_COMMAND_)/.test(key)));
    const version = await run(berth, ['--version'], { env: clean });
    assert.equal(version.stdout.trim(), (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    const task = await run(berth, ['enqueue', '--kind', 'demo', '--repo', 'octo/hello', '--prompt', '1', '--wait'], { env: clean, timeout: 120_000 });
    assert.equal(JSON.parse(task.stdout.split('\n').slice(1).join('\n')).state, 'completed', task.stdout);
    const doctor = await run(berth, ['doctor'], { env: clean, timeout: 120_000 }).catch((error: { stdout: string; stderr: string }) => error);
    assert.match(doctor.stdout, /^pass\s+configuration/m, `${doctor.stdout}\n${doctor.stderr}`);
    assert.doesNotMatch(doctor.stdout, /required/, 'doctor sees the configuration up.sh used');
    await assert.rejects(run(berth, ['enqueue', '--kind', 'demo', '--repo', 'octo/hello', '--number', 'abc'], { env: clean }), (error: { stderr: string }) =>
      /--number: expected an issue or pull request number, got 'abc'/.test(error.stderr),
    );
  });

  it('Ctrl-C (SIGINT) stops berth and the Redis it started', async () => {
    const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
    // What Ctrl-C does in a terminal: SIGINT to the foreground process group.
    process.kill(-up.pid!, 'SIGINT');
    assert.equal(await exited, 0, output.slice(-1500));
    await waitUntil(async () => !(await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null)), 'the port free');
    const redisGone = () =>
      new Promise<boolean>((resolve) =>
        connect(redisPort, '127.0.0.1')
          .once('connect', function (this: Socket) {
            this.destroy();
            resolve(false);
          })
          .once('error', () => resolve(true)),
      );
    await waitUntil(redisGone, 'the Redis up.sh started has stopped (its EXIT trap)');
  });

  it('up.sh checks the configuration before it says anything is starting: a bad setting stops it, named', () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(REDIS_URL|API_TOKEN|AGENT_COMMAND_|HOST$|PORT$|BERTH_)/.test(key)));
    const bad = spawnSync('scripts/up.sh', [], {
      cwd: ROOT,
      env: { ...env, BERTH_DATA_DIR: dataDir, BERTH_BIN_DIR: bin, BERTH_REDIS_PORT: String(redisPort + 1), MAX_QUEUED_TASKS: 'lots' },
      encoding: 'utf8',
      timeout: 240_000,
    });
    assert.equal(bad.status, 2, bad.stderr.slice(-2000));
    assert.match(bad.stderr, /MAX_QUEUED_TASKS: /);
    assert.doesNotMatch(bad.stdout, /berth is starting/, 'no banner for a berth that will not start');
  });
});
