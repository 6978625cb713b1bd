import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENI_TIMEOUT_FIELDS, type EniTimeouts } from '../../functions/core/allowance/eni-timeouts.js';
import { createLabHosts, execInNetns, type LabHosts } from '../../functions/local/netns.js';
import { LOCAL_TYPE_DEFAULTS } from '../../functions/local/twin/allowance-twin.js';
import type { AslMachine } from '../../functions/local/twin/asl.js';
import { localEvidenceWriter } from '../../functions/local/twin/evidence.js';
import type { LocalEni } from '../../functions/local/twin/local-ec2.js';
import { type RespondResult, respond } from '../../functions/local/twin/respond.js';
import { synthesizedWorkflowDefinition } from '../../functions/local/twin/synth.js';
import { labUnavailable } from './support/prerequisites.js';

/**
 * EC2's allowance exhausted on a real namespace (issue 14): `respond --ena-exceeded` runs the
 * deployed definition with the namespace's interface reporting a rising conntrack_allowance_exceeded
 * (injected through CONNTRACK_RESPONDER_ENA_STATS into the real collect-diagnostics script) and a
 * local EC2 endpoint on loopback playing its ENI, reached through the real SDK client and adapter.
 * The ENI's timeouts are shortened through EC2, not SSM; when the counter keeps rising the
 * verification fails and the ENI ends with exactly the timeouts it had; when it stops they stay.
 */

/** The values in effect on a local ENI: set on it, else the instance type's defaults. */
function effective(eni: LocalEni): EniTimeouts {
  return Object.fromEntries(
    ENI_TIMEOUT_FIELDS.map((field) => [field, eni.connectionTracking[field] ?? LOCAL_TYPE_DEFAULTS[field]]),
  ) as unknown as EniTimeouts;
}

async function sysctls(hosts: LabHosts): Promise<string> {
  const { stdout } = await execInNetns(hosts.instance, 'sysctl', ['net.netfilter']);
  return stdout
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('net.netfilter.nf_conntrack_count'))
    .sort()
    .join('\n');
}

describe.skipIf(labUnavailable)(
  'respond on an exhausted EC2 allowance (local EC2, injected ENA counters)',
  () => {
    let definition: AslMachine;
    let hosts: LabHosts;
    let work: string;

    beforeAll(async () => {
      definition = await synthesizedWorkflowDefinition();
      hosts = await createLabHosts('ena');
      work = await mkdtemp(join(tmpdir(), 'e2e-allowance-'));
    });
    afterAll(async () => {
      await hosts?.destroy();
      if (work) await rm(work, { recursive: true, force: true });
    });

    async function run(name: string, relief: boolean): Promise<RespondResult> {
      return respond(
        {
          netns: hosts.instance,
          mode: 'auto',
          approval: 'reject',
          soakSeconds: 1,
          outDir: join(work, name, 'out'),
          hostStateDir: join(work, name, 'host'),
          definition,
          stdin: new PassThrough(),
          stdout: new PassThrough(),
          progress: false,
          ena: { exceededPerSecond: 400, relief },
        },
        localEvidenceWriter(() => {}),
      );
    }

    describe('the counter keeps rising after the change', () => {
      let result: RespondResult;
      let before: string;
      let after: string;

      beforeAll(async () => {
        before = await sysctls(hosts);
        result = await run('failing', false);
        after = await sysctls(hosts);
      });

      it('plans an ENI change from the diagnostics and applies it through EC2, not SSM', () => {
        expect(result.error).toBeNull();
        const plan = (
          result.state?.assessment as { plan: { classification: string; actions: unknown[] } } | undefined
        )?.plan;
        if (!plan) throw new Error('the workflow made no plan');
        expect(plan.classification).toBe('ec2-allowance');
        expect(plan.actions).toEqual([
          expect.objectContaining({ kind: 'eni-timeouts', document: 'eni-timeouts' }),
        ]);
        expect(result.commands.map((command) => command.document)).toEqual([
          'collect-diagnostics',
          'collect-diagnostics',
        ]);
        const modified = result.ec2?.calls.filter(
          (call) => call.action === 'ModifyNetworkInterfaceAttribute',
        );
        expect(modified?.[0]?.connectionTrackingSpecification).toEqual({
          tcpEstablished: 7875,
          udpStream: 120,
          udp: 30,
        });
      });

      it('fails the verification on the counter’s rate and ends with the ENI timeouts restored exactly', () => {
        expect(result.state?.verification).toMatchObject({ held: false });
        expect(JSON.stringify(result.state?.verification)).toContain('conntrack_allowance_exceeded');
        expect(result.outcome?.status).toBe('rolled-back');
        const [initial] = result.ec2?.initial ?? [];
        const [final] = result.ec2?.final ?? [];
        if (!initial || !final) throw new Error('the local EC2 had no ENI');
        expect(final.networkInterfaceId).toBe(initial.networkInterfaceId);
        expect(effective(final)).toEqual(effective(initial));
        const modified = result.ec2?.calls.filter(
          (call) => call.action === 'ModifyNetworkInterfaceAttribute',
        );
        expect(modified).toHaveLength(2);
        expect(modified?.[1]?.connectionTrackingSpecification).toEqual(effective(initial));
      });

      it('left the namespace’s own conntrack settings alone and kept the evidence', async () => {
        expect(after).toEqual(before);
        expect(result.bundle).not.toBeNull();
        const saved = JSON.parse(await readFile(join(result.outDir, 'local-ec2.json'), 'utf8'));
        expect(saved.model.enis[0].networkInterfaceId).toBe(result.ec2?.initial[0]?.networkInterfaceId);
      });
    });

    describe('the counter stops once the timeouts are shorter', () => {
      let result: RespondResult;

      beforeAll(async () => {
        result = await run('relieved', true);
      });

      it('verifies the fix and keeps the shorter timeouts', () => {
        expect(result.error).toBeNull();
        expect(result.state?.verification).toMatchObject({ held: true });
        expect(result.outcome?.status).toBe('remediated');
        const [final] = result.ec2?.final ?? [];
        expect(final && effective(final)).toEqual({ tcpEstablished: 7875, udpStream: 120, udp: 30 });
      });
    });
  },
);
