import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { logger, metrics, tracer } from '../powertools.js';

/**
 * The same middleware for every workflow function: a trace, the Lambda context on every log line,
 * metrics flushed once per invocation. Handlers receive the Task state's payload and return its
 * result; a thrown error's name is the error Step Functions sees (and the definition catches).
 */
export function workflowHandler<Event, Result>(handler: (event: Event) => Promise<Result>) {
  return middy(handler)
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics));
}
