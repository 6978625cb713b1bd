import { type CliIo, type Command, processIo } from './io.js';
import { runCommand } from './run-command.js';

interface CommandEntry {
  readonly summary: string;
  /** Loaded on demand so that `detect` does not pay for the CDK or the state machine interpreter. */
  readonly load: () => Promise<Command>;
}

const commands: Record<string, CommandEntry> = {
  detect: {
    summary:
      'find conntrack drop messages in kernel logs (syslog, dmesg, journald JSON, CloudWatch payloads)',
    load: async () => (await import('./detect.js')).detectCommand,
  },
  respond: {
    summary: 'handle one conntrack incident on a live network namespace with the deployed workflow, locally',
    load: async () => (await import('./respond.js')).respondCommand,
  },
  watch: {
    summary: "follow the kernel log and run 'respond' when a namespace's conntrack table drops packets",
    load: async () => (await import('./watch.js')).watchCommand,
  },
  'run-document': {
    summary: 'run an SSM document of runbooks/ssm in a network namespace, as the SSM Agent would',
    load: async () => (await import('./run-document.js')).runDocumentCommand,
  },
  diagnose: {
    summary: 'collect diagnostics in a network namespace (or read a saved report) and summarize them',
    load: async () => (await import('./diagnose.js')).diagnoseCommand,
  },
  bundle: {
    summary: 'verify an evidence bundle (folder or .tar.gz) against the sha256 in its manifest',
    load: async () => (await import('./bundle.js')).bundleCommand,
  },
  approve: {
    summary: 'approve the change an incident on AWS waits for, with your IAM identity (no Slack needed)',
    load: async () => (await import('./approve.js')).approveCommand,
  },
  reject: {
    summary: 'reject the change an incident on AWS waits for, with your IAM identity',
    load: async () => (await import('./approve.js')).rejectCommand,
  },
  breaker: {
    summary:
      'show, reset or open the fleet circuit breaker (and the remediation slots) in the incidents table',
    load: async () => (await import('./breaker.js')).breakerCommand,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(([name, entry]) => `  ${name.padEnd(width)}  ${entry.summary}`);
  return `usage: conntrack-responder <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'conntrack-responder <command> --help' for a command's options.\n`;
}

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const entry = commands[name];
  if (entry === undefined) {
    io.stderr.write(`conntrack-responder: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return runCommand(name, await entry.load(), rest, io);
}
