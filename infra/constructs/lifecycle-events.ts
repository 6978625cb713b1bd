/**
 * Lifecycle events on the default event bus (README "Lifecycle events"): who may put them. The
 * optional rules that route them are in lifecycle-event-targets.ts.
 */

import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { EVENT_SOURCE } from '../../functions/core/events/lifecycle.js';

/** The account's default event bus in this stack's region. */
export function defaultEventBusArn(scope: Construct): string {
  return Stack.of(scope).formatArn({
    service: 'events',
    resource: 'event-bus',
    resourceName: 'default',
    arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
  });
}

/**
 * events:PutEvents on the default bus only, and only events whose `source` is ours: PutEvents
 * supports the `events:source` condition key, so a function cannot put events that pass for another
 * service's (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html).
 */
export function allowPuttingLifecycleEvents(role: iam.IRole): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'PutLifecycleEvents',
      actions: ['events:PutEvents'],
      resources: [defaultEventBusArn(role)],
      conditions: { StringEquals: { 'events:source': EVENT_SOURCE } },
    }),
  );
}
