import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ec2NetworkPort } from '../../adapters/ec2-network.js';
import type { EniTimeouts } from '../../core/allowance/eni-timeouts.js';
import type { OptInTag } from '../../core/allowance/network.js';
import { execInNetns } from '../netns.js';
import { type LocalEc2, type LocalEni, startLocalEc2 } from './local-ec2.js';

/**
 * EC2's side of a namespace for the twin (respond --ena-exceeded): the namespace is the instance,
 * each of its interfaces with a MAC address an ENI of a local EC2 (local-ec2.ts), and the first
 * one's ENA allowance counters rise at a set rate in a folder collect-diagnostics reads through
 * CONNTRACK_RESPONDER_ENA_STATS (the lab has no ENA device, so the counter source is injected,
 * never the script's parsing). With `relief`, the counter stops rising while that ENI's TCP
 * established timeout is below the instance type's default (the shortened timeouts freed the
 * allowance); without it, it keeps rising whatever is changed, so the verification fails and the
 * workflow rolls the ENI back.
 */

export interface AllowanceTwinOptions {
  readonly netns: string;
  /** Where the counter files go (collect-diagnostics' CONNTRACK_RESPONDER_ENA_STATS). */
  readonly statsDir: string;
  /** conntrack_allowance_exceeded rises this many packets per second while not relieved. */
  readonly exceededPerSecond: number;
  /** The counter stops rising once the ENI's timeouts are shortened. */
  readonly relief: boolean;
  readonly optIn: OptInTag;
  /** How often the counter files are rewritten. @default 100 */
  readonly tickMs?: number;
}

export interface AllowanceTwin {
  readonly ec2: LocalEc2;
  readonly client: EC2Client;
  /** The ENIs as they were before the run (what a rollback must restore). */
  readonly initial: readonly LocalEni[];
  /** The environment collect-diagnostics needs to read the counters. */
  readonly env: Readonly<Record<string, string>>;
  /** The interface whose counters rise, and its ENI. */
  readonly exhausted: { readonly interface: string; readonly networkInterfaceId: string };
  close(): Promise<void>;
}

/** Nitro's documented defaults (EC2 API Reference, ConnectionTrackingConfiguration), not Nitro v6's 350 s. */
export const LOCAL_TYPE_DEFAULTS: EniTimeouts = { tcpEstablished: 432_000, udpStream: 180, udp: 30 };
const LOCAL_GROUP = 'sg-0c0ffee0local0001';
/** The allowance the counter reports while relieved. */
const AVAILABLE_WHEN_RELIEVED = 50_000;

interface LinkInfo {
  readonly ifname: string;
  readonly address?: string;
  readonly link_type?: string;
}

/** The namespace's interfaces that can be ENIs: Ethernet ones with a MAC address, in index order. */
async function ethernetInterfaces(netns: string): Promise<Array<{ name: string; mac: string }>> {
  const { stdout } = await execInNetns(netns, 'ip', ['-j', 'link', 'show']);
  const links = JSON.parse(stdout) as LinkInfo[];
  return links
    .filter((link) => link.link_type === 'ether' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(link.address ?? ''))
    .map((link) => ({ name: link.ifname, mac: String(link.address) }));
}

/** A stable ENI id per namespace and interface (eni- and 17 hex digits, as EC2's). */
function eniId(netns: string, name: string): string {
  return `eni-${createHash('sha256').update(`${netns}/${name}`).digest('hex').slice(0, 17)}`;
}

export async function startAllowanceTwin(options: AllowanceTwinOptions): Promise<AllowanceTwin> {
  const interfaces = await ethernetInterfaces(options.netns);
  const [first] = interfaces;
  if (first === undefined) {
    throw new Error(`namespace ${options.netns} has no Ethernet interface to play an ENI`);
  }
  const enis: LocalEni[] = interfaces.map((each, index) => ({
    networkInterfaceId: eniId(options.netns, each.name),
    macAddress: each.mac,
    deviceIndex: index,
    groupIds: [LOCAL_GROUP],
    tags: { [options.optIn.key]: options.optIn.value },
    connectionTracking: {},
  }));
  const ec2 = await startLocalEc2({
    instanceId: options.netns,
    instanceType: 'local.nitro',
    typeDefaults: LOCAL_TYPE_DEFAULTS,
    enis,
    // Tracked flows: an inbound rule narrower than "everything" makes every flow tracked.
    securityGroupRules: [
      {
        groupId: LOCAL_GROUP,
        egress: false,
        protocol: 'tcp',
        fromPort: 1,
        toPort: 65535,
        cidrIpv4: '10.0.0.0/8',
      },
      { groupId: LOCAL_GROUP, egress: true, protocol: '-1', fromPort: -1, toPort: -1, cidrIpv4: '0.0.0.0/0' },
    ],
  });
  const initial = structuredClone(enis);
  const exhaustedEni = ec2.model.enis[0] as LocalEni;

  await mkdir(options.statsDir, { recursive: true });
  let exceeded = 0;
  let last = Date.now();
  const relieved = () =>
    options.relief &&
    (exhaustedEni.connectionTracking.tcpEstablished ?? LOCAL_TYPE_DEFAULTS.tcpEstablished) <
      LOCAL_TYPE_DEFAULTS.tcpEstablished;
  const write = async () => {
    const now = Date.now();
    const calm = relieved();
    if (!calm) exceeded += Math.round((options.exceededPerSecond * (now - last)) / 1000);
    last = now;
    const text = `NIC statistics:\n     conntrack_allowance_exceeded: ${exceeded}\n     conntrack_allowance_available: ${calm ? AVAILABLE_WHEN_RELIEVED : 0}\n`;
    // Written whole and renamed: the script never reads half a file.
    const temporary = join(options.statsDir, `.${first.name}.tmp`);
    await writeFile(temporary, text);
    await rename(temporary, join(options.statsDir, first.name));
  };
  await write();
  let writing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    writing = writing.then(write).catch(() => {});
  }, options.tickMs ?? 100);
  // Never what keeps the process alive: respond closes it, and a run that throws must still exit.
  timer.unref();

  const client = new EC2Client({
    endpoint: ec2.endpoint,
    region: 'local',
    // The local endpoint does not check signatures; the SDK needs something to sign with.
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return {
    ec2,
    client,
    initial,
    env: { CONNTRACK_RESPONDER_ENA_STATS: options.statsDir },
    exhausted: { interface: first.name, networkInterfaceId: exhaustedEni.networkInterfaceId },
    close: async () => {
      clearInterval(timer);
      await writing;
      client.destroy();
      await ec2.close();
    },
  };
}

/** The port the network steps use, over the twin's SDK client. */
export function allowanceTwinPort(twin: AllowanceTwin) {
  return ec2NetworkPort(twin.client);
}
