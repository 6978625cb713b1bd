import { execFile } from '../exec.js';

/**
 * What `npm run lab` needs on the machine, by the command it runs and the Debian/Ubuntu package
 * that provides it. Missing tools are installed with apt-get when possible, otherwise named.
 */
export const LAB_TOOLS: ReadonlyArray<{ readonly command: string; readonly packageName: string }> = [
  { command: 'ip', packageName: 'iproute2' },
  { command: 'iptables', packageName: 'iptables' },
  { command: 'iptables-nft', packageName: 'iptables' },
  { command: 'nft', packageName: 'nftables' },
  { command: 'conntrack', packageName: 'conntrack' },
  { command: 'dmesg', packageName: 'util-linux' },
  { command: 'nsenter', packageName: 'util-linux' },
  { command: 'flock', packageName: 'util-linux' },
];

async function hasCommand(command: string): Promise<boolean> {
  const { code } = await execFile('sh', ['-c', 'command -v "$1" >/dev/null', 'sh', command], {
    allowFailure: true,
  });
  return code === 0;
}

export interface PrerequisiteReport {
  readonly root: boolean;
  readonly missing: ReadonlyArray<{ readonly command: string; readonly packageName: string }>;
  readonly followNew: boolean;
}

export async function checkPrerequisites(): Promise<PrerequisiteReport> {
  const missing = [];
  for (const tool of LAB_TOOLS) if (!(await hasCommand(tool.command))) missing.push(tool);
  let followNew = false;
  if (!missing.some((tool) => tool.command === 'dmesg')) {
    const help = await execFile('dmesg', ['--help'], { allowFailure: true });
    followNew = help.stdout.includes('--follow-new');
  }
  return { root: process.getuid?.() === 0, missing, followNew };
}

/** Installs the missing packages with apt-get (Debian, Ubuntu); resolves false when that is not possible. */
export async function installMissing(
  report: PrerequisiteReport,
  say: (line: string) => void,
): Promise<boolean> {
  const packages = [...new Set(report.missing.map((tool) => tool.packageName))];
  if (packages.length === 0) return true;
  if (!report.root || !(await hasCommand('apt-get'))) return false;
  say(`lab: installing ${packages.join(', ')} with apt-get`);
  const update = await execFile('apt-get', ['update', '-qq'], {
    allowFailure: true,
    env: { DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (update.code !== 0) return false;
  const install = await execFile(
    'apt-get',
    ['install', '-y', '-qq', '--no-install-recommends', ...packages],
    {
      allowFailure: true,
      env: { DEBIAN_FRONTEND: 'noninteractive' },
    },
  );
  return install.code === 0;
}
