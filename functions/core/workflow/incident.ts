import { z } from 'zod';
import { ResponderError, TASK_ERROR } from '../errors.js';
import { RESPONSE_MODES, type ResponseMode } from '../incident/settings.js';
import { ALERT_KINDS, type Alert } from '../plan/types.js';
import { formatIssues } from '../zod-issues.js';

/** Incident ids are Step Functions execution names: 1 to 80 of these characters. */
export const INCIDENT_ID_PATTERN = /^[A-Za-z0-9_-]{1,80}$/;

const LogEventSchema = z.looseObject({
  id: z.string().optional(),
  timestamp: z.number(),
  message: z.string(),
});

/**
 * The execution input the detect function starts the workflow with (one incident, fields fixed at
 * opening). Parsed leniently — fields this side does not use are kept as they are — but every
 * field the workflow relies on is checked, so a malformed start fails with a clear message.
 */
export const WorkflowIncidentSchema = z.looseObject({
  incidentId: z.string().regex(INCIDENT_ID_PATTERN, 'an execution-name-safe id of 1 to 80 characters'),
  host: z.string().optional(),
  /** Null when the host is not an EC2 instance (the workflow escalates it). */
  instanceId: z.string().nullable(),
  /** What opened the incident (ALERT_KINDS). */
  kind: z.enum(ALERT_KINDS),
  /** The most the workflow may do on its own for this incident (a ceiling over the policy's modes). */
  mode: z.enum(RESPONSE_MODES).default('auto'),
  openedAt: z.string().optional(),
  trigger: z.looseObject({
    netns: z.string().nullable(),
    dropLines: z.number().int().nonnegative(),
    suppressed: z.number().int().nonnegative(),
    firstSeen: z.string().nullable().optional(),
    lastSeen: z.string().nullable().optional(),
    events: z.array(LogEventSchema).default([]),
    /** For near-full: the forecast from the host sampler's lines (untrusted; see docs/forecast.md). */
    forecast: z
      .looseObject({
        horizonSeconds: z.number().optional(),
        predictedFullAt: z.string().nullable().optional(),
        secondsToFull: z.number().nullable().optional(),
        usage: z.number().optional(),
        growthPerSecond: z.number().nullable().optional(),
      })
      .optional(),
  }),
});

export type WorkflowIncident = z.infer<typeof WorkflowIncidentSchema>;

/** Parses untrusted input with a message that names the offending fields. */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new WorkflowInputError(`${what} is invalid: ${formatIssues(parsed.error)}`);
  }
  return parsed.data;
}

/** A Task state received input it cannot work with (its name is the error Step Functions sees). */
export class WorkflowInputError extends ResponderError {
  override readonly name = TASK_ERROR.workflowInput;
}

export function alertOf(incident: WorkflowIncident): Alert {
  return {
    kind: incident.kind,
    netns: incident.trigger.netns,
    dropLines: incident.trigger.dropLines,
    suppressed: incident.trigger.suppressed,
    ...(incident.trigger.forecast === undefined ? {} : { forecast: incident.trigger.forecast }),
  };
}

const STRICTNESS: Record<ResponseMode, number> = { auto: 0, approve: 1, 'dry-run': 2 };

/** The stricter of two modes: the incident's mode caps what the policy allows, never loosens it. */
export function stricterMode(a: ResponseMode, b: ResponseMode): ResponseMode {
  return STRICTNESS[a] >= STRICTNESS[b] ? a : b;
}
