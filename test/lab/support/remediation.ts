import { mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { normalizeSaveOutput, snapshotFirewall } from '../../../functions/local/firewall.js';
import { execInNetns } from '../../../functions/local/netns.js';
import { type RunDocumentResult, runDocument } from '../../../functions/local/ssm-executor.js';

/** Where a test's remediation documents keep their state and write "persisted" files. */
export interface RemediationDirs {
  readonly stateDir: string;
  readonly root: string;
  readonly env: Readonly<Record<string, string>>;
  remove(): Promise<void>;
}

/** Temporary CONNTRACK_RESPONDER_STATE_DIR and CONNTRACK_RESPONDER_ROOT: nothing lands in /etc or /var/lib. */
export async function createRemediationDirs(): Promise<RemediationDirs> {
  const stateDir = await mkdtemp(join(tmpdir(), 'ctr-remediation-state-'));
  const root = await mkdtemp(join(tmpdir(), 'ctr-remediation-root-'));
  return {
    stateDir,
    root,
    env: { CONNTRACK_RESPONDER_STATE_DIR: stateDir, CONNTRACK_RESPONDER_ROOT: root },
    async remove() {
      await rm(stateDir, { recursive: true, force: true });
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** The fields every remediation document prints (issue 3's result contract). */
export interface RemediationJson {
  readonly document: string;
  readonly changeId: string;
  readonly status: 'applied' | 'unchanged' | 'refused' | 'rolled-back' | 'failed';
  readonly reasons: string[];
  readonly [field: string]: unknown;
}

export interface RemediationRun extends RunDocumentResult {
  readonly result: RemediationJson;
}

/** Runs a document through the local executor and insists on exactly one JSON object on stdout. */
export async function runRemediation(
  name: string,
  parameters: Record<string, string>,
  netns: string,
  dirs: RemediationDirs,
): Promise<RemediationRun> {
  const run = await runDocument({ name, parameters, netns, env: dirs.env });
  if (run.json === undefined) {
    throw new Error(`${name} printed no JSON object (exit ${run.exitCode}):\n${run.stdout}\n${run.stderr}`);
  }
  return { ...run, result: run.json as unknown as RemediationJson };
}

/**
 * Drops tables that hold no rule, no user chain and only ACCEPT policies from iptables-save text.
 * A legacy table stays registered in a namespace once any rule used it, and nothing short of
 * unloading its module removes it; empty, it filters nothing.
 */
export function withoutEmptyTables(saveText: string): string {
  const out: string[] = [];
  let table: string[] = [];
  let content = false;
  for (const line of saveText.split('\n')) {
    if (line.startsWith('*')) {
      table = [line];
      content = false;
    } else if (line === 'COMMIT') {
      if (content) out.push(...table, line);
      table = [];
    } else if (table.length > 0) {
      table.push(line);
      if (line.startsWith('-') || (line.startsWith(':') && line.split(' ')[1] !== 'ACCEPT')) content = true;
    } else if (line.trim() !== '') {
      out.push(line);
    }
  }
  return out.join('\n');
}

export interface RulesSnapshot {
  readonly iptablesLegacy: string;
  readonly ip6tablesLegacy: string;
  readonly iptablesNft: string;
  readonly ip6tablesNft: string;
  readonly nftables: string;
}

/** Every rule of the namespace in every view, IPv6 included (labkit's snapshot plus ip6tables). */
export async function rulesSnapshot(namespace: string): Promise<RulesSnapshot> {
  const base = await snapshotFirewall(namespace);
  const [legacy6, nft6] = await Promise.all([
    execInNetns(namespace, 'ip6tables-legacy-save', []),
    execInNetns(namespace, 'ip6tables-nft-save', []),
  ]);
  return {
    iptablesLegacy: withoutEmptyTables(base.iptablesLegacy),
    ip6tablesLegacy: withoutEmptyTables(normalizeSaveOutput(legacy6.stdout)),
    iptablesNft: base.iptablesNft,
    ip6tablesNft: normalizeSaveOutput(nft6.stdout),
    nftables: base.nftables,
  };
}

/** Every file and link under `dir` with its content, to compare a state directory before and after. */
export async function directoryContents(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (current: string): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true }).catch(() => [])) {
      const path = join(current, entry.name);
      const key = relative(dir, path);
      if (entry.isDirectory()) {
        out[`${key}/`] = '';
        await walk(path);
      } else if (entry.isSymbolicLink()) {
        out[key] = `-> ${await readlink(path)}`;
      } else if (entry.name !== '.lock') {
        out[key] = `${((await stat(path)).mode & 0o777).toString(8)} ${await readFile(path, 'utf8')}`;
      }
    }
  };
  await walk(dir);
  return out;
}

export async function readSysctl(namespace: string, name: string): Promise<number> {
  const { stdout } = await execInNetns(namespace, 'cat', [`/proc/sys/net/netfilter/${name}`]);
  return Number.parseInt(stdout.trim(), 10);
}
