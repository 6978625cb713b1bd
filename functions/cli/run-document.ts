import { parseArgs } from 'node:util';
import { listParameters, ParameterValidationError } from '../core/runbook/document.js';
import { listRunbooks, loadRunbook } from '../local/runbooks.js';
import { runDocument } from '../local/ssm-executor.js';
import { type Command, UsageError } from './io.js';

const HELP = `usage: conntrack-responder run-document NAME --netns NS [--param Name=Value]... [options]
       conntrack-responder run-document --list

Runs an SSM document of runbooks/ssm in a network namespace, as the SSM Agent would: parameters
are validated against allowedPattern/allowedValues and reach the script as SSM_<Name>.

options:
  --netns NS              the namespace that plays the instance (required to run)
  --param Name=Value      a document parameter (repeatable)
  --env NAME=VALUE        extra environment, e.g. CONNTRACK_RESPONDER_STATE_DIR (repeatable)
  --timeout-seconds N     override the step's timeoutSeconds
  --runbooks DIR          a folder laid out like runbooks/ (default: the repository's)
  --json                  print the whole result as one JSON object
  --list                  list the documents and their parameters

exit code: 0 Success, 1 Failed, 124 TimedOut, 2 invalid parameters or usage
`;

function pairs(values: string[] | undefined, flag: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const value of values ?? []) {
    const equals = value.indexOf('=');
    if (equals <= 0) throw new UsageError(`${flag} expects Name=Value, got ${JSON.stringify(value)}`);
    result[value.slice(0, equals)] = value.slice(equals + 1);
  }
  return result;
}

function parseOptions(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: {
        netns: { type: 'string' },
        param: { type: 'string', multiple: true },
        env: { type: 'string', multiple: true },
        'timeout-seconds': { type: 'string' },
        runbooks: { type: 'string' },
        json: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export const runDocumentCommand: Command = async (args, io) => {
  const { values, positionals } = parseOptions(args);
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const location = values.runbooks === undefined ? {} : { directory: values.runbooks };
  if (values.list) {
    for (const name of await listRunbooks(location)) {
      const { document } = await loadRunbook(name, location);
      io.stdout.write(`${name}: ${document.description ?? ''}\n`);
      for (const parameter of listParameters(document)) {
        const constraint = parameter.allowedValues?.join('|') ?? parameter.allowedPattern ?? '';
        const optional = parameter.required ? '' : ` (default ${JSON.stringify(parameter.default)})`;
        io.stdout.write(`  ${parameter.name} ${constraint}${optional}\n`);
      }
    }
    return 0;
  }
  const [name, ...extra] = positionals;
  if (name === undefined || extra.length > 0) throw new UsageError('expected exactly one document NAME');
  if (values.netns === undefined) throw new UsageError('--netns NS is required');
  const timeoutText = values['timeout-seconds'];
  if (timeoutText !== undefined && !/^[1-9][0-9]{0,5}$/.test(timeoutText)) {
    throw new UsageError(
      `--timeout-seconds expects a whole number of seconds, got ${JSON.stringify(timeoutText)}`,
    );
  }
  let result: Awaited<ReturnType<typeof runDocument>>;
  try {
    result = await runDocument({
      name,
      netns: values.netns,
      parameters: pairs(values.param, '--param'),
      env: pairs(values.env, '--env'),
      runbooks: location,
      ...(timeoutText === undefined ? {} : { timeoutMs: Number(timeoutText) * 1000 }),
    });
  } catch (error) {
    if (error instanceof ParameterValidationError) {
      io.stderr.write(`run-document ${name}: ${error.problems.join('\n')}\n`);
      return 2;
    }
    throw error;
  }
  if (values.json) {
    const { fullStdout: _stdout, fullStderr: _stderr, ...summary } = result;
    io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    io.stdout.write(result.stdout);
    io.stderr.write(result.stderr);
    const truncated =
      result.stdoutTruncated || result.stderrTruncated ? ' (output truncated as SSM would)' : '';
    io.stderr.write(`run-document ${name}: ${result.status}, exit code ${result.exitCode}${truncated}\n`);
  }
  return result.status === 'Success' ? 0 : result.status === 'TimedOut' ? 124 : 1;
};
