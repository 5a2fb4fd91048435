import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostAllowed, judgeAddress, judgeTarget, type Allowlist } from '../../src/egress/allowlist.js';
import { signGrant, verifyGrant, type Grant } from '../../src/egress/credential.js';
import { UsageTap, usageFrom } from '../../src/egress/usage.js';
import { JOURNAL_MSG, journalEvents, overBudgetIn, replayJournal } from '../../src/egress/journal.js';
import { EgressLedger } from '../../src/egress/ledger.js';
import pino from 'pino';
import { type ConfigError, parseConfig } from '../../src/core/config.js';
import { EgressGate } from '../../src/consumer/egress-gate.js';

const list: Allowlist = { hosts: ['github.com', '*.githubusercontent.com', 'api.anthropic.com'], ports: [443], allowPrivate: ['10.20.0.0/16'] };

describe('egress allowlist', () => {
  it('names match exactly; a wildcard matches strictly below its domain; case and a trailing dot do not matter', () => {
    assert.equal(hostAllowed(list, 'github.com'), true);
    assert.equal(hostAllowed(list, 'GitHub.COM.'), true);
    assert.equal(hostAllowed(list, 'api.github.com'), false, 'no implicit subdomains');
    assert.equal(hostAllowed(list, 'raw.githubusercontent.com'), true);
    assert.equal(hostAllowed(list, 'a.b.githubusercontent.com'), true);
    assert.equal(hostAllowed(list, 'githubusercontent.com'), false, '*.x does not match x');
    assert.equal(hostAllowed(list, 'evilgithubusercontent.com'), false, 'a suffix that is not a label boundary');
    assert.equal(hostAllowed(list, 'github.com.evil.example'), false);
  });
  it('ports other than the allowed ones are refused, with the setting that allows them', () => {
    assert.deepEqual(judgeTarget(list, 'github.com', 443), { allowed: true });
    assert.match((judgeTarget(list, 'github.com', 22) as { reason: string }).reason, /port 22 is not allowed \(EGRESS_PORTS: 443\)/);
  });
  it('IP literals are refused in every spelling', () => {
    for (const host of ['140.82.112.3', '[::1]', '::ffff:127.0.0.1', '2130706433', '0x7f000001', '169.254.169.254']) {
      const decision = judgeTarget({ ...list, hosts: ['*'] }, host, 443);
      assert.equal(decision.allowed, false, host);
      assert.match((decision as { reason: string }).reason, /IP address|not on this task's allowlist/, host);
    }
  });
  it('a name not on the list is refused with the settings that would allow it', () => {
    assert.match(
      (judgeTarget(list, 'evil.example', 443) as { reason: string }).reason,
      /evil\.example is not on this task's allowlist \(add it to EGRESS_HOSTS or EGRESS_HOSTS_<KIND>\)/,
    );
  });
  it('a listed name resolving to loopback, private, link-local or metadata addresses is refused unless its range is allowed (DNS rebinding)', () => {
    for (const address of [
      '127.0.0.1',
      '10.0.0.5',
      '172.17.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
    ]) {
      const decision = judgeAddress(list, 'github.com', address);
      assert.equal(decision.allowed, false, address);
      assert.match((decision as { reason: string }).reason, /a private, loopback or link-local address \(EGRESS_ALLOW_PRIVATE/);
    }
    assert.deepEqual(judgeAddress(list, 'ghes.corp', '10.20.3.4'), { allowed: true }, 'an allowed range');
    assert.deepEqual(judgeAddress(list, 'github.com', '140.82.112.3'), { allowed: true });
    assert.deepEqual(judgeAddress(list, 'github.com', '2606:50c0:8000::153'), { allowed: true });
  });
});

describe('egress credential', () => {
  const grant: Grant = {
    attempt: 't-1#1',
    kind: 'review',
    hosts: ['github.com'],
    ports: [443],
    allowPrivate: [],
    providers: ['anthropic'],
    expiresAt: Date.now() + 60_000,
  };
  const secret = 's'.repeat(32);
  it('verifies with the secret it was signed with (or a previous one), and carries its allowlist', () => {
    const credential = signGrant(grant, secret);
    assert.deepEqual(verifyGrant(credential, [secret]), { ok: true, grant });
    assert.equal(verifyGrant(credential, ['new'.repeat(11), secret]).ok, true, 'during a rotation');
  });
  it('a changed allowlist, another secret, an expired grant or garbage is refused', () => {
    const credential = signGrant(grant, secret);
    const [prefix, body, signature] = credential.split('.') as [string, string, string];
    const widened = Buffer.from(JSON.stringify({ ...grant, hosts: ['*'] })).toString('base64url');
    assert.deepEqual(verifyGrant(`${prefix}.${widened}.${signature}`, [secret]), { ok: false, reason: 'the egress credential is not signed by berth' });
    assert.equal(verifyGrant(credential, ['x'.repeat(32)]).ok, false);
    assert.deepEqual(verifyGrant(signGrant({ ...grant, expiresAt: Date.now() - 1 }, secret), [secret]), {
      ok: false,
      reason: 'the egress credential of t-1#1 expired',
    });
    assert.equal(verifyGrant('sk-ant-real-looking-key', [secret]).ok, false);
    assert.equal(verifyGrant(`${prefix}.${body}`, [secret]).ok, false);
  });
});

describe("model usage from the providers' own responses", () => {
  it('Anthropic JSON: input, output and cache tokens', () => {
    const tap = new UsageTap('application/json');
    tap.write(Buffer.from('{"id":"msg_1","type":"message","usage":{"input_tokens":12,"output_tokens":'));
    tap.write(Buffer.from('34,"cache_creation_input_tokens":5,"cache_read_input_tokens":100}}'));
    assert.deepEqual(tap.end(), { inputTokens: 12, outputTokens: 34, cacheReadTokens: 100, cacheWriteTokens: 5, requests: 1 });
  });
  it('Anthropic SSE: message_start usage, then the final output count from message_delta, split across chunks', () => {
    const events = [
      'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1,"cache_read_input_tokens":7,"cache_creation_input_tokens":0}}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"hi"}}\n\n',
      'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}\n\n',
      'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ].join('');
    const tap = new UsageTap('text/event-stream; charset=utf-8');
    for (let i = 0; i < events.length; i += 17) tap.write(Buffer.from(events.slice(i, i + 17)));
    assert.deepEqual(tap.end(), { inputTokens: 25, outputTokens: 15, cacheReadTokens: 7, cacheWriteTokens: 0, requests: 1 });
  });
  it('OpenAI Responses (response.completed) and Chat Completions (include_usage): cached tokens apart from input', () => {
    const responses = new UsageTap('text/event-stream');
    responses.write(
      Buffer.from(
        'data: {"type":"response.created"}\n\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":50,"input_tokens_details":{"cached_tokens":20},"output_tokens":9}}}\n\n',
      ),
    );
    assert.deepEqual(responses.end(), { inputTokens: 30, outputTokens: 9, cacheReadTokens: 20, cacheWriteTokens: 0, requests: 1 });
    const chat = new UsageTap('text/event-stream');
    chat.write(
      Buffer.from(
        'data: {"choices":[{"delta":{"content":"x"}}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":3}}\n\ndata: [DONE]\n\n',
      ),
    );
    assert.deepEqual(chat.end(), { inputTokens: 8, outputTokens: 3, cacheReadTokens: 0, cacheWriteTokens: 0, requests: 1 });
    assert.deepEqual(usageFrom({ prompt_tokens: 10, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 4 } }), {
      inputTokens: 6,
      outputTokens: 2,
      cacheReadTokens: 4,
      cacheWriteTokens: 0,
    });
  });
  it('an error page or a body that is not JSON meters one request and no tokens', () => {
    const tap = new UsageTap('text/html');
    tap.write(Buffer.from('<html>bad gateway</html>'));
    assert.deepEqual(tap.end(), { requests: 1 });
  });
});

describe('what berth grants an attempt (operator config only)', () => {
  const base = {
    REDIS_URL: 'redis://127.0.0.1:6379',
    API_TOKEN: 'a'.repeat(32),
    WORKER_IMAGE: 'berth:local',
    AGENT_COMMAND_REVIEW: 'agent review',
    AGENT_COMMAND_IMPLEMENT: 'agent implement',
  };
  const config = parseConfig({
    ...base,
    EGRESS_HOSTS: '*.example-cdn.com',
    EGRESS_HOSTS_IMPLEMENT: 'registry.npmjs.org',
    EGRESS_PROVIDERS: 'anthropic',
    PROVIDER_ANTHROPIC_KEY: 'sk-ant-operator-key',
  });
  const gate = new EgressGate(config, {} as never, pino({ level: 'silent' }));
  const task = (kind: string) => ({ id: 't-9', attempt: 2, kind, repo: 'octo/widgets', prompt: 'also allow evil.example' });

  it("GitHub, EGRESS_HOSTS and the kind's own extras; never anything from the task", () => {
    const review = gate.grant(task('review'));
    assert.deepEqual(review.hosts, ['github.com', 'api.github.com', '*.example-cdn.com']);
    assert.deepEqual(gate.grant(task('implement')).hosts, ['github.com', 'api.github.com', '*.example-cdn.com', 'registry.npmjs.org']);
    assert.deepEqual(review.ports, [443]);
    assert.equal(review.attempt, 't-9#2');
    assert.ok(review.expiresAt > Date.now() + config.TASK_TIMEOUT, 'lives as long as the attempt may');
  });
  it('the worker gets its credential in place of the model key, base URLs on its own loopback, and no key', () => {
    const setup = gate.forAttempt(task('review'));
    assert.equal(setup.env.ANTHROPIC_BASE_URL, 'http://127.0.0.1:3128/model/anthropic');
    assert.match(setup.secrets.ANTHROPIC_API_KEY!, /^berth-egress\./);
    assert.equal(setup.secrets.HTTPS_PROXY, `http://berth:${setup.secrets.ANTHROPIC_API_KEY}@127.0.0.1:3128`);
    assert.ok(!JSON.stringify(setup).includes('sk-ant-operator-key'));
    assert.ok(JSON.stringify(gate.spec.env).includes('sk-ant-operator-key'), 'the proxy holds it');
    assert.deepEqual(setup.volumes, [{ source: gate.spec.socketVolume, target: '/run/berth-egress', readOnly: true }]);
  });
  it('a change of the providers is a new proxy version (its own name), the same settings the same name', () => {
    const again = new EgressGate(config, {} as never, pino({ level: 'silent' }));
    assert.equal(again.spec.name, gate.spec.name);
    const rotated = new EgressGate(
      parseConfig({ ...base, EGRESS_PROVIDERS: 'anthropic', PROVIDER_ANTHROPIC_KEY: 'sk-ant-rotated' }),
      {} as never,
      pino({ level: 'silent' }),
    );
    assert.notEqual(rotated.spec.name, gate.spec.name);
  });
  it('bad egress settings are refused with what to fix', () => {
    const problems = (env: Record<string, string>) => {
      try {
        parseConfig({ ...base, ...env });
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };
    assert.match(problems({ EGRESS_HOSTS: '10.0.0.1' }).join(), /EGRESS_HOSTS: '10\.0\.0\.1' is an IP address/);
    assert.match(problems({ EGRESS_ALLOW_PRIVATE: '10.0.0.0/99' }).join(), /prefix length out of range/);
    assert.match(problems({ EGRESS_PROVIDERS: 'anthropic' }).join(), /PROVIDER_ANTHROPIC_KEY or PROVIDER_ANTHROPIC_KEY_FILE/);
    assert.match(problems({ EGRESS_PROVIDERS: 'mine', PROVIDER_MINE_KEY: 'k' }).join(), /PROVIDER_MINE_URL.*PROVIDER_MINE_API/s);
    assert.match(problems({ EGRESS_HOSTS_DEPLOY: 'x.example' }).join(), /no AGENT_COMMAND_DEPLOY/);
    assert.match(
      problems({ EGRESS_PROVIDERS: 'anthropic', PROVIDER_ANTHROPIC_KEY: 'sk-1', WORKER_ENV: 'ANTHROPIC_API_KEY', ANTHROPIC_API_KEY: 'sk-1' }).join(),
      /holds a model provider's key/,
    );
    assert.match(problems({ WORKER_NETWORK: 'my-net' }).join(), /EGRESS=proxy gives workers no network/);
    assert.deepEqual(problems({ EGRESS: 'open', WORKER_NETWORK: 'my-net' }), []);
  });
});

describe("the proxy's journal (a swarm's way to read an attempt's record)", () => {
  it('replaying the log lines gives the record the ledger kept; other attempts, other lines and torn lines are ignored', () => {
    const lines: string[] = [];
    const ledger = new EgressLedger(null, undefined, (event) =>
      lines.push(`2026-12-03T20:00:00.000Z ${JSON.stringify({ level: 30, msg: JOURNAL_MSG, egress: event })}`),
    );
    const entry = (host: string, decision: 'allowed' | 'refused') => ({ at: 1, via: 'connect' as const, host, port: 443, decision, bytesIn: 10, bytesOut: 5 });
    ledger.record('t1#1', entry('allowed.test', 'allowed'));
    lines.push('{"level":30,"msg":"egress proxy listening"}', `{"level":30,"msg":"${JOURNAL_MSG}","egress":{"attempt":"t1#1","entry":`);
    ledger.record('t1#1', entry('evil.example', 'refused'));
    ledger.record('t2#1', entry('evil.example', 'refused'));
    ledger.addUsage('t1#1', { inputTokens: 20, outputTokens: 7, requests: 1 }, 'claude-test');
    ledger.overBudget('t1#1', 'TASK_BUDGET_TOKENS (20) reached');
    const replayed = replayJournal(journalEvents(lines), 't1#1');
    const kept = ledger.read('t1#1')!;
    assert.deepEqual({ ...replayed, updatedAt: 0 }, { ...kept, updatedAt: 0 });
    assert.deepEqual(replayed?.refusedHosts, { 'evil.example': 1 });
    assert.equal(replayed?.usage.inputTokens, 20);
    assert.equal(replayJournal(journalEvents(lines), 't3#1'), null);
    assert.deepEqual(overBudgetIn(journalEvents(lines)), ['t1#1']);
  });
});
