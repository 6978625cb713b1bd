import type { KeyObject } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { BundleVerification } from '../core/evidence/manifest.js';
import { BundleReadError, printable, type ReadLimitName } from '../core/evidence/read-error.js';
import { DEFAULT_READ_LIMITS, type ReadLimits } from '../core/evidence/reader.js';
import { algorithmFor, keyFingerprint, parsePublicKey } from '../core/evidence/signature.js';
import { verifyEvidenceBundleAt } from '../local/evidence-writer.js';
import { type Command, UsageError } from './io.js';

const MIB = 1024 * 1024;

const USAGE = `usage: conntrack-responder bundle verify PATH [--digest SHA256] [--public-key FILE] [--json]
                                            [--max-member-mib N] [--max-total-mib N]
                                            [--max-members N] [--max-ratio N]

Checks an evidence bundle (its folder, its .tar.gz or .tar, or - for an archive on standard input):
every file against the sha256 and size in its manifest.json, the manifest against the bundle
format (safe paths, each listed once, every required file listed), and the archive itself (regular
files and folders only, nothing after its end). The archive is streamed: memory stays small
whatever its size, and reading stops at the first limit it breaks.

That proves integrity only: the files match the manifest. To prove the manifest is the one the
responder wrote, give one or both of:
  --digest SHA256      the manifest digest recorded outside the bundle (incident record, SNS
                       message, Slack thread); see "Verifying a bundle" in the README
  --public-key FILE    the public key of the signing key (PEM, DER or base64 DER); checks
                       signature.json offline

  --json               print the whole result as JSON
  --max-member-mib N   largest file (default ${DEFAULT_READ_LIMITS.maxMemberBytes / MIB})
  --max-total-mib N    all files together (default ${DEFAULT_READ_LIMITS.maxTotalBytes / MIB})
  --max-members N      files and folders (default ${DEFAULT_READ_LIMITS.maxMembers})
  --max-ratio N        uncompressed bytes per compressed byte (default ${DEFAULT_READ_LIMITS.maxCompressionRatio})

Exit status:
  0  verified: every check that was asked for passed
  1  not verified: a file differs, is missing or unexpected; the manifest breaks a rule; the
     digest or the signature does not match; or the input is not a readable bundle
  2  usage error (unknown option, malformed digest, unusable key file)
  3  a reading limit was reached: the bundle may be genuine but larger than allowed (raise it)
`;

export const EXIT = { verified: 0, notVerified: 1, usage: 2, limit: 3 } as const;

const LIMIT_FLAGS: Record<ReadLimitName, string> = {
  maxMemberBytes: '--max-member-mib',
  maxTotalBytes: '--max-total-mib',
  maxMembers: '--max-members',
  maxCompressionRatio: '--max-ratio',
};

interface VerifyArgs {
  readonly path: string;
  readonly json: boolean;
  readonly digest?: string;
  readonly publicKeyFile?: string;
  readonly limits: ReadLimits;
}

