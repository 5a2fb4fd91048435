import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { ROOT } from '../support/image.js';

/**
 * What countStreamedBytes is for (src/consumer/read-buffers.ts): 200 MiB streamed through buffers
 * allocated per read outside V8's heap, as a socket's are, in a process run like berth's image runs
 * it (`--expose-gc`). The most ever waiting to be freed is read from process.memoryUsage().
 */
function peakArrayBuffersMiB(counting: boolean): number {
  const script = `
    import { countStreamedBytes } from './src/consumer/read-buffers.ts';
    let peak = 0;
    for (let i = 0; i < 3200; i++) {
      const chunk = Buffer.allocUnsafeSlow(64 * 1024); // a socket read's fresh buffer
      chunk[0] = i;
      if (${counting}) countStreamedBytes(chunk.length);
      if (i % 16 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }
    console.log(Math.round(peak / 1048576));
  `;
  return Number(
    execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' }).trim(),
  );
}

describe('streamed read buffers', () => {
  it('are reclaimed every 8 MiB streamed, instead of piling up to V8’s 64 MiB external limit', () => {
    const counted = peakArrayBuffersMiB(true);
    const uncounted = peakArrayBuffersMiB(false);
    assert.ok(counted <= 24, `with the count, ${counted} MiB waited to be freed at most`);
    assert.ok(uncounted >= 40, `without it, ${uncounted} MiB did (the case this exists for)`);
  });
});
