import { describe, expect, it } from 'vitest';
import { HOST_SAMPLER_SCHEDULE } from '../../infra/constructs/host-sampler.js';
import { appSettingsFromContext } from '../../infra/context.js';
import { onlyResource, synthesize } from './support.js';

/**
 * The host sampler's State Manager association: the host-sampler document, installed on exactly
 * the instances with the opt-in tag, again every day (the install is idempotent), with the
 * interval as a document parameter.
 */
describe('the host sampler association', () => {
  it('installs the host-sampler document on the tagged instances, every day, at the default interval', () => {
    // Only the sampler's association (log shipping adds two of its own: kernel-log-shipping.test.ts).
    const { stack, template } = synthesize({ kernelLogShipping: false });
    const samplerName = stack.responder.documents.documentName('host-sampler');
    const association = onlyResource(template, 'AWS::SSM::Association');
    const documents = template.findResources('AWS::SSM::Document');
    const [documentId] = Object.entries(documents).find(
      ([, resource]) => (resource as { Properties: { Name: string } }).Properties.Name === samplerName,
    ) ?? [undefined];
    expect(documentId).toBeDefined();
    expect(association.properties).toMatchObject({
      Name: { Ref: documentId },
      AssociationName: samplerName,
      Targets: [{ Key: 'tag:conntrack-responder:managed', Values: ['true'] }],
      Parameters: { Action: ['install'], IntervalSeconds: ['60'] },
      ScheduleExpression: HOST_SAMPLER_SCHEDULE,
      MaxErrors: '100%',
    });
  });

  it('follows the opt-in tag and the interval, and can be left out', () => {
    const tagged = synthesize({
      managedInstanceTagKey: 'team:conntrack',
      managedInstanceTagValue: 'yes',
      hostSamplerIntervalSeconds: 15,
      kernelLogShipping: false,
    });
    expect(onlyResource(tagged.template, 'AWS::SSM::Association').properties).toMatchObject({
      Targets: [{ Key: 'tag:team:conntrack', Values: ['yes'] }],
      Parameters: { Action: ['install'], IntervalSeconds: ['15'] },
    });
    synthesize({ hostSampler: false, kernelLogShipping: false }).template.resourceCountIs(
      'AWS::SSM::Association',
      0,
    );
  });

  it.each([0, 3601, 1.5])('refuses hostSamplerIntervalSeconds %s at synth', (value) => {
    expect(() => synthesize({ hostSamplerIntervalSeconds: value })).toThrow(/hostSamplerIntervalSeconds/);
  });

  it('reads both settings from context', () => {
    const context: Record<string, unknown> = {
      'conntrack-responder:hostSampler': 'false',
      'conntrack-responder:hostSamplerIntervalSeconds': '30',
    };
    expect(appSettingsFromContext((key) => context[key]).responder).toMatchObject({
      hostSampler: false,
      hostSamplerIntervalSeconds: 30,
    });
  });
});

describe('the near-full settings of the detect function', () => {
  const detectEnvironment = (template: ReturnType<typeof synthesize>['template']) => {
    const functions = Object.values(template.findResources('AWS::Lambda::Function')) as {
      Properties: { Environment?: { Variables?: Record<string, unknown> } };
    }[];
    const detect = functions.filter(
      (resource) => resource.Properties.Environment?.Variables?.NEAR_FULL_HORIZON_MINUTES !== undefined,
    );
    expect(detect).toHaveLength(1);
    return detect[0]?.Properties.Environment?.Variables;
  };

  it('passes the horizon, the usage threshold and the metrics switch, with their defaults', () => {
    expect(detectEnvironment(synthesize().template)).toMatchObject({
      NEAR_FULL_HORIZON_MINUTES: '30',
      NEAR_FULL_USAGE_PERCENT: '90',
      HOST_SAMPLE_METRICS: 'on',
    });
    expect(
      detectEnvironment(
        synthesize({ nearFullHorizonMinutes: 10, nearFullUsagePercent: 80, hostSampleMetrics: false })
          .template,
      ),
    ).toMatchObject({
      NEAR_FULL_HORIZON_MINUTES: '10',
      NEAR_FULL_USAGE_PERCENT: '80',
      HOST_SAMPLE_METRICS: 'off',
    });
  });

  it.each([
    { nearFullHorizonMinutes: 0 },
    { nearFullHorizonMinutes: 1441 },
    { nearFullUsagePercent: 49 },
    { nearFullUsagePercent: 100 },
  ])('refuses %o at synth', (props) => {
    expect(() => synthesize(props)).toThrow(new RegExp(Object.keys(props)[0] ?? 'never'));
  });

  it('reads them from context', () => {
    const context: Record<string, unknown> = {
      'conntrack-responder:nearFullHorizonMinutes': '15',
      'conntrack-responder:nearFullUsagePercent': '85',
      'conntrack-responder:hostSampleMetrics': 'false',
    };
    expect(appSettingsFromContext((key) => context[key]).responder).toMatchObject({
      nearFullHorizonMinutes: 15,
      nearFullUsagePercent: 85,
      hostSampleMetrics: false,
    });
  });
});
