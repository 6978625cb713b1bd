/** "Check the policy" and "Settle the approved changes". */

import { gateIncident } from '../../core/workflow/gate.js';
import { workflowSettingsFrom } from '../../core/workflow/settings.js';
import { logger } from '../powertools.js';
import { workflowHandler } from './middleware.js';

const settings = workflowSettingsFrom(process.env);

export const lambdaHandler = async (event: unknown) => {
  const decision = gateIncident(event, settings);
  logger.info('Policy decision', {
    decision: decision.decision,
    toApply: decision.toApply.map((action) => action.id),
  });
  return decision;
};

export const handler = workflowHandler(lambdaHandler);
