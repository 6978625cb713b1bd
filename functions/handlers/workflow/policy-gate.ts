/** "Check the policy" and "Settle the approved changes". */

import { EVENTS_AFTER_STEP } from '../../core/events/lifecycle.js';
import { policyGateSettings } from '../../core/function-settings.js';
import { gateIncident } from '../../core/workflow/gate.js';
import { putLifecycleEvents } from '../lifecycle-events.js';
import { logger } from '../powertools.js';
import { workflowHandler } from './middleware.js';

const settings = policyGateSettings(process.env);

export const lambdaHandler = async (event: unknown) => {
  const decision = gateIncident(event, settings);
  logger.info('Policy decision', {
    decision: decision.decision,
    toApply: decision.toApply.map((action) => action.id),
  });
  await putLifecycleEvents(EVENTS_AFTER_STEP.policyGate(event, decision, new Date()));
  return decision;
};

export const handler = workflowHandler(lambdaHandler);
