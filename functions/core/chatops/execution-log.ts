import { z } from 'zod';

/**
 * A Step Functions execution log record, as the state machine writes it to CloudWatch Logs (level
 * ALL, execution data included): `{ id, type, details: { name, input, output, error, cause, … },
 * previous_event_id, event_timestamp, execution_arn }`, where `input` and `output` are JSON text
 * (cut by Step Functions past 248 KB, which `inputDetails.truncated` says).
 */
const RecordSchema = z.looseObject({
  id: z.union([z.string(), z.number()]),
  type: z.string(),
  details: z
    .looseObject({
      name: z.string().optional(),
      input: z.string().optional(),
      output: z.string().optional(),
      error: z.string().optional(),
      cause: z.string().optional(),
    })
    .optional(),
  execution_arn: z.string(),
});

export interface ExecutionLogRecord {
  readonly id: number;
  readonly type: string;
  readonly kind: 'exited' | 'failed' | 'other';
  readonly state: string | undefined;
  /** Parsed input/output; null when absent, cut short, or not JSON. */
  readonly input: unknown;
  readonly output: unknown;
  readonly error: string | undefined;
  readonly cause: string | undefined;
  readonly executionArn: string;
}

function json(text: string | undefined): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The record in a log message, or null when the message is not one (then it is ignored). */
export function parseExecutionLogRecord(message: string): ExecutionLogRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return null;
  }
  const parsed = RecordSchema.safeParse(value);
  if (!parsed.success) return null;
  const record = parsed.data;
  const type = record.type;
  return {
    id: Number(record.id),
    type,
    kind: type.endsWith('StateExited') ? 'exited' : type.endsWith('Failed') ? 'failed' : 'other',
    state: record.details?.name,
    input: json(record.details?.input),
    output: json(record.details?.output),
    error: record.details?.error,
    cause: record.details?.cause,
    executionArn: record.execution_arn,
  };
}

/** The state types whose exit may be a step worth a thread line (see THREAD_STEPS). */
export const STEP_EXIT_TYPES = ['TaskStateExited', 'ParallelStateExited', 'MapStateExited'] as const;
