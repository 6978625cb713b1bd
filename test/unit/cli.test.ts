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
});
