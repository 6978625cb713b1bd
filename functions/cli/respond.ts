import { createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type ManifestSigner, privateKeySigner } from '../core/evidence/signature.js';
import { RESPONSE_MODES, type ResponseMode } from '../core/incident/settings.js';
import { localEvidenceWriter } from '../local/twin/evidence.js';
import type { LocalApproval } from '../local/twin/local-functions.js';
import { type RespondOptions, type RespondResult, respond, SETTLED_OUTCOMES } from '../local/twin/respond.js';
import { type CliIo, type Command, UsageError } from './io.js';

const HELP = `usage: conntrack-responder respond --netns NAME [options]

Handles one conntrack incident on a live network namespace that plays the EC2 instance: runs the
deployed state machine definition (synthesized from the CDK app) with a local interpreter, SSM
documents through the local executor in that namespace, and the same decision code as Lambda.
Notifications, approval requests and the evidence bundle are written under the output folder;
the incident's Slack thread too, as Block Kit JSON (slack/), unless SLACK_BOT_TOKEN and
SLACK_SIGNING_SECRET are set: then it goes to that workspace and the approval is decided there
(see docs/chatops.md).

options:
  --netns NAME        the namespace that plays the instance (required)
  --mode MODE         auto | approve | dry-run for every action (default: the policy's per-kind
                      modes: limit raises within budget auto, NOTRACK and timeouts need approval)
  --out DIR           the incident's output folder (default: ./out/<incident id>)
  --approve           approve without asking (scripts)
  --reject            reject without asking (scripts)
  --soak SECONDS      the soak period before verification (default 5)
  --policy JSON       policy overrides (default: the RESPONDER_POLICY environment variable)
  --signing-key FILE  sign the evidence bundle's manifest with this private key (PEM, P-256 or
                      RSA >= 2048 bits), as the stack does with KMS (evidenceSigning); check it
                      with bundle verify --public-key
  --ena-exceeded RATE EC2's connection-tracking allowance exhausted (an ec2-allowance incident): the
                      namespace's first interface reports conntrack_allowance_exceeded rising RATE
                      packets/s (collect-diagnostics reads it through CONNTRACK_RESPONDER_ENA_STATS),
                      and a local EC2 endpoint on loopback plays the instance's ENIs; the ENI
                      timeouts are changed and restored through it, as on AWS
  --ena-relief        with --ena-exceeded: the counter stops rising once the ENI's timeouts are
                      shortened (without it the verification fails and the ENI is rolled back)
  --quiet             print only the summary

exit code: 0 remediated, dry-run, not confirmed, no host change or rejected; 3 rolled back,
escalated or failed (a person should look); 1 the run itself failed; 2 usage
`;

