import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { terminalSafe } from '../../src/cli/terminal-text.js';

describe('container output on a terminal', () => {
  it('escape sequences are stripped, other controls made visible, text and tabs kept', () => {
    assert.equal(terminalSafe('\u001b[31mred\u001b[0m and \u001b[2J\u001b[Hclear'), 'red and clear');
    assert.equal(terminalSafe('\u001b]0;pwned title\u0007after'), 'after', 'a window title (OSC) is dropped');
    assert.equal(terminalSafe('\u001b]8;;https://evil.example\u001b\\link\u001b]8;;\u001b\\'), 'link', 'a hyperlink (OSC 8) is dropped');
    assert.equal(terminalSafe('over\rwrite\bx'), 'over\\x0dwrite\\x08x');
    assert.equal(terminalSafe('tab\tkept, ünïcode ✓'), 'tab\tkept, ünïcode ✓');
    assert.equal(terminalSafe('\u009b2Jc1'), 'c1');
  });
});
