/**
 * Optional rules on the default event bus that route lifecycle events (README "Lifecycle events")
 * to an OpsCenter OpsItem per incident and to a webhook (PagerDuty Events v2 as the example).
 */

import { ArnFormat, Duration, Names, Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  EVENT_SOURCE,
  LIFECYCLE_DETAIL_TYPES,
  type LifecycleState,
} from '../../functions/core/events/lifecycle.js';

/** An OpsCenter OpsItem per incident, from its `opened` event (README "Lifecycle events"). */
export interface OpsItemTargetProps {
  /**
   * The states that create (or, by the dedup string, find) the incident's OpsItem.
   * @default ['opened', 'escalated']
   */
  readonly states?: readonly LifecycleState[];
  /**
   * OpsItem severity, '1' (critical) to '4' (low).
   * @default '2'
   */
  readonly severity?: '1' | '2' | '3' | '4';
}

/**
 * A webhook behind an EventBridge API destination. The documented example is PagerDuty Events v2
 * (`https://events.pagerduty.com/v2/enqueue`): the routing key never appears in the template, it
 * is read from the secret into the connection (README "Lifecycle events").
 */
export interface WebhookTargetProps {
  /** The HTTPS endpoint the events are POSTed to. */
  readonly endpoint: string;
  /**
   * The complete ARN of a Secrets Manager secret whose JSON field `secretField` holds the
   * webhook's key (PagerDuty: the integration's routing key). The template only refers to it
   * (a dynamic reference); the connection sends it as the `routing_key` body field and as the
   * `secretHeader` header, both kept by EventBridge in the connection's own secret.
   */
  readonly secretArn: string;
  /** @default 'routingKey' */
  readonly secretField?: string;
  /** @default 'X-Routing-Key' */
  readonly secretHeader?: string;
  /**
   * Which states are sent, and the body each becomes (one rule per route).
   * @default pagerDutyRoutes(): an Events v2 trigger when an incident escalates, a resolve when it
   *   closes, deduplicated by incident id
   */
  readonly routes?: readonly WebhookRoute[];
  /**
   * At most this many requests per second to the endpoint.
   * @default 10
   */
  readonly rateLimitPerSecond?: number;
}

export interface WebhookRoute {
  readonly states: readonly LifecycleState[];
  readonly body: events.RuleTargetInput;
}

export interface LifecycleEventTargetsProps {
  readonly opsItems?: OpsItemTargetProps;
  readonly webhook?: WebhookTargetProps;
}

/** The event pattern of our events in some states. */
export function lifecycleEventPattern(states: readonly LifecycleState[]): events.EventPattern {
  return {
    source: [EVENT_SOURCE],
    detailType: states.map((state) => LIFECYCLE_DETAIL_TYPES[state]),
  };
}

/**
 * The OpsItem an event creates, as the input of an `arn:…:ssm:…:opsitem` target: title,
 * description, source, severity, category and operational data, in which `/aws/dedup` (a
 * SearchableString holding `{"dedupString": …}`) keeps one open OpsItem per incident
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/OpsCenter-working-deduplication-strings.html,
 * https://docs.aws.amazon.com/systems-manager/latest/userguide/OpsCenter-automatically-create-OpsItems-2.html).
 */
export function opsItemInput(severity: string): events.RuleTargetInput {
  const field = (path: string) => events.EventField.fromPath(path);
  const incidentId = field('$.detail.incidentId');
  const instance = field('$.detail.host');
  const kind = field('$.detail.kind');
  return events.RuleTargetInput.fromObject({
    title: `conntrack-responder: ${kind} on ${instance}`,
    description: `Incident ${incidentId} (${kind}) on ${instance}: ${field('$.detail-type')}. The incident's own lifecycle events, SNS notification and evidence bundle follow; see README "Lifecycle events".`,
    source: EVENT_SOURCE,
    severity,
    category: 'Availability',
    operationalData: {
      '/aws/dedup': {
        type: 'SearchableString',
        value: `{"dedupString":"conntrack-responder:${incidentId}"}`,
      },
      'conntrack-responder:incident': { type: 'SearchableString', value: incidentId },
      'conntrack-responder:mode': { type: 'String', value: field('$.detail.mode') },
    },
  });
}

/**
 * A PagerDuty Events v2 event (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/)
 * with the incident id as dedup_key, so that the resolve sent at the close resolves the page the
 * escalation triggered. The routing_key is added by the connection.
 */
export function pagerDutyEventsV2Input(action: 'trigger' | 'resolve'): events.RuleTargetInput {
  const field = (path: string) => events.EventField.fromPath(path);
  return events.RuleTargetInput.fromObject({
    event_action: action,
    dedup_key: field('$.detail.incidentId'),
    payload: {
      summary: `conntrack-responder: ${field('$.detail-type')} ${field('$.detail.incidentId')} (${field('$.detail.kind')} on ${field('$.detail.host')})`,
      source: field('$.detail.host'),
      severity: 'critical',
      component: field('$.detail.kind'),
      group: 'conntrack-responder',
      class: field('$.detail.state'),
      custom_details: field('$.detail'),
    },
  });
}

