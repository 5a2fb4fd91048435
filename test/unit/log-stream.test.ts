import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cutLine, LineSplitter } from '../../src/consumer/log-stream.js';
import { SecretMask } from '../../src/core/secret-mask.js';
import { FrameDemuxer } from '../../src/consumer/launcher/docker-frames.js';

const frame = (text: string, stream = 1) => {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
};

describe('log lines from a container', () => {
  it('frames are demultiplexed whatever the chunking, headers split included', () => {
    const bytes = Buffer.concat([frame('hello '), frame('world\n', 2), frame('é!\n')]);
    for (const size of [1, 3, 7, 8, 9, bytes.length]) {
      const out: Buffer[] = [];
      const demux = new FrameDemuxer((b) => out.push(Buffer.from(b)));
      for (let i = 0; i < bytes.length; i += size) demux.push(bytes.subarray(i, i + size));
      assert.equal(Buffer.concat(out).toString(), 'hello world\né!\n', `chunk size ${size}`);
    }
  });
  it('a huge frame is passed on as it arrives, never gathered', () => {
    const slices: number[] = [];
    const demux = new FrameDemuxer((b) => slices.push(b.length));
    const header = Buffer.alloc(8);
    header.writeUInt32BE(50 * 65_536, 4);
    demux.push(header);
    for (let i = 0; i < 50; i++) demux.push(Buffer.alloc(65_536, 120));
    assert.equal(slices.length, 50);
    assert.ok(slices.every((n) => n === 65_536));
  });
  it('lines split across pushes; a line longer than the cap is cut once with a marker and the rest dropped up to its newline', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((l, cut) => lines.push(cut ? cutLine(l, new SecretMask([]), 10) : l), 10);
    const push = (text: string) => splitter.push(Buffer.from(text));
    push('ab');
    push('c\nde');
    push('f\n0123456789ABCDEF');
    for (let i = 0; i < 1000; i++) push('x'.repeat(1000)); // a \r progress bar would look the same
    push('\nlast');
    splitter.end();
    assert.deepEqual(lines, ['abc', 'def', '0123456789 [berth] line cut at 10 characters; the rest of it is dropped', 'last']);
  });
  it('160 MiB without a newline keeps nothing but the capped line', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((l) => lines.push(l));
    const chunk = Buffer.alloc(65_536, 'x');
    for (let i = 0; i < 2_560; i++) splitter.push(chunk);
    splitter.end();
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.length < 2_100);
    assert.equal((splitter as unknown as { size: number }).size, 0);
  });
  it('UTF-8 split across chunks decodes whole; a cut never splits a character', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((l, cut) => lines.push(cut ? cutLine(l, new SecretMask([]), 5) : l), 5);
    const bytes = Buffer.from('héé\nééééé\n');
    for (let i = 0; i < bytes.length; i++) splitter.push(bytes.subarray(i, i + 1));
    assert.deepEqual(lines, ['héé', 'éé [berth] line cut at 5 characters; the rest of it is dropped']);
  });
  it('secrets and token-shaped strings are masked', () => {
    const mask = new SecretMask(['sk-model-key-123', 'abc']);
    assert.equal(
      mask.mask(`key sk-model-key-123 and ghs_${'z'.repeat(30)} and abc`),
      'key *** and *** and abc',
      'values shorter than 6 characters are not treated as secrets',
    );
  });
  it('a secret or a token that straddles the cut keeps none of its characters', () => {
    const key = 'sk-model-key-0123456789abcdef';
    const token = `ghs_${'Q'.repeat(36)}`;
    for (const secret of [key, token]) {
      for (const before of [1_990, 1_999, 1_980]) {
        const lines: string[] = [];
        const splitter = new LineSplitter((l, cut) => lines.push(cut ? cutLine(l, new SecretMask([key, token])) : l));
        splitter.push(Buffer.from(`${'x'.repeat(before)}${secret}${'y'.repeat(100)}\n`));
        assert.equal(lines.length, 1);
        const kept = lines[0]!.replace(/ \[berth\] line cut.*$/, '').slice(before);
        assert.ok(kept === '' || kept === '***', `${secret.slice(0, 6)} at ${before}: kept '${kept}'`);
        assert.match(lines[0]!, /line cut at 2000 characters/);
      }
    }
    const mask = new SecretMask([key]);
    assert.equal(mask.maskCut('the key is sk-'), 'the key is ***');
    assert.equal(mask.maskCut('ends with s'), 'ends with ***', 'even one character of it');
    assert.equal(mask.mask('ends with sk'), 'ends with sk', 'only a cut text loses its tail');
    assert.deepEqual(mask.maskValue({ title: `leaked ${key}`, list: [token], n: 3 }), { title: 'leaked ***', list: ['***'], n: 3 });
  });
});
