import { describe, expect, it } from 'vitest';
import { addPolicyChecks } from '../../infra/policy-checks.js';
import { onlyResource, synthesize } from './support.js';

/**
 * The optional lifecycle event targets (prop `lifecycleEventTargets`): none by default; an OpsItem
 * rule whose target is OpsCenter with a dedup string per incident; a PagerDuty Events v2 webhook
 * behind an API destination whose routing key stays in Secrets Manager. The targets themselves
 * cannot run here: their input follows the documentation cited next to each assertion.
 */

const SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pagerduty-routing-AbCdEf';
const PAGERDUTY = 'https://events.pagerduty.com/v2/enqueue';

type Target = {
  Arn: unknown;
  RoleArn?: unknown;
  Input?: string;
  InputTransformer?: { InputPathsMap: Record<string, string>; InputTemplate: string };
  DeadLetterConfig?: { Arn: unknown };
  RetryPolicy?: { MaximumRetryAttempts: number; MaximumEventAgeInSeconds: number };
};
type Rule = { Properties: { EventPattern: Record<string, unknown>; Targets: Target[]; State?: string } };

function rules(template: ReturnType<typeof synthesize>['template']) {
  return Object.values(template.findResources('AWS::Events::Rule') as Record<string, Rule>).filter((rule) =>
    JSON.stringify(rule.Properties.EventPattern ?? {}).includes('conntrack-responder'),
  );
}

/** The template with its placeholders filled from a real event, as EventBridge does. */
function render(
  transformer: NonNullable<Target['InputTransformer']>,
  event: Record<string, unknown>,
): unknown {
  const valueAt = (path: string) =>
    path
      .replace(/^\$\./, '')
      .split('.')
      .reduce<unknown>((value, key) => (value as Record<string, unknown>)?.[key], event);
  // A placeholder inside a JSON string takes the value as string text (escaped, no quotes of its
  // own); outside a string it takes the value as JSON, so a string comes with its quotes
  // (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html).
  const template = transformer.InputTemplate;
  let text = '';
  let inString = false;
  for (let i = 0; i < template.length; i += 1) {
    const char = template[i] as string;
    if (inString && char === '\\') {
      text += template.slice(i, i + 2);
      i += 1;
      continue;
    }
    if (char === '"') inString = !inString;
    const placeholder = char === '<' ? /^<([A-Za-z0-9_-]+)>/.exec(template.slice(i)) : null;
    const name = placeholder?.[1];
    if (placeholder && name !== undefined && name in transformer.InputPathsMap) {
      const value = valueAt(transformer.InputPathsMap[name] as string);
      const json = JSON.stringify(value ?? null);
      text += inString && typeof value === 'string' ? json.slice(1, -1) : json;
      i += placeholder[0].length - 1;
      continue;
    }
    text += char;
  }
  return JSON.parse(text);
}

const event = {
  source: 'conntrack-responder',
  'detail-type': 'Incident Escalated',
  detail: {
    schemaVersion: '1',
    state: 'escalated',
    incidentId: 'i-0abc1234def567890-full-20261206T0200Z',
    host: 'i-0abc1234def567890',
    kind: 'table-full',
    mode: 'approve',
  },
};

