import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ENI_TIMEOUT_FIELDS,
  ENI_TIMEOUT_RANGES,
  type EniTimeoutField,
  type EniTimeouts,
} from '../../core/allowance/eni-timeouts.js';
import { ResponderError } from '../../core/errors.js';

/**
 * EC2 for the local twin: a small EC2-compatible endpoint on loopback (the EC2 query protocol,
 * form-encoded requests and XML answers, API version 2016-11-15) that the real SDK client and the
 * real adapter (functions/adapters/ec2-network.ts) talk to, so that respond changes and restores ENI
 * timeouts through exactly the code that runs in Lambda. It serves the five calls the network
 * steps make, over a model of one instance (the namespace) and its ENIs (the namespace's
 * interfaces, by MAC address), and refuses what EC2 refuses: unknown ENIs
 * (InvalidNetworkInterfaceID.NotFound), timeouts outside ConnectionTrackingSpecificationRequest's
 * ranges (InvalidParameterValue), more than one attribute at a time, and any other action.
 */

export interface LocalEni {
  readonly networkInterfaceId: string;
  readonly macAddress: string;
  readonly deviceIndex: number;
  readonly groupIds: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
  /** The fields set on the ENI (absent = the instance type's default). */
  connectionTracking: Partial<Record<EniTimeoutField, number>>;
}

export interface LocalSecurityGroupRule {
  readonly groupId: string;
  readonly egress: boolean;
  readonly protocol: string;
  readonly fromPort: number;
  readonly toPort: number;
  readonly cidrIpv4: string;
}

export interface LocalEc2Model {
  readonly instanceId: string;
  readonly instanceType: string;
  readonly typeDefaults: EniTimeouts;
  readonly enis: LocalEni[];
  readonly securityGroupRules: readonly LocalSecurityGroupRule[];
}

export interface LocalEc2Call {
  readonly action: string;
  readonly at: string;
  readonly networkInterfaceId?: string;
  readonly connectionTrackingSpecification?: Partial<Record<EniTimeoutField, number>>;
  readonly error?: string;
}

export interface LocalEc2 {
  /** http://127.0.0.1:<port>, for the SDK client's `endpoint`. */
  readonly endpoint: string;
  readonly model: LocalEc2Model;
  /** Every call served, in order. */
  calls(): readonly LocalEc2Call[];
  /** Writes the model and the calls as JSON (what the evidence and a test read back). */
  save(path: string): Promise<void>;
  close(): Promise<void>;
}

/** Requests are a few hundred bytes; anything past this is refused unread. */
const MAX_BODY_BYTES = 64 * 1024;
const XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

const SPEC_FIELDS: Readonly<Record<EniTimeoutField, string>> = {
  tcpEstablished: 'TcpEstablishedTimeout',
  udpStream: 'UdpStreamTimeout',
  udp: 'UdpTimeout',
};

