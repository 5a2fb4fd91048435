import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, chmodSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Dockerode from 'dockerode';
import type { TestNetwork } from '../support/docker-network.js';
import { createOutside, type Outside } from '../support/outside.js';
import { ensureWorkerImage } from '../support/image.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { AGENTS_DIR, startBerth, testEnv, TEST_TOKEN, type TestBerth } from '../support/berth.js';
import { docker, recordEvents } from '../support/docker.js';
import { startConsumerProcess } from '../support/node-process.js';
import { runCli } from '../support/cli.js';
import { demuxDockerStream } from '../../src/consumer/launcher/docker-frames.js';
import { waitUntil } from '../support/wait.js';
import { LABEL } from '../../src/core/labels.js';

const REAL_KEY = `sk-ant-real-provider-key-${process.pid}-never-in-a-worker`;
const HOLD_FILE = '/tmp/berth-release-stream';
const REAL_OPENAI_KEY = `sk-proj-real-openai-key-${process.pid}-never-in-a-worker`;

/**
 * Workers behind berth's egress proxy, for real: the worker has no network (only loopback and a
 * relay to the proxy's socket); the "outside" is containers on a network the test made, which only
 * the proxy joins: an allowed host, a blocked one, and a fake Anthropic API over HTTPS (a test CA)
 * that prints the key each request carried.
 */
