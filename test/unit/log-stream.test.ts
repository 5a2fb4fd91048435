import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter, secretMasker } from '../../src/consumer/log-stream.js';
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
    const splitter = new LineSplitter((l) => lines.push(l), 10);
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
    const splitter = new LineSplitter((l) => lines.push(l), 5);
    const bytes = Buffer.from('héé\nééééé\n');
    for (let i = 0; i < bytes.length; i++) splitter.push(bytes.subarray(i, i + 1));
    assert.deepEqual(lines, ['héé', 'éé [berth] line cut at 5 characters; the rest of it is dropped']);
  });
  it('secrets and token-shaped strings are masked', () => {
    const mask = secretMasker(['sk-model-key-123', 'abc']);
    assert.equal(mask(`key sk-model-key-123 and ghs_${'z'.repeat(30)} and abc`), 'key *** and *** and abc', 'values shorter than 6 characters are not treated as secrets');
  });
});