/** An error answer of the local EC2 endpoint: EC2's error code and the HTTP status it goes with. */
class Ec2RefusalError extends ResponderError {
  override readonly name = 'Ec2RefusalError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

function xml(value: string | number | boolean): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function element(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? '' : `<${name}>${xml(value)}</${name}>`;
}

function answer(action: string, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><${action}Response xmlns="${XMLNS}"><requestId>${randomUUID()}</requestId>${body}</${action}Response>`;
}

/** `Name.1`, `Name.2`, … of a query-protocol list. */
function listOf(form: URLSearchParams, prefix: string): string[] {
  const values: string[] = [];
  for (let index = 1; index <= 1000 && form.has(`${prefix}.${index}`); index++) {
    values.push(String(form.get(`${prefix}.${index}`)));
  }
  return values;
}

function filtersOf(form: URLSearchParams): Map<string, string[]> {
  const filters = new Map<string, string[]>();
  for (let index = 1; index <= 50 && form.has(`Filter.${index}.Name`); index++) {
    filters.set(String(form.get(`Filter.${index}.Name`)), listOf(form, `Filter.${index}.Value`));
  }
  return filters;
}

function eniXml(model: LocalEc2Model, eni: LocalEni): string {
  const tracking = ENI_TIMEOUT_FIELDS.map((field) => {
    const value = eni.connectionTracking[field];
    const name = SPEC_FIELDS[field];
    return element(name.charAt(0).toLowerCase() + name.slice(1), value);
  }).join('');
  return [
    '<item>',
    element('networkInterfaceId', eni.networkInterfaceId),
    element('macAddress', eni.macAddress),
    element('interfaceType', 'interface'),
    element('requesterManaged', false),
    '<attachment>',
    element('instanceId', model.instanceId),
    element('deviceIndex', eni.deviceIndex),
    element('status', 'attached'),
    '</attachment>',
    `<groupSet>${eni.groupIds.map((id) => `<item>${element('groupId', id)}${element('groupName', id)}</item>`).join('')}</groupSet>`,
    `<tagSet>${Object.entries(eni.tags)
      .map(([key, value]) => `<item>${element('key', key)}${element('value', value)}</item>`)
      .join('')}</tagSet>`,
    tracking === '' ? '' : `<connectionTrackingConfiguration>${tracking}</connectionTrackingConfiguration>`,
    '</item>',
  ].join('');
}

function serve(model: LocalEc2Model, form: URLSearchParams, calls: LocalEc2Call[]): string {
  const action = form.get('Action') ?? '';
  const at = new Date().toISOString();
  const eniById = (id: string) => {
    const eni = model.enis.find((candidate) => candidate.networkInterfaceId === id);
    if (eni === undefined)
      throw new Ec2RefusalError(
        'InvalidNetworkInterfaceID.NotFound',
        `The networkInterface ID '${id}' does not exist`,
      );
    return eni;
  };
  switch (action) {
    case 'DescribeNetworkInterfaces': {
      const ids = listOf(form, 'NetworkInterfaceId');
      const filters = filtersOf(form);
      const instances = filters.get('attachment.instance-id');
      const enis = ids.length > 0 ? ids.map(eniById) : model.enis;
      const shown = instances === undefined ? enis : instances.includes(model.instanceId) ? enis : [];
      calls.push({ action, at });
      return answer(
        action,
        `<networkInterfaceSet>${shown.map((eni) => eniXml(model, eni)).join('')}</networkInterfaceSet>`,
      );
    }
    case 'DescribeInstances': {
      const ids = listOf(form, 'InstanceId');
      if (ids.some((id) => id !== model.instanceId))
        throw new Ec2RefusalError(
          'InvalidInstanceID.NotFound',
          `The instance IDs '${ids.join(', ')}' do not exist`,
        );
      calls.push({ action, at });
      return answer(
        action,
        `<reservationSet><item>${element('reservationId', 'r-0local')}<instancesSet><item>${element('instanceId', model.instanceId)}${element('instanceType', model.instanceType)}</item></instancesSet></item></reservationSet>`,
      );
    }
    case 'DescribeInstanceTypes': {
      const types = listOf(form, 'InstanceType');
      const known = types.length === 0 || types.includes(model.instanceType);
      calls.push({ action, at });
      const defaults = model.typeDefaults;
      return answer(
        action,
        known
          ? `<instanceTypeSet><item>${element('instanceType', model.instanceType)}<networkInfo><connectionTrackingConfiguration>${element('defaultTcpEstablishedTimeout', defaults.tcpEstablished)}${element('defaultUdpStreamTimeout', defaults.udpStream)}${element('defaultUdpTimeout', defaults.udp)}</connectionTrackingConfiguration></networkInfo></item></instanceTypeSet>`
          : '<instanceTypeSet/>',
      );
    }
    case 'DescribeSecurityGroupRules': {
      const groups = filtersOf(form).get('group-id');
      const rules = model.securityGroupRules.filter(
        (rule) => groups === undefined || groups.includes(rule.groupId),
      );
      calls.push({ action, at });
      return answer(
        action,
        `<securityGroupRuleSet>${rules
          .map(
            (rule, index) =>
              `<item>${element('securityGroupRuleId', `sgr-0local${index}`)}${element('groupId', rule.groupId)}${element('isEgress', rule.egress)}${element('ipProtocol', rule.protocol)}${element('fromPort', rule.fromPort)}${element('toPort', rule.toPort)}${element('cidrIpv4', rule.cidrIpv4)}</item>`,
          )
          .join('')}</securityGroupRuleSet>`,
      );
    }
    case 'ModifyNetworkInterfaceAttribute': {
      const id = form.get('NetworkInterfaceId') ?? '';
      const attributes = [...new Set([...form.keys()].map((key) => key.split('.')[0]))].filter(
        (key) => !['Action', 'Version', 'NetworkInterfaceId', 'DryRun'].includes(String(key)),
      );
      if (attributes.length !== 1 || attributes[0] !== 'ConnectionTrackingSpecification') {
        // This endpoint changes idle timeouts only (the role on AWS cannot change security groups either).
        throw new Ec2RefusalError(
          'InvalidParameterCombination',
          `the local EC2 changes ConnectionTrackingSpecification only, one attribute at a time (got ${attributes.join(', ') || 'none'})`,
        );
      }
      const eni = eniById(id);
      const spec: Partial<Record<EniTimeoutField, number>> = {};
      for (const field of ENI_TIMEOUT_FIELDS) {
        const text = form.get(`ConnectionTrackingSpecification.${SPEC_FIELDS[field]}`);
        if (text === null) continue;
        const value = Number(text);
        const range = ENI_TIMEOUT_RANGES[field];
        if (!Number.isInteger(value) || value < range.min || value > range.max) {
          throw new Ec2RefusalError(
            'InvalidParameterValue',
            `${SPEC_FIELDS[field]} must be from ${range.min} to ${range.max}, got ${text}`,
          );
        }
        spec[field] = value;
      }
      eni.connectionTracking = { ...eni.connectionTracking, ...spec };
      calls.push({ action, at, networkInterfaceId: id, connectionTrackingSpecification: spec });
      return answer(action, '<return>true</return>');
    }
    default:
      throw new Ec2RefusalError(
        'InvalidAction',
        `the local EC2 does not serve ${action || 'requests without an Action'}`,
      );
  }
}

async function readBody(incoming: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function refuse(response: ServerResponse, refusal: Ec2RefusalError): void {
  response
    .writeHead(refusal.status, { 'content-type': 'text/xml' })
    .end(
      `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>${element('Code', refusal.code)}${element('Message', refusal.message)}</Error></Errors>${element('RequestID', randomUUID())}</Response>`,
    );
}

/** Starts the endpoint on 127.0.0.1 (an ephemeral port) over `model`, which its calls change. */
export async function startLocalEc2(model: LocalEc2Model): Promise<LocalEc2> {
  const calls: LocalEc2Call[] = [];
  const server = createServer((incoming, response) => {
    readBody(incoming)
      .then((body) => {
        if (body === null)
          throw new Ec2RefusalError('RequestEntityTooLarge', 'the request is too large', 413);
        const xmlText = serve(model, new URLSearchParams(body), calls);
        response.writeHead(200, { 'content-type': 'text/xml' }).end(xmlText);
      })
      .catch((error: unknown) => {
        const refusal =
          error instanceof Ec2RefusalError ? error : new Ec2RefusalError('InternalError', String(error), 500);
        calls.push({
          action: 'refused',
          at: new Date().toISOString(),
          error: `${refusal.code}: ${refusal.message}`,
        });
        refuse(response, refusal);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    model,
    calls: () => calls,
    save: async (path) => {
      await writeFile(path, `${JSON.stringify({ model, calls }, null, 2)}\n`);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