function parseVerifyArgs(args: readonly string[]): VerifyArgs {
  const positional: string[] = [];
  let json = false;
  let digest: string | undefined;
  let publicKeyFile: string | undefined;
  const limits: { -readonly [K in keyof ReadLimits]: number } = { ...DEFAULT_READ_LIMITS };
  const positiveNumber = (flag: string, value: string | undefined, whole: boolean): number => {
    const number = Number(value);
    if (
      value === undefined ||
      !Number.isFinite(number) ||
      number <= 0 ||
      (whole && !Number.isInteger(number))
    ) {
      throw new UsageError(`${flag} takes a positive ${whole ? 'whole ' : ''}number\n\n${USAGE}`);
    }
    return number;
  };
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] ?? '';
    const value = () => {
      const next = args[index + 1];
      if (next === undefined) throw new UsageError(`${arg} needs a value\n\n${USAGE}`);
      index += 1;
      return next;
    };
    if (arg === '--json') json = true;
    else if (arg === '--digest') {
      const text = value().trim().toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(text)) {
        throw new UsageError(`--digest takes a sha256 as 64 hexadecimal digits\n\n${USAGE}`);
      }
      digest = text;
    } else if (arg === '--public-key') publicKeyFile = value();
    else if (arg === '--max-member-mib')
      limits.maxMemberBytes = Math.floor(positiveNumber(arg, value(), false) * MIB);
    else if (arg === '--max-total-mib')
      limits.maxTotalBytes = Math.floor(positiveNumber(arg, value(), false) * MIB);
    else if (arg === '--max-members') limits.maxMembers = positiveNumber(arg, value(), true);
    else if (arg === '--max-ratio') limits.maxCompressionRatio = positiveNumber(arg, value(), false);
    else if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option ${arg}\n\n${USAGE}`);
    else positional.push(arg);
  }
  if (positional.length !== 1 || !positional[0])
    throw new UsageError(`verify takes exactly one PATH\n\n${USAGE}`);
  return { path: positional[0], json, digest, publicKeyFile, limits };
}

/** A key file is small: anything over this is not one. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

async function readPublicKey(file: string): Promise<KeyObject> {
  let bytes: Buffer;
  try {
    const handle = await open(file, 'r');
    try {
      const buffer = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_KEY_FILE_BYTES)
        throw new UsageError(`--public-key ${file}: larger than a public key can be`);
      bytes = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      `--public-key ${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? error})`,
    );
  }
  let key: KeyObject;
  try {
    key = parsePublicKey(bytes);
  } catch (error) {
    throw new UsageError(
      `--public-key ${file}: not a public key in PEM, DER or base64 DER (${(error as Error).message})`,
    );
  }
  const algorithm = algorithmFor(key);
  if (typeof algorithm !== 'string')
    throw new UsageError(`--public-key ${file}: the key ${algorithm.problem}`);
  return key;
}

export const bundleCommand: Command = async (args, io) => {
  const [subcommand, ...rest] = args;
  if (subcommand === undefined || subcommand === '--help' || subcommand === '-h') {
    io.stdout.write(USAGE);
    return subcommand === undefined ? EXIT.usage : 0;
  }
  if (subcommand !== 'verify') throw new UsageError(`unknown subcommand '${subcommand}'\n\n${USAGE}`);
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(USAGE);
    return 0;
  }
  const options = parseVerifyArgs(rest);
  const publicKey =
    options.publicKeyFile === undefined ? undefined : await readPublicKey(options.publicKeyFile);

  let result: BundleVerification;
  try {
    result = await verifyEvidenceBundleAt(
      options.path,
      { expectedDigest: options.digest, publicKey },
      options.limits,
      io.stdin,
    );
  } catch (error) {
    if (!(error instanceof BundleReadError)) throw error;
    const hint = error.limit ? `; if the bundle is genuine, raise it with ${LIMIT_FLAGS[error.limit]}` : '';
    io.stderr.write(`${printable(`bundle verify: ${error.message} [${error.rule}]${hint}`)}\n`);
    return error.limit ? EXIT.limit : EXIT.notVerified;
  }
  const exit = result.ok ? EXIT.verified : EXIT.notVerified;
  if (options.json) {
    io.stdout.write(
      `${JSON.stringify({ path: options.path, origin: originChecked(result), ...result }, null, 2)}\n`,
    );
    return exit;
  }
  io.stdout.write(formatVerification(options.path, result, publicKey));
  return exit;
};

/** What was shown about where the manifest comes from, besides the files matching it. */
export function originChecked(
  result: BundleVerification,
): 'not-checked' | 'digest' | 'signature' | 'digest+signature' {
  const digest = result.digest.status === 'matches';
  const signature = result.signature.status === 'valid';
  if (digest && signature) return 'digest+signature';
  if (digest) return 'digest';
  if (signature) return 'signature';
  return 'not-checked';
}

export function formatVerification(path: string, result: BundleVerification, publicKey?: KeyObject): string {
  const lines: string[] = [];
  for (const problem of result.problems)
    lines.push(`PROBLEM     ${problem.file} [${problem.rule}] ${problem.detail}`);
  for (const file of result.altered) {
    const size =
      file.expectedBytes === file.actualBytes
        ? `${file.actualBytes} bytes as listed`
        : `manifest ${file.expectedBytes} bytes, file has ${file.actualBytes}`;
    const hash =
      file.expected === file.actual
        ? 'sha256 as listed'
        : `manifest sha256 ${file.expected}, file has ${file.actual}`;
    lines.push(`ALTERED     ${file.path}  (${hash}; ${size})`);
  }
  for (const file of result.missing) lines.push(`MISSING     ${file}`);
  for (const file of result.unexpected) lines.push(`UNEXPECTED  ${file}  (not in the manifest)`);
  const incident = result.incidentId ? ` incident ${result.incidentId}` : '';
  if (result.ok) {
    lines.push(`OK: ${path}:${incident}, all ${result.verified.length} files match the manifest.`);
  } else {
    const counts = [
      result.altered.length ? `${result.altered.length} altered` : '',
      result.missing.length ? `${result.missing.length} missing` : '',
      result.unexpected.length ? `${result.unexpected.length} unexpected` : '',
      result.problems.length ? `${result.problems.length} problem(s)` : '',
    ].filter(Boolean);
    lines.push(`FAILED: ${path}:${incident}: ${counts.join(', ')}; ${result.verified.length} files match.`);
  }
  if (result.manifestSha256) lines.push(`manifest.json sha256 ${result.manifestSha256}`);
  if (result.digest.status === 'matches')
    lines.push('digest: manifest.json is the one recorded for the incident');
  else if (result.digest.status === 'differs')
    lines.push(`digest: DIFFERS from the recorded ${result.digest.expected}`);
  const signature = result.signature;
  if (signature.status === 'valid') {
    lines.push(
      `signature: valid, ${signature.algorithm} by ${signature.keyId} (public key sha256 ${signature.key})`,
    );
  } else if (signature.status === 'invalid') {
    lines.push(`signature: INVALID${publicKey ? ` for public key sha256 ${keyFingerprint(publicKey)}` : ''}`);
  } else if (signature.status === 'not-checked') {
    lines.push(
      `signature: present (key ${signature.keyId ?? 'unreadable'}), not checked: pass --public-key to check who signed it`,
    );
  }
  if (originChecked(result) === 'not-checked') {
    lines.push(
      'NOTE: only integrity was checked: the files match this manifest.json, but nothing here shows that it is the manifest the responder wrote (origin). Check it against the digest recorded for the incident (--digest) or its signature (--public-key).',
    );
  }
  return `${lines.map((line) => printable(line)).join('\n')}\n`;
}
