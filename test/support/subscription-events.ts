import { gzipSync } from 'node:zlib';
import type { Context } from 'aws-lambda';

/**
 * CloudWatch Logs subscription deliveries of real kernel lines, as the `detect` function receives
 * them, for handler tests and the storm bench.
 */

export interface SubscriptionLogEvent {
  readonly id: string;
  readonly timestamp: number;
  readonly message: string;
}

let nextEventId = 0;

/** `count` kernel drop lines (the first a rate-limit line) as the CloudWatch agent ships /var/log/messages. */
export function kernelDropEvents(
  count: number,
  hostName = 'ip-10-0-0-1',
  at = Date.parse('2026-03-13T20:21:45Z'),
) {
  const stamp = new Date(at).toUTCString().slice(8, 11);
  const day = String(new Date(at).getUTCDate()).padStart(2, ' ');
  const time = new Date(at).toISOString().slice(11, 19);
  const prefix = `${stamp} ${day} ${time} ${hostName} kernel:`;
  const events: SubscriptionLogEvent[] = [];
  for (let i = 0; i < count; i++) {
    events.push({
      // CloudWatch event ids are 56-digit strings, unique per event.
      id: String(++nextEventId).padStart(56, '3'),
      timestamp: at,
      message:
        i === 0 && count > 1
          ? `${prefix} net_ratelimit: 30 callbacks suppressed`
          : `${prefix} nf_conntrack: nf_conntrack: table full, dropping packet`,
    });
  }
  return events;
}

export function subscriptionEvent(
  logEvents: readonly SubscriptionLogEvent[],
  logStream: string,
  options: { owner?: string; logGroup?: string; messageType?: string } = {},
) {
  const data = {
    messageType: options.messageType ?? 'DATA_MESSAGE',
    owner: options.owner ?? '123456789012',
    logGroup: options.logGroup ?? '/conntrack-responder/kernel',
    logStream,
    subscriptionFilters: ['conntrack-responder'],
    logEvents,
  };
  return { awslogs: { data: gzipSync(JSON.stringify(data)).toString('base64') } };
}

export const lambdaContext = {
  functionName: 'detect',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:detect',
  memoryLimitInMB: '256',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  logGroupName: '/aws/lambda/detect',
  logStreamName: '2026/03/13/[$LATEST]abc',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 30_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
} satisfies Context;

/** An EC2 instance id for instance number `n`. */
export const instanceId = (n: number) => `i-${n.toString(16).padStart(17, '0')}`;
