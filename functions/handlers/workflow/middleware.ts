import { withPowertools } from '../middleware.js';

/**
 * The middleware of every workflow function (the functions' one chain, `withPowertools`). Handlers
 * receive the Task state's payload and return its result; a thrown error's name is the error Step
 * Functions sees (and the definition catches).
 */
export function workflowHandler<Event, Result>(handler: (event: Event) => Promise<Result>) {
  return withPowertools(handler);
}
