import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../../functions/cli/main.js';
import { captureIo } from './support/capture-io.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runbooks/', import.meta.url));

async function run(args: string[]) {
  const { io, stdout, stderr } = captureIo();
  const code = await main(['run-document', ...args], io);
  return { code, out: stdout(), err: stderr() };
}

describe('conntrack-responder run-document', () => {
  it('lists documents with their parameters and constraints', async () => {
    const { code, out } = await run(['--list', '--runbooks', FIXTURES]);
    expect(code).toBe(0);
    expect(out).toContain('echo-env: Test fixture');
    expect(out).toContain('  Mode print|fail|sleep|flood (default "print")');
  });

  it('refuses an invalid parameter with exit code 2 before anything runs', async () => {
    // The namespace does not exist: validation must fail first, or the error would be about it.
    const { code, err } = await run([
      'echo-env',
      '--netns',
      'ctr-does-not-exist',
      '--runbooks',
      FIXTURES,
      '--param',
      'Message=8080; reboot',
    ]);
    expect(code).toBe(2);
    expect(err).toContain(`parameter 'Message': value "8080; reboot" does not match allowedPattern`);
  });

  it.each([
    [['echo-env'], /--netns NS is required/],
    [['--netns', 'x'], /exactly one document NAME/],
    [['echo-env', '--netns', 'x', '--param', 'novalue'], /--param expects Name=Value/],
    [['echo-env', '--netns', 'x', '--timeout-seconds', '1s'], /--timeout-seconds expects/],
    [['echo-env', '--bogus'], /Unknown option '--bogus'/],
  ])('reports usage errors (%j)', async (args, message) => {
    const { code, err } = await run(args);
    expect(code).toBe(2);
    expect(err).toMatch(message);
  });
});
