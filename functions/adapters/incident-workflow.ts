import { ExecutionAlreadyExists, type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { type Incident, workflowExecutionFor } from '../core/incident/incident.js';

export type StartOutcome = 'started' | 'already-started';

/**
 * Starts the incident's workflow execution under the name derived from the incident id. Step
 * Functions refuses a second execution of that name (for 90 days), which is what makes a retried
 * or concurrent delivery start nothing twice: that refusal counts as success here.
 */
export async function startIncidentWorkflow(
  client: SFNClient,
  stateMachineArn: string,
  incident: Incident,
): Promise<StartOutcome> {
  const { name, input } = workflowExecutionFor(incident);
  try {
    await client.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
    return 'started';
  } catch (error) {
    if (error instanceof ExecutionAlreadyExists) return 'already-started';
    throw error;
  }
}
