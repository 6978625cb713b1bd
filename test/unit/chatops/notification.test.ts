import { describe, expect, it } from 'vitest';
import {
  REQUIRED_ATTRIBUTES,
  SNS_MAX_MESSAGE_BYTES,
  snsMessage,
  snsMessageBytes,
  snsSubject,
  summaryOf,
} from '../../../functions/core/chatops/notification.js';

const content = {
  subject: 'conntrack-responder: remediated on i-0abc1234def567890 (inc-1)',
  text: 'Incident inc-1 on i-0abc1234def567890: remediated.\nThe change was applied and verified after the soak period.',
  summary: {
    incidentId: 'inc-1',
    instance: 'i-0abc1234def567890',
    outcome: 'remediated',
    applied: ['Raise nf_conntrack_max'],
  },
  attributes: { severity: 'info', outcome: 'remediated', action: 'changed', instance: 'i-0abc1234def567890' },
};
const DIGEST = 'a'.repeat(64);
const evidence = {
  location: 's3://evidence-bucket/incidents/inc-1/',
  archive: 's3://evidence-bucket/incidents/inc-1.tar.gz',
  manifestSha256: DIGEST,
  signedBy: null,
};
const context = { account: '111122223333', evidence };

describe('the SNS notification', () => {
  it('carries text for people and a JSON summary for machines, with the evidence location and manifest digest', () => {
    const message = snsMessage(content, context);
    expect(message.Message.startsWith(content.text)).toBe(true);
    expect(message.Message).toContain(
      'Evidence bundle: s3://evidence-bucket/incidents/inc-1/ (archive s3://evidence-bucket/incidents/inc-1.tar.gz)',
    );
    expect(message.Message).toContain(`Manifest sha256: ${DIGEST}`);
    expect(message.Message).toContain(
      `Check it: npx conntrack-responder bundle verify inc-1.tar.gz --digest ${DIGEST}`,
    );
    expect(summaryOf(message.Message)).toEqual({ ...content.summary, account: '111122223333', evidence });
  });

  it('names the signing key when the bundle is signed', () => {
    const signedBy = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const message = snsMessage(content, { ...context, evidence: { ...evidence, signedBy } });
    expect(message.Message).toContain(`Manifest sha256: ${DIGEST} (signed by ${signedBy})`);
  });

  it('has String attributes for subscription filters: severity, action, instance, account, outcome', () => {
    const { MessageAttributes } = snsMessage(content, context);
    for (const name of REQUIRED_ATTRIBUTES) {
      expect(MessageAttributes[name]?.DataType).toBe('String');
      expect(MessageAttributes[name]?.StringValue).not.toBe('');
    }
    expect(MessageAttributes.account?.StringValue).toBe('111122223333');
    expect(Object.keys(MessageAttributes).length).toBeLessThanOrEqual(10);
  });

  it('never sends an empty attribute value (SNS refuses it)', () => {
    const { MessageAttributes } = snsMessage(
      { ...content, attributes: { ...content.attributes, instance: '' } },
      context,
    );
    expect(MessageAttributes.instance?.StringValue).toBe('unknown');
  });

  it('refuses an attribute name SNS would reject', () => {
    expect(() => snsMessage({ ...content, attributes: { 'bad name': 'x' } }, context)).toThrow(/bad name/);
    expect(() => snsMessage({ ...content, attributes: { 'aws.thing': 'x' } }, context)).toThrow(/aws\.thing/);
  });

  it.each([
    ['accents and emoji', 'Incidént 🔥 on hôte', 'Incident  on hote'.replace('  ', ' ')],
    ['line breaks', 'a\nb\r\nc\td', 'a b c d'],
    ['a leading space or symbol SNS does not accept', '  🔥🔥 fire', 'fire'],
  ])('subject: %s', (_label, input, expected) => {
    expect(snsSubject(input)).toBe(expected);
  });

  it('subject: ASCII, one line, under 100 characters, starts with a letter, digit or punctuation', () => {
    const subject = snsSubject(`conntrack-responder: ${'é'.repeat(50)}🔥 ${'x'.repeat(300)}\n`);
    expect(subject.length).toBeLessThan(100);
    expect(subject).toMatch(/^[\x21-\x7e][\x20-\x7e]*$/);
    expect(snsSubject('\u00a0\u2003')).toMatch(/^Incident/);
  });

  it('stays under 256 KB when the text and the summary are huge, keeping the JSON whole and saying where the rest is', () => {
    const huge = {
      ...content,
      text: `${'ligne de journal très longue ✓ '.repeat(20_000)}`,
      summary: {
        ...content.summary,
        error: 'E'.repeat(400_000),
        history: Array.from({ length: 5000 }, (_, i) => ({ i })),
      },
    };
    const message = snsMessage(huge, context);
    expect(snsMessageBytes(message)).toBeLessThan(SNS_MAX_MESSAGE_BYTES);
    expect(message.Message).toContain('Cut to fit');
    // Where the bundle is and its digest survive the cut: they lead to everything that was cut.
    expect(message.Message).toContain('Evidence bundle: s3://evidence-bucket/incidents/inc-1/');
    expect(message.Message).toContain(`Manifest sha256: ${DIGEST}`);
    const summary = summaryOf(message.Message) as Record<string, unknown>;
    expect(summary.truncated).toBe(true);
    expect(summary.incidentId).toBe('inc-1');
    expect(Buffer.from(message.Message, 'utf8').toString('utf8')).not.toContain('\uFFFD');
  });

  it('leaves a message that fits untouched', () => {
    const message = snsMessage(content, { ...context, evidence: null });
    expect(message.Message).not.toContain('Cut to fit');
    expect((summaryOf(message.Message) as Record<string, unknown>).truncated).toBeUndefined();
  });
});
