import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { type DiagnosticsReport, readDiagnosticsReport } from '../core/diagnostics/report.js';
import { summarizeReport } from '../core/diagnostics/summary.js';
import { ParameterValidationError } from '../core/runbook/document.js';
import { runDocument } from '../local/ssm-executor.js';
import { type CliIo, type Command, UsageError } from './io.js';

const HELP = `usage: conntrack-responder diagnose --netns NS [--sample-seconds N] [--top N] [--json]
       conntrack-responder diagnose --file REPORT.json|- [--json]

Runs collect-diagnostics in a network namespace through the local SSM executor (or reads a report
saved from SSM), checks it against the report schema, and prints a summary: how full the table is,
the drop counters between the two samples, the busiest states, ports and peers, the firewall
backend, NAT ports, UNTRACKED acceptance, sysctl owners and ENA allowance counters.

options:
  --netns NS             the namespace that plays the instance
  --file PATH            a saved report (the document's stdout); - reads stdin
  --sample-seconds N     pause between the two counter samples, 1-59 (default 3)
  --top N                length of every top-N list, 1-50 (default 10)
  --json                 print the report itself instead of the summary

exit code: 0 report read, 1 the document failed or the report is invalid, 2 usage
`;

function parseOptions(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        netns: { type: 'string' },
        file: { type: 'string' },
        'sample-seconds': { type: 'string' },
        top: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** The report in `text`, or a message naming what is wrong with it. */
export function parseReport(text: string, source: string): DiagnosticsReport | string {
  const reading = readDiagnosticsReport(text, { root: '(report)' });
  if (reading.ok) return reading.report;
  if (reading.reason === 'not-json') return `${source}: not JSON: ${reading.detail}`;
  return `${source}: not a diagnostics report (schema version 1): ${reading.detail}`;
}

async function collect(
  io: CliIo,
  netns: string,
  parameters: Record<string, string>,
): Promise<string | number> {
  try {
    const result = await runDocument({ name: 'collect-diagnostics', netns, parameters });
    if (result.status !== 'Success') {
      io.stderr.write(result.stderr);
      io.stderr.write(`diagnose: collect-diagnostics ${result.status} (exit code ${result.exitCode})\n`);
      return 1;
    }
    return result.stdout;
  } catch (error) {
    if (error instanceof ParameterValidationError) throw new UsageError(error.problems.join('; '));
    throw error;
  }
}

export const diagnoseCommand: Command = async (args, io) => {
  const { values } = parseOptions(args);
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if ((values.netns === undefined) === (values.file === undefined)) {
    throw new UsageError('give either --netns NS or --file PATH');
  }
  if (values.file !== undefined && (values['sample-seconds'] !== undefined || values.top !== undefined)) {
    throw new UsageError('--sample-seconds and --top apply to --netns only');
  }
  let text: string;
  let source: string;
  if (values.netns !== undefined) {
    const parameters: Record<string, string> = {};
    if (values['sample-seconds'] !== undefined) parameters.SampleSeconds = values['sample-seconds'];
    if (values.top !== undefined) parameters.TopN = values.top;
    const output = await collect(io, values.netns, parameters);
    if (typeof output === 'number') return output;
    text = output;
    source = `collect-diagnostics in ${values.netns}`;
  } else {
    const file = values.file ?? '-';
    source = file === '-' ? 'stdin' : file;
    try {
      text = file === '-' ? await readStream(io.stdin) : await readFile(file, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read ${source}: ${(error as Error).message}`);
    }
  }
  const report = parseReport(text, source);
  if (typeof report === 'string') {
    io.stderr.write(`diagnose: ${report}\n`);
    return 1;
  }
  io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : summarizeReport(report));
  return 0;
};
