import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { codeSpan, neutraliseMentions } from '../../src/core/markdown.js';
import { agentSummary } from '../../src/github/check-run.js';

/** What GitHub would link as a mention: `@` directly followed by a name. */
const mentions = (text: string) => [...text.matchAll(/(^|[^\w`])@([A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)?)/g)].map((m) => m[2]);

describe('untrusted text in markdown berth posts', () => {
  it('a file named with backticks, a team mention and a link stays inside its code span', () => {
    const hostile = 'a`b`` @org/team [x](https://evil.example) `';
    const span = codeSpan(hostile);
    const fence = /^(`+)/.exec(span)![1]!;
    assert.ok(fence.length > 2, 'the fence is longer than any backtick run inside');
    assert.ok(span.endsWith(fence) && span.slice(fence.length, -fence.length).includes(hostile), 'the text is verbatim between the fences');
    assert.ok(!span.slice(fence.length, -fence.length).includes(fence), 'no run inside closes the span');
    assert.equal(codeSpan('line\nbreak'), '`line break`');
    assert.equal(codeSpan('a|b', { inTable: true }), '`a\\|b`', 'a pipe does not end a table cell');
  });

  it('mentions are neutralised', () => {
    assert.deepEqual(mentions('ping @org/team and @someone'), ['org/team', 'someone']);
    assert.deepEqual(mentions(neutraliseMentions('ping @org/team and @someone')), []);
    assert.deepEqual(mentions(agentSummary({ summary: 'done; cc @org/security' })!), [], "an agent's summary mentions nobody");
    assert.equal(neutraliseMentions('mail me at a@b.example'), 'mail me at a@\u2060b.example');
  });
});
