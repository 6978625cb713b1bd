import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { sdkRetryConfig } from '../adapters/aws-retry.js';
import { type BreakerReport, breakerControl, checkActionText } from '../adapters/breaker-control.js';
import { DEFAULT_GUARDRAILS, GUARDRAIL_RANGES } from '../core/guardrails/settings.js';
import { checkWholeNumberInRange } from '../core/incident/settings.js';
import { type CliIo, type Command, UsageError } from './io.js';

const HELP = `usage: conntrack-responder breaker status [--table NAME] [--region R] [--json]
       conntrack-responder breaker reset  --by NAME --reason TEXT [--table NAME] [--region R] [--json]
       conntrack-responder breaker open   --by NAME --reason TEXT [--table NAME] [--region R] [--json]

The fleet circuit breaker: when more than breakerMaxInstances instances open incidents within
breakerWindowMinutes, automatic changes stop everywhere, new incidents are held, and one
escalation with the fleet view is sent. Only a person closes it again.

  status   the breaker, its fleet view (instances, accounts, top ports) and the remediation slots
  reset    close an open breaker (recorded with --by and --reason); the window starts afresh
  open     stop every automatic change by hand until a reset

options:
  --table NAME            the incidents table (stack output IncidentTableName);
                          default: the INCIDENT_TABLE_NAME environment variable
  --region R              AWS region (default: the SDK's: AWS_REGION, profile)
  --endpoint URL          a DynamoDB-compatible endpoint (for tests and local tables)
  --by NAME               who does it (recorded)
  --reason TEXT           why it is safe (reset) or needed (open) (recorded)
  --window-minutes N      the breaker window for the status of a closed breaker (default 15;
                          an open breaker remembers the window it tripped in)
  --json                  print the result as JSON

exit code: 0 done, 1 nothing to do (reset of a closed breaker, open of an open one), 2 usage
`;

function parseOptions(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: {
        table: { type: 'string' },
        region: { type: 'string' },
        endpoint: { type: 'string' },
        by: { type: 'string' },
        reason: { type: 'string' },
        'window-minutes': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function formatReport(report: BreakerReport): string {
  const { breaker, slots } = report;
  const lines = [
    `Fleet breaker: ${breaker.status.toUpperCase()}${breaker.episode > 0 ? ` (episode ${breaker.episode})` : ''}`,
  ];
  if (breaker.status === 'open') {
    lines.push(
      `  tripped at ${breaker.trippedAt} by ${breaker.trippedBy ?? 'unknown'}: ${breaker.reason ?? ''}`,
    );
    lines.push(
      `  held incidents: ${breaker.heldCount}; escalation: ${breaker.escalation.status}${breaker.escalation.sentAt ? ` at ${breaker.escalation.sentAt}` : ''}`,
    );
  } else if (breaker.resetAt) {
    lines.push(`  last reset at ${breaker.resetAt} by ${breaker.resetBy}: ${breaker.resetReason ?? ''}`);
  }
  lines.push(
    `Remediation slots: ${slots.live.length} of ${slots.max} in use${slots.live.length > 0 ? ` (${slots.live.join(', ')})` : ''}`,
  );
  lines.push('', report.text);
  return `${lines.join('\n')}\n`;
}

export const breakerCommand: Command = async (args: string[], io: CliIo) => {
  const { values, positionals } = parseOptions(args);
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const [action, ...extra] = positionals;
  if (action === undefined) throw new UsageError(`say what to do: status, reset or open\n\n${HELP}`);
  if (!['status', 'reset', 'open'].includes(action))
    throw new UsageError(`unknown action '${action}'\n\n${HELP}`);
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const table = values.table ?? process.env.INCIDENT_TABLE_NAME ?? '';
  if (table === '') throw new UsageError('--table is required (or set INCIDENT_TABLE_NAME)');
  let windowMinutes = DEFAULT_GUARDRAILS.breaker.windowMinutes;
  if (values['window-minutes'] !== undefined) {
    try {
      windowMinutes = checkWholeNumberInRange(
        '--window-minutes',
        Number(values['window-minutes']),
        GUARDRAIL_RANGES.breakerWindowMinutes,
      );
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const by = values.by ?? '';
  const reason = values.reason ?? '';
  if (action !== 'status') {
    try {
      checkActionText('by', by);
      checkActionText('reason', reason);
    } catch (error) {
      throw new UsageError(`${action} needs --by and --reason: ${(error as Error).message}`);
    }
  }

  const client = new DynamoDBClient({
    ...sdkRetryConfig(process.env),
    ...(values.region ? { region: values.region } : {}),
    ...(values.endpoint ? { endpoint: values.endpoint } : {}),
  });
  try {
    const control = breakerControl(DynamoDBDocumentClient.from(client), table, {
      settings: { ...DEFAULT_GUARDRAILS, breaker: { ...DEFAULT_GUARDRAILS.breaker, windowMinutes } },
      region: values.region ?? process.env.AWS_REGION,
    });
    let changed = true;
    let report: BreakerReport;
    if (action === 'status') {
      report = await control.status();
    } else {
      const result =
        action === 'reset' ? await control.reset({ by, reason }) : await control.open({ by, reason });
      changed = result.changed;
      report = result.report;
    }
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ action, changed, ...report }, null, 2)}\n`);
    } else {
      if (!changed) {
        io.stdout.write(
          action === 'reset'
            ? 'The breaker was not open: nothing to reset.\n\n'
            : 'The breaker was already open.\n\n',
        );
      } else if (action === 'reset') {
        io.stdout.write(`Reset by ${by}: automatic changes may run again.\n\n`);
      } else if (action === 'open') {
        io.stdout.write(`Opened by ${by}: every automatic change waits for approval until a reset.\n\n`);
      }
      io.stdout.write(formatReport(report));
    }
    return changed ? 0 : 1;
  } catch (error) {
    const name = (error as Error).name;
    io.stderr.write(`conntrack-responder breaker: ${table}: ${name}: ${(error as Error).message}\n`);
    return 1;
  } finally {
    client.destroy();
  }
};
