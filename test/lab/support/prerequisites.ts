import { execFileSync } from 'node:child_process';

/**
 * Lab tests drive the real kernel. Outside CI they are skipped when the machine cannot run them
 * (not root, tools missing); under CI=true a missing prerequisite fails the run loudly instead.
 */
const REQUIRED_TOOLS = ['ip', 'iptables', 'iptables-legacy', 'iptables-nft', 'nft', 'conntrack', 'flock'];

function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (run as uid 0)');
  for (const tool of REQUIRED_TOOLS) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' });
    } catch {
      missing.push(tool);
    }
  }
  return missing;
}

export const labMissing = missingPrerequisites();

if (labMissing.length > 0 && process.env.CI === 'true') {
  throw new Error(`lab prerequisites missing under CI=true: ${labMissing.join(', ')}`);
}

/** `describe.skipIf(labUnavailable)` for lab suites. */
export const labUnavailable = labMissing.length > 0;
