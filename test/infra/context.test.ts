import { Duration } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { appSettingsFromContext } from '../../infra/context.js';

const reader = (values: Record<string, unknown>) => (key: string) => values[key];

describe('appSettingsFromContext', () => {
  it('gives the defaults when nothing is set', () => {
    expect(appSettingsFromContext(reader({}))).toEqual({ stackName: 'ConntrackResponder', responder: {} });
  });

  it('reads -c strings and cdk.json values alike', () => {
    const fromCommandLine = appSettingsFromContext(
      reader({
        'conntrack-responder:logGroupNames': '/var/log/messages, /var/log/kern.log',
        'conntrack-responder:cooldownMinutes': '45',
        'conntrack-responder:objectLock': 'true',
        'conntrack-responder:defaultMode': 'dry-run',
        'conntrack-responder:stackName': 'Ctr',
      }),
    );
    const fromCdkJson = appSettingsFromContext(
      reader({
        'conntrack-responder:logGroupNames': ['/var/log/messages', '/var/log/kern.log'],
        'conntrack-responder:cooldownMinutes': 45,
        'conntrack-responder:objectLock': true,
        'conntrack-responder:defaultMode': 'dry-run',
        'conntrack-responder:stackName': 'Ctr',
      }),
    );
    expect(fromCommandLine).toEqual({
      stackName: 'Ctr',
      responder: {
        logGroupNames: ['/var/log/messages', '/var/log/kern.log'],
        cooldownMinutes: 45,
        objectLock: true,
        defaultMode: 'dry-run',
      },
    });
    expect(fromCdkJson).toEqual(fromCommandLine);
  });

  it("reads the guardrail props and the log retention, checking the retention against CloudWatch Logs' list", () => {
    const settings = appSettingsFromContext(
      reader({
        'conntrack-responder:breakerMaxInstances': '0',
        'conntrack-responder:breakerWindowMinutes': 30,
        'conntrack-responder:maxConcurrentRemediations': '2',
        'conntrack-responder:remediationCooldownMinutes': '60',
        'conntrack-responder:modeTagKey': 'ops:conntrack',
        'conntrack-responder:changeCalendar': 'FreezeCalendar',
        'conntrack-responder:minSsmAgentVersion': '3.3.3000.0',
        'conntrack-responder:awsMaxAttempts': '5',
        'conntrack-responder:awsRetryMode': 'adaptive',
        'conntrack-responder:logRetentionDays': '30',
      }),
    );
    expect(settings.responder).toEqual({
      breakerMaxInstances: 0,
      breakerWindowMinutes: 30,
      maxConcurrentRemediations: 2,
      remediationCooldownMinutes: 60,
      modeTagKey: 'ops:conntrack',
      changeCalendar: 'FreezeCalendar',
      minSsmAgentVersion: '3.3.3000.0',
      awsMaxAttempts: 5,
      awsRetryMode: 'adaptive',
      logRetention: logs.RetentionDays.ONE_MONTH,
    });
    expect(() => appSettingsFromContext(reader({ 'conntrack-responder:logRetentionDays': '31' }))).toThrow(
      /conntrack-responder:logRetentionDays must be one of CloudWatch Logs' retention periods in days \(1, 3, 5, 7, 14, 30,/,
    );
    expect(() =>
      appSettingsFromContext(reader({ 'conntrack-responder:breakerMaxInstances': 'ten' })),
    ).toThrow(/breakerMaxInstances must be a whole number, got "ten"/);
  });

  it('reads the workflow settings: minutes as Durations, the policy as an object from JSON text or cdk.json', () => {
    const settings = appSettingsFromContext(
      reader({
        'conntrack-responder:approvalTimeoutMinutes': '90',
        'conntrack-responder:soakMinutes': '0',
        'conntrack-responder:workflowTimeoutMinutes': 360,
        'conntrack-responder:policy': '{"modes":{"raise-limits":"approve"}}',
      }),
    );
    expect(settings.responder).toEqual({
      approvalTimeoutMinutes: 90,
      soak: Duration.minutes(0),
      workflowTimeout: Duration.minutes(360),
      policy: { modes: { 'raise-limits': 'approve' } },
    });
    const fromCdkJson = appSettingsFromContext(
      reader({ 'conntrack-responder:policy': { modes: { 'raise-limits': 'approve' } } }),
    );
    expect(fromCdkJson.responder).toEqual({ policy: { modes: { 'raise-limits': 'approve' } } });
  });

  it('reads the opt-in tag of the managed instances', () => {
    const settings = appSettingsFromContext(
      reader({
        'conntrack-responder:managedInstanceTagKey': 'ops/conntrack',
        'conntrack-responder:managedInstanceTagValue': 'yes',
      }),
    );
    expect(settings.responder).toEqual({
      managedInstanceTagKey: 'ops/conntrack',
      managedInstanceTagValue: 'yes',
    });
    expect(() =>
      appSettingsFromContext(reader({ 'conntrack-responder:managedInstanceTagValue': true })),
    ).toThrow(/managedInstanceTagValue must be a string, got true/);
  });

  it.each([
    [
      { 'conntrack-responder:cooldownMinutes': 'half an hour' },
      /cooldownMinutes must be a whole number, got "half an hour"/,
    ],
    [{ 'conntrack-responder:objectLock': 'yes' }, /objectLock must be true or false, got "yes"/],
    [
      { 'conntrack-responder:logGroupNames': 42 },
      /logGroupNames must be a comma-separated string or an array of strings/,
    ],
    [{ 'conntrack-responder:soakMinutes': '90s' }, /soakMinutes must be a whole number, got "90s"/],
    [
      { 'conntrack-responder:policy': '{memoryBudgetPercent: 3}' },
      /context conntrack-responder:policy must be a JSON object \(.*JSON.*\), got "\{memoryBudgetPercent: 3\}"/,
    ],
    [{ 'conntrack-responder:policy': '[1, 2]' }, /policy must be a JSON object, got "\[1, 2\]"/],
    [{ 'conntrack-responder:policy': 5 }, /policy must be a JSON object, got 5/],
  ])('names the key it cannot read: %j', (values, message) => {
    expect(() => appSettingsFromContext(reader(values))).toThrow(message);
  });

  it('reads evidence signing: a flag for a new key, or an existing key and its algorithm', () => {
    expect(
      appSettingsFromContext(reader({ 'conntrack-responder:evidenceSigning': 'true' })).responder,
    ).toEqual({
      evidenceSigning: {},
    });
    expect(
      appSettingsFromContext(reader({ 'conntrack-responder:evidenceSigning': false })).responder,
    ).toEqual({});
    const arn = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    expect(
      appSettingsFromContext(
        reader({
          'conntrack-responder:evidenceSigningKeyArn': arn,
          'conntrack-responder:evidenceSigningAlgorithm': 'RSASSA_PSS_SHA_256',
        }),
      ).responder,
    ).toEqual({ evidenceSigning: { keyArn: arn, algorithm: 'RSASSA_PSS_SHA_256' } });
    expect(() =>
      appSettingsFromContext(
        reader({
          'conntrack-responder:evidenceSigning': 'false',
          'conntrack-responder:evidenceSigningKeyArn': arn,
        }),
      ),
    ).toThrow(/evidenceSigning must be true \(or unset\) when evidenceSigningKeyArn/);
  });
});
