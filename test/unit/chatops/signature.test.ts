import { describe, expect, it } from 'vitest';
import {
  computeSignature,
  MAX_CLOCK_SKEW_SECONDS,
  signSlackRequest,
  verifySlackSignature,
} from '../../../functions/core/chatops/signature.js';

// The worked example of Slack's "Verifying requests from Slack" page: an independent check that the
// base string and the HMAC are built exactly as Slack builds them.
const SLACK_DOC_EXAMPLE = {
  secret: '8f742231b10e8888abcd99yyyzzz85a5',
  timestamp: '1531420618',
  body: 'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
  signature: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
};

const NOW = 1_700_000_000;
const SECRET = 'signing-secret';
const BODY = Buffer.from('payload=%7B%22type%22%3A%22block_actions%22%7D');

function request(overrides: { timestamp?: string; signature?: string; body?: Buffer } = {}) {
  const timestamp = overrides.timestamp ?? String(NOW);
  return {
    timestamp,
    signature: overrides.signature ?? computeSignature(SECRET, timestamp, overrides.body ?? BODY),
    rawBody: overrides.body ?? BODY,
  };
}

describe('Slack request signature (v0)', () => {
  it("matches Slack's documented example", () => {
    const body = Buffer.from(SLACK_DOC_EXAMPLE.body);
    expect(computeSignature(SLACK_DOC_EXAMPLE.secret, SLACK_DOC_EXAMPLE.timestamp, body)).toBe(
      SLACK_DOC_EXAMPLE.signature,
    );
    const check = verifySlackSignature(
      { timestamp: SLACK_DOC_EXAMPLE.timestamp, signature: SLACK_DOC_EXAMPLE.signature, rawBody: body },
      [SLACK_DOC_EXAMPLE.secret],
      Number(SLACK_DOC_EXAMPLE.timestamp) + 10,
    );
    expect(check).toEqual({ ok: true, timestamp: Number(SLACK_DOC_EXAMPLE.timestamp) });
  });

  it('accepts a fresh, correctly signed request', () => {
    expect(verifySlackSignature(request(), [SECRET], NOW)).toMatchObject({ ok: true });
  });

  it('hashes the bytes, not a re-decoded string: a body that is not valid UTF-8 still verifies', () => {
    const body = Buffer.from([0x70, 0x3d, 0xff, 0xfe, 0x00, 0x41]);
    expect(verifySlackSignature(request({ body }), [SECRET], NOW)).toMatchObject({ ok: true });
  });

  it.each([
    ['one byte changed', Buffer.from(BODY.toString().replace('block', 'bLock'))],
    ['one byte added', Buffer.concat([BODY, Buffer.from('&')])],
    ['truncated', BODY.subarray(0, BODY.length - 1)],
  ])('refuses a tampered body (%s)', (_label, tampered) => {
    const signed = request();
    const check = verifySlackSignature({ ...signed, rawBody: tampered }, [SECRET], NOW);
    expect(check).toMatchObject({ ok: false, reason: 'signature-mismatch' });
  });

  it('refuses a request signed with another secret', () => {
    const check = verifySlackSignature(request(), ['another-secret'], NOW);
    expect(check).toMatchObject({ ok: false, reason: 'signature-mismatch' });
  });

  it.each([
    [MAX_CLOCK_SKEW_SECONDS, true],
    [MAX_CLOCK_SKEW_SECONDS + 1, false],
    [-MAX_CLOCK_SKEW_SECONDS, true],
    [-(MAX_CLOCK_SKEW_SECONDS + 1), false],
  ])('a request signed %i s before now is accepted: %s', (age, accepted) => {
    const check = verifySlackSignature(request({ timestamp: String(NOW - age) }), [SECRET], NOW);
    expect(check.ok).toBe(accepted);
    if (!check.ok) {
      expect(check.reason).toBe(age > 0 ? 'timestamp-too-old' : 'timestamp-in-the-future');
    }
  });

  it('checks the timestamp before the signature: a stale request with a valid signature is still refused', () => {
    const stale = String(NOW - 301);
    const check = verifySlackSignature(
      { timestamp: stale, signature: computeSignature(SECRET, stale, BODY), rawBody: BODY },
      [SECRET],
      NOW,
    );
    expect(check).toMatchObject({ ok: false, reason: 'timestamp-too-old' });
  });

  it.each([
    [{ timestamp: '' }, 'missing-timestamp'],
    [{ timestamp: '17e8' }, 'malformed-timestamp'],
    [{ timestamp: '-5' }, 'malformed-timestamp'],
    [{ signature: '' }, 'missing-signature'],
    [{ signature: 'v1=abc' }, 'malformed-signature'],
    [{ signature: `v0=${'A'.repeat(64)}` }, 'malformed-signature'],
    [{ signature: `v0=${'0'.repeat(63)}` }, 'malformed-signature'],
  ])('refuses malformed headers %o with %s', (overrides, reason) => {
    const check = verifySlackSignature({ ...request(), ...overrides }, [SECRET], NOW);
    expect(check).toMatchObject({ ok: false, reason });
  });

  it('refuses everything when no secret is configured', () => {
    expect(verifySlackSignature(request(), [], NOW)).toMatchObject({
      ok: false,
      reason: 'no-signing-secret',
    });
    expect(verifySlackSignature(request(), [''], NOW)).toMatchObject({
      ok: false,
      reason: 'no-signing-secret',
    });
  });

  it('accepts either secret while one replaces the other', () => {
    expect(verifySlackSignature(request(), ['new-secret', SECRET], NOW)).toMatchObject({ ok: true });
    expect(verifySlackSignature(request(), [SECRET, 'new-secret'], NOW)).toMatchObject({ ok: true });
  });

  it('signSlackRequest produces the headers the verifier accepts', () => {
    const headers = signSlackRequest(SECRET, BODY, NOW);
    const check = verifySlackSignature(
      {
        timestamp: headers['x-slack-request-timestamp'],
        signature: headers['x-slack-signature'],
        rawBody: BODY,
      },
      [SECRET],
      NOW,
    );
    expect(check.ok).toBe(true);
  });
});
