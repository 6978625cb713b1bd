import type { BundleVerification } from '../core/evidence/manifest.js';
import { verifyEvidenceBundleAt } from '../local/evidence-writer.js';
import { type Command, UsageError } from './io.js';

const USAGE = `usage: conntrack-responder bundle verify PATH [--json]

Checks every file of an evidence bundle (its folder, or its .tar.gz) against the sha256 in its
manifest.json, and names every file that was altered, is missing, or was not in the manifest.

  --json   print the full result as JSON

Exit status: 0 when every file matches, 1 when anything does not, 2 on a usage error.
`;

export const bundleCommand: Command = async (args, io) => {
  const [subcommand, ...rest] = args;
  if (subcommand === undefined || subcommand === '--help' || subcommand === '-h') {
    io.stdout.write(USAGE);
    return subcommand === undefined ? 2 : 0;
  }
  if (subcommand !== 'verify') throw new UsageError(`unknown subcommand '${subcommand}'\n\n${USAGE}`);
  const json = rest.includes('--json');
  const positional = rest.filter((arg) => arg !== '--json');
  const unknown = positional.filter((arg) => arg.startsWith('-'));
  if (unknown.length > 0) throw new UsageError(`unknown option ${unknown[0]}\n\n${USAGE}`);
  if (positional.length !== 1 || !positional[0])
    throw new UsageError(`verify takes exactly one PATH\n\n${USAGE}`);
  const path = positional[0];

  let result: BundleVerification;
  try {
    result = await verifyEvidenceBundleAt(path);
  } catch (error) {
    io.stderr.write(`bundle verify: ${path}: ${(error as Error).message}\n`);
    return 1;
  }
  if (json) {
    io.stdout.write(`${JSON.stringify({ path, ...result }, null, 2)}\n`);
    return result.ok ? 0 : 1;
  }
  io.stdout.write(formatVerification(path, result));
  return result.ok ? 0 : 1;
};

export function formatVerification(path: string, result: BundleVerification): string {
  const lines: string[] = [];
  for (const problem of result.problems) lines.push(`PROBLEM     ${problem}`);
  for (const file of result.altered) {
    lines.push(`ALTERED     ${file.path}  (manifest sha256 ${file.expected}, file has ${file.actual})`);
  }
  for (const file of result.missing) lines.push(`MISSING     ${file}`);
  for (const file of result.unexpected) lines.push(`UNEXPECTED  ${file}  (not in the manifest)`);
  const incident = result.incidentId ? ` incident ${result.incidentId}` : '';
  const digest = result.manifestSha256 ? `\nmanifest.json sha256 ${result.manifestSha256}` : '';
  if (result.ok) {
    lines.push(`OK: ${path}:${incident}, all ${result.verified.length} files match the manifest.${digest}`);
  } else {
    const counts = [
      result.altered.length ? `${result.altered.length} altered` : '',
      result.missing.length ? `${result.missing.length} missing` : '',
      result.unexpected.length ? `${result.unexpected.length} unexpected` : '',
      result.problems.length ? `${result.problems.length} manifest problem(s)` : '',
    ].filter(Boolean);
    lines.push(
      `FAILED: ${path}:${incident}: ${counts.join(', ')}; ${result.verified.length} files match.${digest}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