/** The default webhook routes: page on an escalation, resolve the page when the incident closes. */
export function pagerDutyRoutes(): WebhookRoute[] {
  return [
    { states: ['escalated'], body: pagerDutyEventsV2Input('trigger') },
    { states: ['closed'], body: pagerDutyEventsV2Input('resolve') },
  ];
}

/**
 * The optional rules on the default bus that route lifecycle events to OpsCenter and to a webhook,
 * each target with a retry policy and a dead-letter queue for what EventBridge could not deliver.
 */
export class LifecycleEventTargets extends Construct {
  readonly deadLetterQueue: sqs.Queue;
  readonly opsItemRule?: events.Rule;
  readonly webhookRules: events.Rule[] = [];
  readonly apiDestination?: events.ApiDestination;

  constructor(scope: Construct, id: string, props: LifecycleEventTargetsProps) {
    super(scope, id);
    this.deadLetterQueue = new sqs.Queue(this, 'Undelivered', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const dlqReason =
      'This queue is itself the dead-letter store of the lifecycle event targets; each message names its rule and error.';
    Validations.of(this.deadLetterQueue).acknowledge(
      { id: 'AwsSolutions-SQS3', reason: dlqReason },
      { id: 'Serverless-SQSRedrivePolicy', reason: dlqReason },
    );
    const delivery = {
      deadLetterQueue: this.deadLetterQueue,
      retryAttempts: 8,
      maxEventAge: Duration.hours(6),
    };

    if (props.opsItems) {
      const stack = Stack.of(this);
      this.opsItemRule = new events.Rule(this, 'OpsItems', {
        description: 'conntrack-responder: an OpsCenter OpsItem per incident (deduplicated by incident id)',
        eventPattern: lifecycleEventPattern(props.opsItems.states ?? ['opened', 'escalated']),
      });
      // EventBridge needs a role that may call ssm:CreateOpsItem for this target; CreateOpsItem
      // has no resource-level permissions
      // (https://docs.aws.amazon.com/systems-manager/latest/userguide/OpsCenter-getting-started-user.html).
      const role = new iam.Role(this, 'OpsItemRole', {
        assumedBy: new iam.ServicePrincipal('events.amazonaws.com', {
          conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
        }),
        description: 'conntrack-responder: lets the lifecycle OpsItem rule create OpsItems',
      });
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: 'CreateOpsItems', actions: ['ssm:CreateOpsItem'], resources: ['*'] }),
      );
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'ssm:CreateOpsItem supports no resource-level permissions; the role only creates OpsItems.',
      });
      this.opsItemRule.addTarget({
        bind: () => ({
          arn: stack.formatArn({
            service: 'ssm',
            resource: 'opsitem',
            arnFormat: ArnFormat.NO_RESOURCE_NAME,
          }),
          role,
          input: opsItemInput(props.opsItems?.severity ?? '2'),
          deadLetterConfig: { arn: this.deadLetterQueue.queueArn },
          retryPolicy: { maximumRetryAttempts: delivery.retryAttempts, maximumEventAgeInSeconds: 6 * 3600 },
        }),
      });
      allowRuleToQueue(this.deadLetterQueue, this.opsItemRule);
    }

    if (props.webhook) {
      const webhook = props.webhook;
      const secret = secretsmanager.Secret.fromSecretCompleteArn(this, 'WebhookSecret', webhook.secretArn);
      const key = secret.secretValueFromJson(webhook.secretField ?? 'routingKey');
      const connection = new events.Connection(this, 'WebhookConnection', {
        description: 'conntrack-responder: the lifecycle webhook (its key from Secrets Manager)',
        authorization: events.Authorization.apiKey(webhook.secretHeader ?? 'X-Routing-Key', key),
        bodyParameters: { routing_key: events.HttpParameter.fromSecret(key) },
      });
      this.apiDestination = new events.ApiDestination(this, 'Webhook', {
        connection,
        endpoint: webhook.endpoint,
        httpMethod: events.HttpMethod.POST,
        rateLimitPerSecond: webhook.rateLimitPerSecond ?? 10,
        description: 'conntrack-responder: lifecycle events to a webhook (PagerDuty Events v2 by default)',
      });
      const destination = this.apiDestination;
      (webhook.routes ?? pagerDutyRoutes()).forEach((route, index) => {
        const rule = new events.Rule(this, `WebhookRule${index + 1}`, {
          description: `conntrack-responder: ${route.states.join(', ')} events to the webhook`,
          eventPattern: lifecycleEventPattern(route.states),
        });
        rule.addTarget(new targets.ApiDestination(destination, { event: route.body, ...delivery }));
        this.webhookRules.push(rule);
      });
    }
  }
}

/** The queue policy that lets this rule's deliveries land in the dead-letter queue. */
function allowRuleToQueue(queue: sqs.Queue, rule: events.Rule): void {
  queue.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: `DeadLetters${Names.uniqueId(rule).slice(-16)}`,
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['sqs:SendMessage'],
      resources: [queue.queueArn],
      conditions: { ArnEquals: { 'aws:SourceArn': rule.ruleArn } },
    }),
  );
}
