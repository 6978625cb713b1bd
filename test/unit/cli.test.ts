import { describe, expect, it } from 'vitest';
import { main } from '../../functions/cli/main.js';
import { captureIo } from './support/capture-io.js';

describe('conntrack-responder CLI', () => {
  it('lists its commands with --help and exits 0', async () => {
    const { io, stdout } = captureIo();
    expect(await main(['--help'], io)).toBe(0);
    expect(stdout()).toContain('detect');
  });

  it('rejects an unknown command with exit code 2 and names it', async () => {
    const { io, stderr } = captureIo();
    expect(await main(['frobnicate'], io)).toBe(2);
    expect(stderr()).toContain("unknown command 'frobnicate'");
  });

  it('watch: explains near-full sampling in --help and refuses a bad --sample-interval before touching anything', async () => {
    const help = captureIo();
    expect(await main(['watch', '--help'], help.io)).toBe(0);
    expect(help.stdout()).toContain('--sample-interval');
    expect(help.stdout()).toContain('near-full');
    for (const bad of ['0', 'abc', '99999']) {
      const { io, stderr } = captureIo();
      expect(await main(['watch', '--netns', 'ctr-none', '--sample-interval', bad], io)).toBe(2);
      expect(stderr()).toContain(`--sample-interval must be seconds from 0.1 to 3600, got '${bad}'`);
    }
    const missing = captureIo();
    expect(await main(['watch', '--netns', 'ctr-none', '--sample-interval'], missing.io)).toBe(2);
  });
});
