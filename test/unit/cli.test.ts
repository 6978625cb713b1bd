import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../../functions/cli/main.js';

function captureIo() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk) => out.push(String(chunk)));
  stderr.on('data', (chunk) => err.push(String(chunk)));
  return { io: { stdin: new PassThrough(), stdout, stderr }, out, err };
}

describe('conntrack-responder CLI', () => {
  it('lists its commands with --help and exits 0', async () => {
    const { io, out } = captureIo();
    expect(await main(['--help'], io)).toBe(0);
    expect(out.join('')).toContain('detect');
  });

  it('rejects an unknown command with exit code 2 and names it', async () => {
    const { io, err } = captureIo();
    expect(await main(['frobnicate'], io)).toBe(2);
    expect(err.join('')).toContain("unknown command 'frobnicate'");
  });
});
