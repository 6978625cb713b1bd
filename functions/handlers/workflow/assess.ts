/** "Confirm the drops and plan the remediation". */

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { EVENTS_AFTER_STEP } from '../../core/events/lifecycle.js';
import { assessSettings } from '../../core/function-settings.js';
import { assessIncident } from '../../core/workflow/assess.js';
import { putLifecycleEvents } from '../lifecycle-events.js';
import { logger, metrics } from '../powertools.js';
import { workflowHandler } from './middleware.js';

const settings = assessSettings(process.env);

export const lambdaHandler = async (event: unknown) => {
  const assessment = assessIncident(event, settings);
  logger.info('Assessed the incident', {
    classification: assessment.classification,
    confirmed: assessment.confirmed,
    actions: assessment.plan.actions.map((action) => action.id),
  });
  metrics.addDimension('classification', assessment.classification);
  metrics.addMetric('IncidentsAssessed', MetricUnit.Count, 1);
  await putLifecycleEvents(EVENTS_AFTER_STEP.assess(event, assessment, new Date()));
  return assessment;
};

export const handler = workflowHandler(lambdaHandler);