const RESPOND_OPTIONS = {
  netns: { type: 'string' },
  mode: { type: 'string' },
  out: { type: 'string' },
  approve: { type: 'boolean', default: false },
  reject: { type: 'boolean', default: false },
  soak: { type: 'string' },
  policy: { type: 'string' },
  'signing-key': { type: 'string' },
  'ena-exceeded': { type: 'string' },
  'ena-relief': { type: 'boolean', default: false },
  quiet: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export interface ParsedRespondFlags {
  readonly netns: string;
  readonly mode: ResponseMode | undefined;
  readonly out: string | undefined;
  readonly approval: LocalApproval;
  readonly soakSeconds: number;
  readonly policy: unknown;
  readonly quiet: boolean;
  /** Signs the evidence bundle (--signing-key), as KMS does on AWS. */
  readonly signer: ManifestSigner | undefined;
  /** EC2's allowance exhausted (--ena-exceeded, --ena-relief). */
  readonly ena: { readonly exceededPerSecond: number; readonly relief: boolean } | undefined;
}

/** A private key file is small: anything over this is not one. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

function signerFromKeyFile(file: string): ManifestSigner {
  try {
    if (statSync(file).size > MAX_KEY_FILE_BYTES) throw new Error('larger than a private key can be');
    return privateKeySigner(createPrivateKey(readFileSync(file)));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new UsageError(`--signing-key ${file}: not a usable private key (${reason})`);
  }
}

export function respondFlags(values: Record<string, string | boolean | undefined>): ParsedRespondFlags {
  const netns = values.netns;
  if (typeof netns !== 'string' || netns === '') throw new UsageError('--netns NAME is required');
  const mode = values.mode;
  if (mode !== undefined && !(RESPONSE_MODES as readonly unknown[]).includes(mode)) {
    throw new UsageError(`--mode must be one of ${RESPONSE_MODES.join(', ')}, got '${String(mode)}'`);
  }
  if (values.approve && values.reject) throw new UsageError('--approve and --reject exclude each other');
  const soakText = typeof values.soak === 'string' ? values.soak : '5';
  const soakSeconds = Number(soakText);
  if (!/^[0-9]+$/.test(soakText) || soakSeconds > 3600) {
    throw new UsageError(`--soak must be a whole number of seconds from 0 to 3600, got '${soakText}'`);
  }
  let policy: unknown;
  if (typeof values.policy === 'string') {
    try {
      policy = JSON.parse(values.policy);
    } catch (error) {
      throw new UsageError(`--policy is not valid JSON: ${(error as Error).message}`);
    }
  }
  const enaText = values['ena-exceeded'];
  if (values['ena-relief'] === true && typeof enaText !== 'string') {
    throw new UsageError('--ena-relief needs --ena-exceeded RATE');
  }
  let ena: ParsedRespondFlags['ena'];
  if (typeof enaText === 'string') {
    const rate = Number(enaText);
    if (!/^[1-9][0-9]{0,6}$/.test(enaText)) {
      throw new UsageError(
        `--ena-exceeded must be a whole number of packets per second from 1 to 9999999, got '${enaText}'`,
      );
    }
    ena = { exceededPerSecond: rate, relief: values['ena-relief'] === true };
  }
  return {
    netns,
    mode: mode as ResponseMode | undefined,
    out: typeof values.out === 'string' ? values.out : undefined,
    approval: values.approve ? 'approve' : values.reject ? 'reject' : 'prompt',
    soakSeconds,
    policy,
    quiet: values.quiet === true,
    signer: typeof values['signing-key'] === 'string' ? signerFromKeyFile(values['signing-key']) : undefined,
    ena,
  };
}

export function respondOptionsFrom(flags: ParsedRespondFlags, io: CliIo): RespondOptions {
  return {
    netns: flags.netns,
    ...(flags.mode ? { mode: flags.mode } : {}),
    ...(flags.out ? { outDir: flags.out } : {}),
    approval: flags.approval,
    soakSeconds: flags.soakSeconds,
    ...(flags.policy === undefined ? {} : { policy: flags.policy }),
    ...(flags.ena ? { ena: flags.ena } : {}),
    stdin: io.stdin,
    stdout: io.stdout,
    progress: !flags.quiet,
  };
}

/** The closing summary, and the exit code it implies. */
export function reportResult(result: RespondResult, io: CliIo): number {
  const status = result.outcome?.status ?? 'unknown';
  io.stdout.write(`\nincident ${result.incidentId}: ${status}\n`);
  if (result.outcome) io.stdout.write(`  ${result.outcome.summary}\n`);
  if (result.error) io.stdout.write(`  the run failed: ${result.error.message}\n`);
  if (result.bundle) {
    io.stdout.write(`  evidence bundle: ${result.bundle.directory} (and ${result.bundle.archive})\n`);
    io.stdout.write(`  manifest sha256: ${result.bundle.manifestSha256}\n`);
  }
  if (result.ec2) {
    for (const eni of result.ec2.final) {
      const before = result.ec2.initial.find((each) => each.networkInterfaceId === eni.networkInterfaceId);
      io.stdout.write(
        `  ${eni.networkInterfaceId} timeouts: ${formatSet(eni.connectionTracking)} (before the incident: ${before ? formatSet(before.connectionTracking) : 'unknown'})\n`,
      );
    }
  }
  io.stdout.write(`  output folder: ${result.outDir}\n`);
  if (result.error || result.outcome === null) return 1;
  return SETTLED_OUTCOMES.has(status) ? 0 : 3;
}

/** The idle timeouts set on a local ENI, or that none are (the instance type's defaults apply). */
function formatSet(tracking: Readonly<Record<string, number | undefined>>): string {
  const set = Object.entries(tracking).filter(([, value]) => value !== undefined);
  return set.length === 0
    ? 'the instance type defaults'
    : set.map(([field, value]) => `${field} ${value} s`).join(', ');
}

/** The flags of `respond` (and `watch`) from the command line, or null once `--help` printed `help`. */
export function respondFlagsFromArgs(args: string[], io: CliIo, help: string): ParsedRespondFlags | null {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof RESPOND_OPTIONS }>>;
  try {
    parsed = parseArgs({ args, options: RESPOND_OPTIONS });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help) {
    io.stdout.write(help);
    return null;
  }
  return respondFlags(parsed.values);
}

export const respondCommand: Command = async (args, io) => {
  const flags = respondFlagsFromArgs(args, io, HELP);
  if (flags === null) return 0;
  const result = await respond(
    respondOptionsFrom(flags, io),
    localEvidenceWriter((line) => io.stderr.write(`${line}\n`), flags.signer),
  );
  return reportResult(result, io);
};
