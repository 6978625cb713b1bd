import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { EVENTS_AFTER_STEP } from '../../core/events/lifecycle.js';
import { verifyFix } from '../../core/workflow/verify.js';
import { putLifecycleEvents } from '../lifecycle-events.js';
import { logger, metrics } from '../powertools.js';
import { workflowHandler } from './middleware.js';

/** "Verify the fix". */
export const lambdaHandler = async (event: unknown) => {
  const verification = verifyFix(event);
  logger.info('Verified the fix', { held: verification.held, reasons: verification.reasons });
  metrics.addMetric(verification.held ? 'FixesHeld' : 'FixesFailed', MetricUnit.Count, 1);
  await putLifecycleEvents(EVENTS_AFTER_STEP.verify(event, verification, new Date()));
  return verification;
};

export const handler = workflowHandler(lambdaHandler);