describe('lifecycle event targets', () => {
  it('creates no rule, connection or destination by default', () => {
    const { template } = synthesize();
    expect(rules(template)).toEqual([]);
    template.resourceCountIs('AWS::Events::Connection', 0);
    template.resourceCountIs('AWS::Events::ApiDestination', 0);
  });

  describe('OpsItems', () => {
    const { template } = synthesize({ lifecycleEventTargets: { opsItems: {} } });

    it('matches our opened and escalated events and targets OpsCenter with a role that may create OpsItems', () => {
      const [rule] = rules(template);
      expect(rules(template)).toHaveLength(1);
      expect(rule?.Properties.EventPattern).toEqual({
        source: ['conntrack-responder'],
        'detail-type': ['Incident Opened', 'Incident Escalated'],
      });
      const [target] = rule?.Properties.Targets ?? [];
      expect(JSON.stringify(target?.Arn)).toMatch(/:ssm:.*:opsitem"\]\]\}$/);
      expect(target?.RoleArn).toBeDefined();
      expect(target?.DeadLetterConfig).toBeDefined();
      expect(target?.RetryPolicy).toEqual({ MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 21_600 });
    });

    it('makes one OpsItem per incident: the dedup string is the incident id', () => {
      const [target] = rules(template)[0]?.Properties.Targets ?? [];
      const input = render(target?.InputTransformer as NonNullable<Target['InputTransformer']>, event) as {
        title: string;
        source: string;
        severity: string;
        operationalData: Record<string, { type: string; value: string }>;
      };
      expect(input.title).toBe('conntrack-responder: table-full on i-0abc1234def567890');
      expect(input.source).toBe('conntrack-responder');
      expect(input.severity).toBe('2');
      // https://docs.aws.amazon.com/systems-manager/latest/userguide/OpsCenter-working-deduplication-strings.html
      expect(input.operationalData['/aws/dedup']?.type).toBe('SearchableString');
      expect(JSON.parse(String(input.operationalData['/aws/dedup']?.value))).toEqual({
        dedupString: 'conntrack-responder:i-0abc1234def567890-full-20261206T0200Z',
      });
    });
  });

  describe('PagerDuty Events v2 webhook', () => {
    const { template } = synthesize({
      lifecycleEventTargets: { webhook: { endpoint: PAGERDUTY, secretArn: SECRET } },
    });

    it('posts to the endpoint through a connection whose routing key is read from Secrets Manager, never written in the template', () => {
      const destination = onlyResource(template, 'AWS::Events::ApiDestination');
      expect(destination.properties).toMatchObject({ InvocationEndpoint: PAGERDUTY, HttpMethod: 'POST' });
      const connection = onlyResource(template, 'AWS::Events::Connection');
      const text = JSON.stringify(connection.properties);
      expect(text).toContain(`{{resolve:secretsmanager:${SECRET}:SecretString:routingKey::}}`);
      expect(connection.properties).toMatchObject({
        AuthorizationType: 'API_KEY',
        AuthParameters: {
          InvocationHttpParameters: {
            BodyParameters: [{ Key: 'routing_key', IsValueSecret: true }],
          },
        },
      });
    });

    it('triggers a page on an escalation and resolves it when the incident closes, deduplicated by incident id', () => {
      const byType = Object.fromEntries(
        rules(template).map((rule) => [
          JSON.stringify(rule.Properties.EventPattern['detail-type']),
          rule.Properties.Targets[0],
        ]),
      );
      expect(Object.keys(byType).sort()).toEqual(['["Incident Closed"]', '["Incident Escalated"]']);
      const trigger = render(byType['["Incident Escalated"]']?.InputTransformer as never, event) as Record<
        string,
        unknown
      >;
      // https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
      expect(trigger).toMatchObject({
        event_action: 'trigger',
        dedup_key: event.detail.incidentId,
        payload: { source: 'i-0abc1234def567890', severity: 'critical', custom_details: event.detail },
      });
      const resolve = render(byType['["Incident Closed"]']?.InputTransformer as never, {
        ...event,
        'detail-type': 'Incident Closed',
      }) as Record<string, unknown>;
      expect(resolve).toMatchObject({ event_action: 'resolve', dedup_key: event.detail.incidentId });
      for (const target of Object.values(byType)) expect(target?.DeadLetterConfig).toBeDefined();
    });
  });

  it('passes the policy checks (cdk-nag) with both targets', () => {
    const { app } = synthesize({
      lifecycleEventTargets: { opsItems: {}, webhook: { endpoint: PAGERDUTY, secretArn: SECRET } },
    });
    addPolicyChecks(app);
    expect(() => app.synth()).not.toThrow();
  });
});