describe('agent containment: an egress proxy is the only way out, and it holds the model key', () => {
  let redis: TestRedis;
  let image: string;
  let outside: TestNetwork;
  let subnet: string;
  let allowedIp: string;
  let hostListener: net.Server;
  let berth: TestBerth;
  let env: Record<string, string>;
  let models: Dockerode.Container;
  let caDir: string;

  let slowModels: Dockerode.Container;
  let world: Outside;
  const proxies = (queue = env.QUEUE_NAME!) => world.proxies(queue);
  /** A request through the proxy's own socket, from inside its container, with `credential`: what a thief holding it would get. */
  const useCredential = async (proxyId: string, credential: string) => {
    const script = `require('http').request({ socketPath: '/run/berth-egress/proxy.sock', path: 'http://allowed.test/plain', headers: { host: 'allowed.test', 'proxy-authorization': 'Basic ' + Buffer.from('berth:' + process.env.CRED).toString('base64') } }, (r) => { let b = ''; r.on('data', (c) => (b += c)); r.on('end', () => console.log(JSON.stringify({ status: r.statusCode, body: b }))); }).end();`;
    const exec = await docker.getContainer(proxyId).exec({ Cmd: ['node', '-e', script], Env: [`CRED=${credential}`], AttachStdout: true, AttachStderr: true });
    const stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream;
    const chunks: Buffer[] = [];
    await new Promise((resolve) => {
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', resolve);
    });
    return JSON.parse(demuxDockerStream(Buffer.concat(chunks)).trim().split('\n').pop()!) as { status: number; body: string };
  };
  const queues: string[] = [];
  /** Lets the held stream of slowmodels.test go on. */
  const releaseStream = async () => {
    const exec = await slowModels.exec({ Cmd: ['node', '-e', `require('fs').writeFileSync('${HOLD_FILE}', '')`] });
    const stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream;
    await new Promise((resolve) => {
      stream.on('end', resolve);
      stream.resume();
    });
  };

  before(async () => {
    image = await ensureWorkerImage();
    redis = await startRedis();
    // A test CA and one certificate for the outside hosts.
    caDir = mkdtempSync(join(tmpdir(), 'berth-egress-ca-'));
    chmodSync(caDir, 0o755);
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: caDir, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=berth egress test CA');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=allowed.test');
    writeFileSync(join(caDir, 'san.ext'), 'subjectAltName=DNS:allowed.test,DNS:blocked.test,DNS:models.test,DNS:slowmodels.test,DNS:registry.test\n');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext');
    chmodSync(join(caDir, 'ca.pem'), 0o644);
    const tls = { cert: readFileSync(join(caDir, 'server.pem'), 'utf8'), key: readFileSync(join(caDir, 'server.key'), 'utf8') };

    world = await createOutside(image);
    outside = world.network;
    subnet = world.subnet;
    const allowed = await world.host('allowed.test', 'web', { tls });
    await world.host('blocked.test', 'blocked', { tls });
    await world.host('registry.test', 'registry', { tls });
    models = await world.host('models.test', 'anthropic', { tls });
    // A stream that holds after its first part until the test releases it: still flowing when the dispatcher is killed or redeployed.
    slowModels = await world.host('slowmodels.test', 'anthropic', { tls, env: ['STREAM_DELAY_MS=50', 'STREAM_EVENTS=15', `STREAM_HOLD_FILE=${HOLD_FILE}`] });
    allowedIp = (await allowed.inspect()).NetworkSettings.Networks[outside.name]!.IPAddress;
    // A service on the host on every address: a bridge or --internal container would reach it through its gateway.
    hostListener = net.createServer((socket) => socket.end('host service\n')).listen(0, '0.0.0.0');
    await new Promise((resolve) => hostListener.once('listening', resolve));

    env = testEnv(redis, image, {
      EGRESS: 'proxy',
      EGRESS_NETWORKS: outside.name,
      EGRESS_HOSTS: 'allowed.test,ip6-localhost',
      EGRESS_PORTS: '80,443',
      EGRESS_ALLOW_PRIVATE: subnet,
      EGRESS_PROVIDERS: 'anthropic,openai',
      PROVIDER_ANTHROPIC_URL: 'https://models.test',
      PROVIDER_ANTHROPIC_KEY: REAL_KEY,
      PROVIDER_OPENAI_URL: 'https://models.test/v1',
      PROVIDER_OPENAI_KEY: REAL_OPENAI_KEY,
      EGRESS_CA_FILE: join(caDir, 'ca.pem'),
      WORKER_BINDS: `${AGENTS_DIR}:/agents:ro,${caDir}:/ca:ro`,
      WORKER_ENV: 'NODE_EXTRA_CA_CERTS',
      AGENT_COMMAND_EGRESS: 'node /agents/egress-probe.mjs',
      RECONCILE_INTERVAL: '500ms',
      TASK_ATTEMPTS: '1',
    });
    berth = await startBerth(env, { hostEnv: { NODE_EXTRA_CA_CERTS: '/ca/ca.pem' } });
  });
  after(async () => {
    await berth?.close();
    await world?.remove([env.QUEUE_NAME!, ...queues]);
    hostListener?.close();
    await redis?.stop();
  });

  const probe = async () => {
    const gateway = ((await docker.getNetwork('bridge').inspect()).IPAM?.Config?.[0]?.Gateway as string) ?? '172.17.0.1';
    const prompt = JSON.stringify({ allowedIp, gateway, apiPort: (hostListener.address() as net.AddressInfo).port, redisPort: redis.port });
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'egress', repo: 'octo/widgets', prompt });
    const task = await berth.waitFor(body.id, ['completed', 'failed'], 90_000);
    assert.equal(task.state, 'completed', JSON.stringify(task).slice(0, 2000));
    return task;
  };

  it('a worker reaches allowed hosts through the proxy and nothing else; the model key stays with the proxy; the task shows what was reached, refused and used', async () => {
    const task = await probe();
    const seen = task.result;
    assert.deepEqual(seen.interfaces, ['lo'], 'no network but loopback');
    assert.equal(seen.allowedHttps.status, 200, JSON.stringify(seen.allowedHttps));
    assert.match(seen.allowedHttps.body, /^web GET \/hello host=allowed\.test/);
    assert.equal(seen.allowedHttp.status, 200, JSON.stringify(seen.allowedHttp));
    assert.ok(seen.blockedHttps.error, `the tunnel to blocked.test was refused: ${JSON.stringify(seen.blockedHttps)}`);
    assert.equal(seen.blockedHttp.status, 403);
    assert.match(
      seen.blockedHttp.body,
      /^berth egress refused blocked\.test:80: blocked\.test is not on this task's allowlist \(add it to EGRESS_HOSTS or EGRESS_HOSTS_<KIND>\)/,
    );
    assert.equal(seen.privateName.status, 403);
    assert.match(seen.privateName.body, /ip6-localhost resolves to ::1, a private, loopback or link-local address \(EGRESS_ALLOW_PRIVATE/);
    assert.equal(seen.blockedConnect.status, 403);
    assert.match(seen.blockedConnect.body, /^berth egress refused blocked\.test:443: blocked\.test is not on this task's allowlist/);
    assert.equal(seen.badPort.status, 403);
    assert.match(seen.badPort.body, /port 22 is not allowed \(EGRESS_PORTS: 80, 443\)/);
    assert.equal(seen.noCredential.status, 407, 'no credential, no way out');
    assert.equal(seen.ipLiteral.status, 403);
    assert.match(seen.ipLiteral.body, /is an IP address; the proxy allows host names only/);
    for (const [target, outcome] of Object.entries(seen.direct as Record<string, string>))
      assert.match(outcome, /^(ENETUNREACH|EHOSTUNREACH)$/, `a direct connection to ${target}: ${outcome}`);

    // The model: the worker presents its credential; the provider sees only the real key.
    assert.equal(seen.modelJson.status, 200, JSON.stringify(seen.modelJson));
    assert.match(seen.modelJson.body, /"pong"/);
    assert.match(seen.modelStream.contentType, /^text\/event-stream/);
    assert.match(seen.modelStream.body, /part4 [\s\S]*message_stop/);
    assert.deepEqual(Object.fromEntries(seen.keyEnv).ANTHROPIC_API_KEY, 'berth-egress.', 'the worker holds its attempt credential as the key');
    assert.deepEqual(Object.fromEntries(seen.keyEnv).OPENAI_API_KEY, 'berth-egress.');
    assert.ok(!JSON.stringify(seen).includes(REAL_KEY), 'the real key is nowhere in the worker: environment, /proc/*/environ');
    assert.ok(!JSON.stringify(seen).includes(REAL_OPENAI_KEY), 'nor the OpenAI key');
    assert.equal(seen.openai.status, 200, JSON.stringify(seen.openai));
    assert.match(seen.openai.body, /"pong"/);
    assert.ok(seen.environments.length > 100, 'the probe read the environments');
    const provider = String(await models.logs({ stdout: true }))
      .split('\n')
      .filter((line) => line.includes('"apiKey"'))
      .map((line) => JSON.parse(line.slice(line.indexOf('{'))) as { path: string; apiKey: string | null; authorization: string | null });
    assert.deepEqual(
      provider.map((call) => [call.path, call.apiKey, call.authorization]),
      [
        ['/v1/messages', REAL_KEY, null],
        ['/v1/messages', REAL_KEY, null],
        ['/v1/responses', null, `Bearer ${REAL_OPENAI_KEY}`],
      ],
      'Anthropic style: x-api-key; OpenAI style: a bearer token; each the real key, never the credential',
    );

    // What the attempt reached, what was refused, what it used: on the task, from the proxy's record.
    const egress = task.egress;
    assert.ok(egress, JSON.stringify(task).slice(0, 500));
    // Anthropic: 21 + 21 input, 7 + 11 output, 40 + 40 cache read, 3 + 3 written; OpenAI: 50 input of which 20 cached, 9 output.
    assert.deepEqual(egress.usage, { inputTokens: 72, outputTokens: 27, cacheReadTokens: 100, cacheWriteTokens: 6, requests: 3 });
    assert.equal(egress.refusedHosts['blocked.test'], 3, 'the tunnel fetch tried, the plain request and the CONNECT');
    assert.equal(egress.refusedHosts['ip6-localhost'], 1);
    // The same, in the audit trail, where it outlives the task.
    const { body: audit } = await berth.api('GET', `/api/audit?task=${task.id}`);
    const recorded = audit.entries.find((e: { type: string }) => e.type === 'egress');
    assert.deepEqual([recorded?.attempt, recorded?.refusedHosts['blocked.test'], recorded?.allowed], [1, 3, egress.allowed], JSON.stringify(audit.entries));
    assert.ok(egress.allowed >= 4, `allowed ${egress.allowed}`);
    assert.ok(
      egress.log.some((e: { host: string; decision: string; via: string }) => e.host === 'allowed.test' && e.via === 'connect' && e.decision === 'allowed'),
    );
    const metrics = await (await fetch(`${berth.url}/metrics`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).text();
    assert.match(metrics, /^berth_egress_requests_total\{decision="refused"\} [4-9]/m);
    assert.match(metrics, /^berth_model_tokens_total\{kind="egress",repo="octo\/widgets",model="claude-test",type="output"\} 18$/m);
    assert.match(metrics, /^berth_model_tokens_total\{kind="egress",repo="octo\/widgets",model="gpt-test",type="output"\} 9$/m);
    assert.deepEqual(Object.keys(egress.byModel).sort(), ['claude-test', 'gpt-test'], 'usage per model, as the responses named them');
    assert.equal(task.spend.tokens, 72 + 27 + 100 + 6);
    assert.deepEqual(task.spend.unpriced.sort(), ['claude-test', 'gpt-test'], 'no price table: tokens, and no invented cost');

    // The proxy: its own long-lived container, restarted by the engine, on the outside network only.
    const [proxy] = await proxies();
    assert.ok(proxy, 'the proxy container exists');
    const inspected = await docker.getContainer(proxy.Id).inspect();
    assert.equal(inspected.State.Running, true);
    assert.equal(inspected.HostConfig.RestartPolicy?.Name, 'unless-stopped');
    assert.deepEqual(Object.keys(inspected.NetworkSettings.Networks), [outside.name]);
    assert.equal(inspected.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(inspected.HostConfig.CapDrop, ['ALL']);

    // doctor shows it.
    const doctor = await runCli(['doctor'], { ...env, WORKER_BINDS: '' });
    assert.match(
      doctor.stdout,
      new RegExp(
        `^pass\\s+egress\\s+proxy ${proxy.Names[0]!.slice(1)} running; workers reach GitHub \\(github\\.com\\), 2 more host\\(s\\) for every kind, model providers: anthropic, openai`,
        'm',
      ),
    );
    assert.match(
      doctor.stdout,
      /^pass\s+worker network\s+EGRESS=proxy: workers have no network \(loopback only\); berth's egress proxy is their only way out/m,
    );
  });

  it('the proxy outlives berth and comes back when it is removed; a new berth adopts it by name', async () => {
    const [before] = await proxies();
    await berth.close();
    assert.equal((await docker.getContainer(before!.Id).inspect()).State.Running, true, "berth's shutdown leaves the proxy running");
    berth = await startBerth(env, { hostEnv: { NODE_EXTRA_CA_CERTS: '/ca/ca.pem' } });
    const adopted = await proxies();
    assert.deepEqual(
      adopted.map((p) => p.Id),
      [before!.Id],
      'adopted, not replaced',
    );

    await docker.getContainer(before!.Id).remove({ force: true });
    await waitUntil(async () => (await proxies()).some((p) => p.State === 'running' && p.Id !== before!.Id), 'the proxy back', 15_000);
    const task = await probe();
    assert.equal(
      task.result.allowedHttps.status,
      200,
      'the recreated proxy signs alike (its secret is derived from API_TOKEN, not stored): new attempts get out',
    );
  });
  it('the dispatcher SIGKILLed while an agent streams a model response through the proxy: the stream completes, the task completes in attempt 1', async () => {
    const streamEnv = {
      ...env,
      QUEUE_NAME: `${env.QUEUE_NAME}-s`,
      PROVIDER_ANTHROPIC_URL: 'https://slowmodels.test',
      AGENT_COMMAND_STREAM: 'node /agents/egress-stream.mjs',
      NODE_EXTRA_CA_CERTS: '/ca/ca.pem',
    };
    queues.push(streamEnv.QUEUE_NAME);
    const api = await startBerth(streamEnv, { consumer: false });
    const recorder = await recordEvents(streamEnv.QUEUE_NAME);
    const first = startConsumerProcess(streamEnv);
    let second: ReturnType<typeof startConsumerProcess> | null = null;
    try {
      await first.ready;
      const { body } = await api.api('POST', '/api/tasks', { kind: 'stream', repo: 'octo/widgets' });
      await waitUntil(async () => String(await slowModels.logs({ stdout: true })).includes('"apiKey"'), 'the stream started at the provider', 60_000);
      // The running worker's credential, as a thief who got it out would hold it: valid while the attempt runs.
      const worker = (await docker.listContainers({ filters: { label: [`berth.job-id=${body.id}`] } }))[0]!;
      const credential = ((await docker.getContainer(worker.Id).inspect()).Config.Env ?? [])
        .find((e) => e.startsWith('BERTH_EGRESS_CREDENTIAL='))!
        .split('=')
        .slice(1)
        .join('=');
      const [streamProxy] = await proxies(streamEnv.QUEUE_NAME);
      assert.equal((await useCredential(streamProxy!.Id, credential)).status, 200, 'the credential works while its attempt runs');
      await first.kill('SIGKILL');
      second = startConsumerProcess(streamEnv);
      await second.ready;
      await releaseStream();
      const task = await api.waitFor(body.id, ['completed', 'failed'], 60_000);
      assert.equal(task.state, 'completed', JSON.stringify(task));
      assert.equal(task.attempts, 1);
      assert.deepEqual(task.result, { status: 200, parts: 16, stopped: true }, 'every part arrived, through the proxy, across the kill');
      assert.equal(recorder.events.filter((e) => e.action === 'create' && e.jobId === body.id).length, 1, 'one container: adopted, not relaunched');
      assert.equal(task.egress?.usage.outputTokens, 11);
      const calls = String(await slowModels.logs({ stdout: true }))
        .split('\n')
        .filter((line) => line.includes('"apiKey"'));
      assert.equal(calls.length, 1, 'one stream, begun before the kill and never retried');
      // The attempt is over: its credential died with it (berth ended it at the proxy when it read the record).
      const after = await useCredential(streamProxy!.Id, credential);
      assert.equal(after.status, 407, JSON.stringify(after));
      assert.match(after.body, /attempt .*#1 has ended; its credential died with it/);
    } finally {
      await first.kill('SIGKILL');
      await second?.kill('SIGTERM');
      await recorder.stop();
      await api.close();
    }
  });
  it("a new proxy version (changed settings) starts beside the old one; the old one keeps its running attempt's stream and goes once that attempt has ended", async () => {
    const queue = `${env.QUEUE_NAME}-v`;
    queues.push(queue);
    const v1: Record<string, string> = {
      ...env,
      QUEUE_NAME: queue,
      PROVIDER_ANTHROPIC_URL: 'https://slowmodels.test',
      AGENT_COMMAND_STREAM: 'node /agents/egress-stream.mjs',
    };
    // A rotated provider key is a new proxy version (an allowlist change is not: it travels in the grant).
    const v2 = { ...v1, PROVIDER_ANTHROPIC_KEY: `${REAL_KEY}-rotated` };
    const before = String(await slowModels.logs({ stdout: true }))
      .split('\n')
      .filter((line) => line.includes('"apiKey"')).length;
    const first = await startBerth(v1, { hostEnv: { NODE_EXTRA_CA_CERTS: '/ca/ca.pem' } });
    const { body } = await first.api('POST', '/api/tasks', { kind: 'stream', repo: 'octo/widgets' });
    await waitUntil(
      async () =>
        String(await slowModels.logs({ stdout: true }))
          .split('\n')
          .filter((line) => line.includes('"apiKey"')).length > before,
      'the stream started',
      60_000,
    );
    const [old] = await proxies(queue);
    // A redeploy with other settings: the running attempt is handed over, the new berth starts its own proxy.
    await first.consumer!.close();
    const second = await startBerth(v2, { hostEnv: { NODE_EXTRA_CA_CERTS: '/ca/ca.pem' } });
    try {
      const both = await proxies(queue);
      assert.equal(both.length, 2, 'the new version beside the old one');
      assert.ok(
        both.some((p) => p.Id === old!.Id && p.State === 'running'),
        'the old one still runs for its attempt',
      );
      await releaseStream();
      const task = await second.waitFor(body.id, ['completed', 'failed'], 60_000);
      assert.equal(task.state, 'completed', JSON.stringify(task));
      assert.deepEqual(task.result, { status: 200, parts: 16, stopped: true }, 'the stream went on through the old proxy');
      await waitUntil(async () => (await proxies(queue)).every((p) => p.Id !== old!.Id), 'the old version retired once unused', 30_000);
      assert.equal((await proxies(queue)).length, 1);
    } finally {
      await second.close();
      await first.close();
    }
  });
  it('a worker image rebuilt under the same name (an upgrade of berth:local) is a new proxy version; the old one goes', async () => {
    const queue = `${env.QUEUE_NAME}-img`;
    queues.push(queue);
    const [repo, version] = ['berth-egress-rebuilt', String(process.pid)];
    const tag = `${repo}:${version}`;
    await docker.getImage(image).tag({ repo, tag: version });
    const imageEnv = { ...env, QUEUE_NAME: queue, WORKER_IMAGE: tag };
    const first = await startBerth(imageEnv, { hostEnv: { NODE_EXTRA_CA_CERTS: '/ca/ca.pem' } });
    let rebuiltId = '';
    try {
      const [before] = await proxies(queue);
      assert.equal((await docker.getContainer(before!.Id).inspect()).Image, (await docker.getImage(tag).inspect()).Id, 'the proxy runs the image by its id');
      // "Rebuilt": the same name now names another image (one more layer of metadata).
      const builder = await docker.createContainer({ Image: image, Entrypoint: ['true'] });
      rebuiltId = ((await builder.commit({ repo, tag: version, changes: ['LABEL berth.test=rebuilt'] })) as { Id: string }).Id;
      await builder.remove({ force: true });
      await first.consumer!.reconcile();
      await waitUntil(
        async () => {
          const now = await proxies(queue);
          return now.length === 1 && now[0]!.Id !== before!.Id && now[0]!.State === 'running';
        },
        'the new version running, the old one retired (no attempt used it)',
        30_000,
      );
      const [after] = await proxies(queue);
      assert.equal((await docker.getContainer(after!.Id).inspect()).Image, rebuiltId);
      assert.notEqual(after!.Labels[LABEL.egressVersion], before!.Labels[LABEL.egressVersion]);
    } finally {
      await first.close();
      await docker
        .getImage(tag)
        .remove({ force: true })
        .catch(() => {});
      if (rebuiltId)
        await docker
          .getImage(rebuiltId)
          .remove({ force: true })
          .catch(() => {});
    }
  });
  it("a task's model budget, shared by its attempts: the proxy refuses the call past it, berth stops the agent, the task fails as budget with what it spent", async () => {
    const queue = `${env.QUEUE_NAME}-budget`;
    queues.push(queue);
    const prices = join(caDir, 'prices.json');
    writeFileSync(prices, JSON.stringify({ 'claude-te': { input: 3, output: 15, cache_read: 0.3, cache_write: 3.75 } }));
    chmodSync(prices, 0o644);
    // Each call uses 21 input, 7 output, 40 cache read and 3 cache write tokens: 71. Two calls (142) pass the budget of 100.
    const budgetEnv = {
      ...env,
      QUEUE_NAME: queue,
      TASK_ATTEMPTS: '2',
      TASK_BACKOFF: '100ms',
      TASK_BUDGET_TOKENS_SPEND: '100',
      REPO_BUDGET_TOKENS_DAY: '100',
      MODEL_PRICES_FILE: prices,
      AGENT_COMMAND_SPEND: 'node /agents/egress-budget.mjs',
      WORKER_STOP_GRACE: '2s',
    };
    const before = String(await models.logs({ stdout: true }))
      .split('\n')
      .filter((line) => line.includes('"apiKey"')).length;
    const withBudget = await startBerth(budgetEnv, { hostEnv: { NODE_EXTRA_CA_CERTS: '/ca/ca.pem' } });
    try {
      const { body } = await withBudget.api('POST', '/api/tasks', { kind: 'spend', repo: 'octo/widgets', prompt: '2' });
      const task = await withBudget.waitFor(body.id, ['completed', 'failed'], 90_000);
      assert.equal(task.state, 'failed', JSON.stringify(task).slice(0, 1500));
      assert.equal(task.failure?.cause, 'budget', JSON.stringify(task.failure));
      assert.equal(task.failure.detail, 'spent 142 tokens of a budget of 100');
      assert.equal(task.attempts, 2, 'attempt 1 spent 142 and failed; attempt 2 drew on the same budget and was refused at once');
      const calls =
        String(await models.logs({ stdout: true }))
          .split('\n')
          .filter((line) => line.includes('"apiKey"')).length - before;
      assert.equal(calls, 2, 'the provider saw the two calls within the budget, never the refused one');
      assert.equal(task.spend.tokens, 142);
      assert.deepEqual(Object.keys(task.spend.byModel), ['claude-test']);
      const perCall = (21 * 3 + 7 * 15 + 40 * 0.3 + 3 * 3.75) / 1e6;
      assert.ok(Math.abs(task.spend.usd - 2 * perCall) < 1e-12, `priced by the operator's table (a name prices the ids that start with it): ${task.spend.usd}`);
      assert.equal(task.egress.budgetExceeded, 'spent 142 tokens of a budget of 100');
      assert.ok(task.egress.log.some((e: { decision: string; reason?: string }) => e.decision === 'refused' && /^budget: /.test(e.reason ?? '')));
      const logs = (await withBudget.api('GET', `/api/tasks/${body.id}/logs`)).body.lines.join('\n');
      assert.match(
        logs,
        /attempt 2 call 1: 400 .*this task's model budget is spent \(spent 142 tokens of a budget of 100\)/,
        "the agent read why, in the provider's error shape",
      );
      // The agent would have waited 120 s after its refusal: berth stopped it (the proxy is asked every 5 s, then the grace).
      const took = Date.parse(task.finishedAt) - Date.parse(task.startedAt);
      assert.ok(took < 60_000, `stopped by berth, not by its own end: ${took} ms`);
      const metrics = await (await fetch(`${withBudget.url}/metrics`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).text();
      assert.match(metrics, /^berth_model_tokens_total\{kind="spend",repo="octo\/widgets",model="claude-test",type="input"\} 42$/m);
      assert.match(metrics, /^berth_model_cost_usd_total\{kind="spend",repo="octo\/widgets",model="claude-test"\} 0\.00038/m);
      assert.match(metrics, /^berth_failures_total\{reason="budget"\} 1$/m);
      // The repository's day: 142 of its 100 tokens spent. New tasks for it are refused; another repository's are not.
      assert.match(metrics, /^berth_repo_budget_used_ratio\{repo="octo\/widgets"\} 1\.42$/m);
      const refused = await withBudget.api('POST', '/api/tasks', { kind: 'spend', repo: 'octo/widgets', prompt: '1' });
      assert.equal(refused.status, 429, JSON.stringify(refused.body));
      assert.match(
        refused.body.message,
        /^octo\/widgets spent 142 tokens today of its daily budget of 100 \(REPO_BUDGET_TOKENS_DAY\); new tasks start again at 00:00 UTC$/,
      );
      const elsewhere = await withBudget.api('POST', '/api/tasks', { kind: 'spend', repo: 'octo/gadgets', prompt: '0' });
      assert.equal(elsewhere.status, 202, 'another repository is not held to it');
      await withBudget.waitFor(elsewhere.body.id, ['completed', 'failed'], 60_000);
    } finally {
      await withBudget.close();
    }
  });
  it("a setup phase reaches its wider allowlist; the agent after it cannot, not even with the setup's credential dug out of its parent", async () => {
    const queue = `${env.QUEUE_NAME}-setup`;
    queues.push(queue);
    const setupEnv = {
      ...env,
      QUEUE_NAME: queue,
      EGRESS_SETUP_HOSTS: 'registry.test',
      SETUP_COMMAND_INSTALL: 'node /agents/egress-setup.mjs setup',
      AGENT_COMMAND_INSTALL: 'node /agents/egress-setup.mjs agent',
    };
    const withSetup = await startBerth(setupEnv, { hostEnv: { NODE_EXTRA_CA_CERTS: '/ca/ca.pem' } });
    try {
      const { body } = await withSetup.api('POST', '/api/tasks', { kind: 'install', repo: 'octo/widgets' });
      const task = await withSetup.waitFor(body.id, ['completed', 'failed'], 60_000);
      assert.equal(task.state, 'completed', JSON.stringify(task));
      const seen = task.result;
      assert.equal(seen.setup.status, 200, `the setup reached the registry: ${JSON.stringify(seen.setup)}`);
      assert.match(seen.setup.body, /^registry GET \/left-pad/);
      assert.ok(seen.agent.error, `the agent did not: ${JSON.stringify(seen.agent)}`);
      assert.equal(seen.stolenFound, true, "the setup's credential is readable in the worker's environment (same uid)");
      assert.equal(seen.withStolen.status, 407, JSON.stringify(seen.withStolen));
      assert.match(seen.withStolen.body, /the setup credential of .* was given back/);
      assert.ok(task.egress.refusedHosts['registry.test'] >= 1);
    } finally {
      await withSetup.close();
    }
  });
});
