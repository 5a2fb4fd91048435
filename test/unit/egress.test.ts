import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostAllowed, judgeAddress, judgeTarget, type Allowlist } from '../../src/egress/allowlist.js';
import { signGrant, verifyGrant, type Grant } from '../../src/egress/credential.js';
import { UsageTap, usageFrom } from '../../src/egress/usage.js';

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
    assert.match((judgeTarget(list, 'evil.example', 443) as { reason: string }).reason, /evil\.example is not on this task's allowlist \(add it to EGRESS_HOSTS or EGRESS_HOSTS_<KIND>\)/);
  });
  it('a listed name resolving to loopback, private, link-local or metadata addresses is refused unless its range is allowed (DNS rebinding)', () => {
    for (const address of ['127.0.0.1', '10.0.0.5', '172.17.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1']) {
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
  const grant: Grant = { attempt: 't-1#1', kind: 'review', hosts: ['github.com'], ports: [443], allowPrivate: [], providers: ['anthropic'], expiresAt: Date.now() + 60_000 };
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
    assert.deepEqual(verifyGrant(signGrant({ ...grant, expiresAt: Date.now() - 1 }, secret), [secret]), { ok: false, reason: 'the egress credential of t-1#1 expired' });
    assert.equal(verifyGrant('sk-ant-real-looking-key', [secret]).ok, false);
    assert.equal(verifyGrant(`${prefix}.${body}`, [secret]).ok, false);
  });
});

describe('model usage from the providers\' own responses', () => {
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
    responses.write(Buffer.from('data: {"type":"response.created"}\n\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":50,"input_tokens_details":{"cached_tokens":20},"output_tokens":9}}}\n\n'));
    assert.deepEqual(responses.end(), { inputTokens: 30, outputTokens: 9, cacheReadTokens: 20, cacheWriteTokens: 0, requests: 1 });
    const chat = new UsageTap('text/event-stream');
    chat.write(Buffer.from('data: {"choices":[{"delta":{"content":"x"}}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":3}}\n\ndata: [DONE]\n\n'));
    assert.deepEqual(chat.end(), { inputTokens: 8, outputTokens: 3, cacheReadTokens: 0, cacheWriteTokens: 0, requests: 1 });
    assert.deepEqual(usageFrom({ prompt_tokens: 10, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 4 } }), { inputTokens: 6, outputTokens: 2, cacheReadTokens: 4, cacheWriteTokens: 0 });
  });
  it('an error page or a body that is not JSON meters one request and no tokens', () => {
    const tap = new UsageTap('text/html');
    tap.write(Buffer.from('<html>bad gateway</html>'));
    assert.deepEqual(tap.end(), { requests: 1 });
  });
});
