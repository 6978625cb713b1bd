/**
 * "Announce the change": right after "Apply the remediation", puts the applied lifecycle event
 * (the one state change no other function sees as it happens). Never fails the step: an event not
 * taken is logged and counted (functions/handlers/lifecycle-events.ts).
 */

import { EVENTS_AFTER_STEP } from '../../core/events/lifecycle.js';
import { putLifecycleEvents } from '../lifecycle-events.js';
import { workflowHandler } from './middleware.js';

export const lambdaHandler = async (event: unknown) =>
  putLifecycleEvents(EVENTS_AFTER_STEP.announce(event, null, new Date()));

export const handler = workflowHandler(lambdaHandler);
