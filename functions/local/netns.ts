/**
 * Network namespaces that play EC2 instances in the local twin and the lab tests.
 *
 * Every namespace this module creates is named `ctr-<random>-<role>`, so that tests and the lab
 * only ever touch what they made themselves.
 */

import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type ExecOptions, type ExecResult, execFile } from './exec.js';

export const NAMESPACE_PREFIX = 'ctr-';

export function uniqueNamespaceName(role: string): string {
  return `${NAMESPACE_PREFIX}${randomBytes(3).toString('hex')}-${role}`;
}

/** Runs a program inside a named network namespace (`ip netns exec`). */
export function execInNetns(
  namespace: string,
  file: string,
  args: readonly string[],
  options?: ExecOptions,
): Promise<ExecResult> {
  return execFile('ip', ['netns', 'exec', namespace, file, ...args], options);
}

/** The inode number the kernel uses for a namespace in "table full in netns N" (kernels >= 6.17). */
export async function namespaceInode(namespace: string): Promise<string> {
  const info = await stat(`/run/netns/${namespace}`);
  return String(info.ino);
}

export async function namespaceExists(namespace: string): Promise<boolean> {
  const { stdout } = await execFile('ip', ['netns', 'list']);
  return stdout.split('\n').some((line) => line.split(' ')[0] === namespace);
}

/**
 * Two namespaces joined by a veth pair: `instance` plays the EC2 instance, `clients` plays the
 * rest of the network. Addresses come from 10.199.0.0/16 (and, with `ipv6`, from the ULA
 * fd00:199::/32) and exist only inside these namespaces.
 */
export interface LabHosts {
  readonly instance: string;
  readonly clients: string;
  readonly instanceAddress: string;
  readonly clientAddress: string;
  /** Set only when created with `ipv6: true`. */
  readonly instanceAddress6?: string;
  readonly clientAddress6?: string;
  destroy(): Promise<void>;
}

export interface LabHostsOptions {
  /** Also give the veth pair an IPv6 ULA /64 (without duplicate address detection, usable at once). */
  readonly ipv6?: boolean;
}

let subnetCounter = 0;

export async function createLabHosts(role = 'lab', options: LabHostsOptions = {}): Promise<LabHosts> {
  const instance = uniqueNamespaceName(`${role}-i`);
  const clients = uniqueNamespaceName(`${role}-c`);
  // A distinct /30 per pair within this process keeps parallel pairs readable in `ip addr`.
  const subnet = (process.pid * 7 + subnetCounter++) % 250;
  const instanceAddress = `10.199.${subnet}.1`;
  const clientAddress = `10.199.${subnet}.2`;
  const instanceAddress6 = options.ipv6 ? `fd00:199:${subnet.toString(16)}::1` : undefined;
  const clientAddress6 = options.ipv6 ? `fd00:199:${subnet.toString(16)}::2` : undefined;
  const vethInstance = `v${randomBytes(4).toString('hex')}`;
  const vethClients = `v${randomBytes(4).toString('hex')}`;
  const destroy = async () => {
    for (const namespace of [instance, clients]) {
      await execFile('ip', ['netns', 'pids', namespace], { allowFailure: true }).then(async ({ stdout }) => {
        for (const pid of stdout.split('\n').filter(Boolean)) {
          await execFile('kill', ['-9', pid], { allowFailure: true });
        }
      });
      await execFile('ip', ['netns', 'delete', namespace], { allowFailure: true });
    }
  };
  try {
    await execFile('ip', ['netns', 'add', instance]);
    await execFile('ip', ['netns', 'add', clients]);
    await execFile('ip', ['link', 'add', vethInstance, 'type', 'veth', 'peer', 'name', vethClients]);
    await execFile('ip', ['link', 'set', vethInstance, 'netns', instance]);
    await execFile('ip', ['link', 'set', vethClients, 'netns', clients]);
    for (const [namespace, link, address, address6] of [
      [instance, vethInstance, instanceAddress, instanceAddress6],
      [clients, vethClients, clientAddress, clientAddress6],
    ] as const) {
      await execInNetns(namespace, 'ip', ['link', 'set', 'lo', 'up']);
      await execInNetns(namespace, 'ip', ['addr', 'add', `${address}/30`, 'dev', link]);
      // nodad: with duplicate address detection the address stays tentative (unusable) for ~1-2 s.
      if (address6)
        await execInNetns(namespace, 'ip', ['addr', 'add', `${address6}/64`, 'dev', link, 'nodad']);
      await execInNetns(namespace, 'ip', ['link', 'set', link, 'up']);
    }
  } catch (error) {
    await destroy();
    throw error;
  }
  return {
    instance,
    clients,
    instanceAddress,
    clientAddress,
    ...(instanceAddress6 && clientAddress6 ? { instanceAddress6, clientAddress6 } : {}),
    destroy,
  };
}

const MAX_PATH = '/proc/sys/net/netfilter/nf_conntrack_max';
const INIT_COUNT_PATH = '/proc/sys/net/netfilter/nf_conntrack_count';
/** Survives a crashed run: the next lower/restore puts the original value back first. */
const SAVED_MAX_PATH = '/run/conntrack-responder-lab/saved-nf_conntrack_max';

async function readNumber(path: string): Promise<number> {
  return Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
}

/** Restores nf_conntrack_max saved by a run that died before its `finally`. */
export async function restoreCrashedConntrackMax(): Promise<void> {
  const saved = await readFile(SAVED_MAX_PATH, 'utf8').catch(() => null);
  if (saved === null) return;
  await writeFile(MAX_PATH, saved.trim());
  await rm(SAVED_MAX_PATH, { force: true });
}

/**
 * Runs `body` with the global nf_conntrack_max set to `max`, and always restores the original
 * value. The max is one global value, enforced against each namespace's own count, so lowering it
 * makes a lab namespace fill in seconds. It refuses a value so low that the host's own
 * (initial-namespace) table could reach it.
 */
export async function withConntrackMax<T>(max: number, body: () => Promise<T>): Promise<T> {
  await restoreCrashedConntrackMax();
  const original = await readNumber(MAX_PATH);
  const hostCount = await readNumber(INIT_COUNT_PATH);
  if (max < hostCount * 4 + 1024) {
    throw new Error(
      `refusing to set nf_conntrack_max=${max}: the host's own table holds ${hostCount} entries and could fill up`,
    );
  }
  await mkdir(dirname(SAVED_MAX_PATH), { recursive: true });
  await writeFile(SAVED_MAX_PATH, String(original));
  const restore = () => {
    try {
      writeFileSync(MAX_PATH, String(original));
    } catch {}
  };
  process.once('exit', restore);
  try {
    await writeFile(MAX_PATH, String(max));
    return await body();
  } finally {
    await writeFile(MAX_PATH, String(original));
    await rm(SAVED_MAX_PATH, { force: true });
    process.removeListener('exit', restore);
  }
}
