import { describe, expect, it } from 'vitest';
import {
  buildDocument,
  DocumentError,
  listParameters,
  ParameterValidationError,
  parseDocumentTemplate,
  scriptToRunCommand,
  stepTimeoutSeconds,
  validateParameters,
} from '../../../functions/core/runbook/document.js';

/** The parameter contract of the brief, as documents declare it. */
const CONTRACT_YAML = `schemaVersion: '2.2'
description: Contract parameters for the validator tests.
parameters:
  ChangeId:
    type: String
    description: Change id.
    allowedPattern: '^[A-Za-z0-9][A-Za-z0-9-]{0,63}$'
    interpolationType: ENV_VAR
  MaxEntries:
    type: String
    description: New nf_conntrack_max.
    allowedPattern: '^[1-9][0-9]{0,9}$'
    interpolationType: ENV_VAR
  HashSize:
    type: String
    description: Buckets, empty to leave.
    default: ''
    allowedPattern: '^$|^[1-9][0-9]{0,9}$'
    interpolationType: ENV_VAR
  MemoryBudgetPercent:
    type: String
    description: Share of MemTotal.
    default: '5'
    allowedPattern: '^([1-9]|[1-4][0-9]|50)$'
    interpolationType: ENV_VAR
  Persist:
    type: String
    description: Persist the change.
    default: 'false'
    allowedValues: ['true', 'false']
    interpolationType: ENV_VAR
mainSteps:
  - action: aws:runShellScript
    name: raiseLimits
    precondition:
      StringEquals: [platformType, Linux]
    inputs:
      timeoutSeconds: '120'
      runCommand: []
`;

const SCRIPT = '#!/bin/bash\nset -euo pipefail\necho "$SSM_ChangeId"\n';

const doc = buildDocument(CONTRACT_YAML, SCRIPT, 'raise-limits.yaml');
const valid = { ChangeId: 'chg-1', MaxEntries: '524288' };

describe('buildDocument', () => {
  it('splices the script into runCommand, one item per line', () => {
    expect(doc.mainSteps[0].inputs.runCommand).toEqual([
      '#!/bin/bash',
      'set -euo pipefail',
      'echo "$SSM_ChangeId"',
    ]);
    expect(doc.schemaVersion).toBe('2.2');
    expect(doc.mainSteps[0].name).toBe('raiseLimits');
  });

  it('keeps empty lines and leading spaces of the script', () => {
    expect(scriptToRunCommand('a\n\n  b\n')).toEqual(['a', '', '  b']);
  });

  it('refuses a document whose runCommand is not the [] placeholder', () => {
    const yaml = CONTRACT_YAML.replace('runCommand: []', 'runCommand: [echo hi]');
    expect(() => buildDocument(yaml, SCRIPT, 'x.yaml')).toThrow(/runCommand must be the \[\] placeholder/);
  });

  it('gives the step timeout, or SSM default 3600 s', () => {
    expect(stepTimeoutSeconds(doc)).toBe(120);
    const yaml = CONTRACT_YAML.replace("      timeoutSeconds: '120'\n", '');
    expect(stepTimeoutSeconds(buildDocument(yaml, SCRIPT))).toBe(3600);
  });
});

describe('parseDocumentTemplate rejects documents SSM would not take, naming file and line', () => {
  const cases: [string, string, RegExp][] = [
    [
      'an unquoted schema version',
      CONTRACT_YAML.replace("'2.2'", '2.2'),
      /x\.yaml:1: schemaVersion: expected schemaVersion '2\.2'/,
    ],
    ['schema 0.3', CONTRACT_YAML.replace("'2.2'", "'0.3'"), /schemaVersion/],
    ['an unknown top-level field', `${CONTRACT_YAML}assumeRole: x\n`, /Unrecognized key.*assumeRole/],
    [
      'an unknown parameter field',
      CONTRACT_YAML.replace('    description: Change id.', '    description: Change id.\n    pattern: x'),
      /x\.yaml:7: parameters\.ChangeId: .*pattern/,
    ],
    [
      'a non-String parameter',
      CONTRACT_YAML.replace(
        'type: String\n    description: Change id.',
        'type: Integer\n    description: Change id.',
      ),
      /x\.yaml:5: parameters\.ChangeId\.type: expected type 'String'/,
    ],
    [
      'another action',
      CONTRACT_YAML.replace('aws:runShellScript', 'aws:runPowerShellScript'),
      /mainSteps\.0\.action/,
    ],
    [
      'a second step',
      `${CONTRACT_YAML}  - action: aws:runShellScript\n    name: two\n    inputs:\n      runCommand: []\n`,
      /exactly one/,
    ],
    ['a timeout beyond 48 h', CONTRACT_YAML.replace("'120'", "'200000'"), /172800/],
    [
      'a duplicate key',
      CONTRACT_YAML.replace('description: Contract', 'description: a\ndescription: Contract'),
      /x\.yaml: .*[Mm]ap keys must be unique/,
    ],
    ['broken YAML', 'schemaVersion: [', /x\.yaml: /],
    [
      'an invalid regular expression',
      CONTRACT_YAML.replace("'^[1-9][0-9]{0,9}$'", "'^[1-9'"),
      /parameters\.MaxEntries\.allowedPattern is not a valid regular expression/,
    ],
  ];
  it.each(cases)('%s', (_label, yaml, message) => {
    expect(() => parseDocumentTemplate(yaml, 'x.yaml')).toThrow(DocumentError);
    expect(() => parseDocumentTemplate(yaml, 'x.yaml')).toThrow(message);
  });
});

describe('listParameters', () => {
  it('lists each parameter with its constraints, default and environment variable', () => {
    const parameters = listParameters(doc);
    expect(parameters.map((parameter) => parameter.name)).toEqual([
      'ChangeId',
      'MaxEntries',
      'HashSize',
      'MemoryBudgetPercent',
      'Persist',
    ]);
    expect(parameters[0]).toMatchObject({ required: true, environmentVariable: 'SSM_ChangeId' });
    expect(parameters[4]).toMatchObject({
      required: false,
      default: 'false',
      allowedValues: ['true', 'false'],
    });
  });
});

describe('validateParameters', () => {
  it('applies defaults', () => {
    expect(validateParameters(doc, valid)).toEqual({
      ChangeId: 'chg-1',
      MaxEntries: '524288',
      HashSize: '',
      MemoryBudgetPercent: '5',
      Persist: 'false',
    });
  });

  it('keeps given values over defaults', () => {
    expect(validateParameters(doc, { ...valid, HashSize: '65536', Persist: 'true' })).toMatchObject({
      HashSize: '65536',
      Persist: 'true',
    });
  });

  const rejected: [string, Record<string, unknown>, RegExp][] = [
    [
      'a command after a value',
      { MaxEntries: '8080; reboot' },
      /parameter 'MaxEntries': value "8080; reboot" does not match/,
    ],
    ['command substitution', { ChangeId: '$(id)' }, /parameter 'ChangeId': value "\$\(id\)" does not match/],
    ['backticks', { ChangeId: '`id`' }, /parameter 'ChangeId'/],
    ['a newline', { MaxEntries: '1024\nreboot' }, /parameter 'MaxEntries': value "1024\\nreboot"/],
    ['a trailing newline', { MaxEntries: '1024\n' }, /parameter 'MaxEntries'/],
    ['a pipe', { ChangeId: 'a|id' }, /parameter 'ChangeId'/],
    ['a leading dash (option injection)', { ChangeId: '-rf' }, /parameter 'ChangeId'/],
    ['spaces', { MaxEntries: ' 1024' }, /parameter 'MaxEntries'/],
    ['zero where the pattern forbids it', { MaxEntries: '0' }, /parameter 'MaxEntries'/],
    [
      'a value outside allowedValues',
      { Persist: 'yes' },
      /parameter 'Persist': value "yes" is not one of "true", "false"/,
    ],
    ['allowedValues are case-sensitive', { Persist: 'TRUE' }, /parameter 'Persist'/],
    ['51 %', { MemoryBudgetPercent: '51' }, /parameter 'MemoryBudgetPercent'/],
    [
      'an unknown parameter',
      { Force: 'true' },
      /unknown parameter 'Force' \(expected one of ChangeId, MaxEntries/,
    ],
    [
      'a number instead of a string',
      { MaxEntries: 1024 },
      /parameter 'MaxEntries': expected a string, got number/,
    ],
  ];
  it.each(rejected)('rejects %s, naming the parameter', (_label, override, message) => {
    const attempt = () => validateParameters(doc, { ...valid, ...override });
    expect(attempt).toThrow(ParameterValidationError);
    expect(attempt).toThrow(message);
  });

  it('rejects a missing required parameter', () => {
    expect(() => validateParameters(doc, { ChangeId: 'chg-1' })).toThrow(
      "missing required parameter 'MaxEntries'",
    );
  });

  it('reports every problem at once', () => {
    try {
      validateParameters(doc, { ChangeId: '$(id)', Persist: 'maybe', Extra: 'x' });
      expect.unreachable();
    } catch (error) {
      expect((error as ParameterValidationError).problems).toHaveLength(4);
    }
  });

  it('uses ECMAScript semantics: a pattern is anchored only as written', () => {
    const loose = buildDocument(CONTRACT_YAML.replace("'^[1-9][0-9]{0,9}$'", "'^[1-9][0-9]{0,9}'"), SCRIPT);
    // This is why the document conventions demand ^…$ on every alternative.
    expect(validateParameters(loose, { ...valid, MaxEntries: '8080; reboot' }).MaxEntries).toBe(
      '8080; reboot',
    );
  });

  it('accepts values at the edges of the contract', () => {
    for (const percent of ['1', '9', '10', '49', '50']) {
      expect(validateParameters(doc, { ...valid, MemoryBudgetPercent: percent }).MemoryBudgetPercent).toBe(
        percent,
      );
    }
    expect(validateParameters(doc, { ...valid, ChangeId: `a${'b'.repeat(63)}` }).ChangeId).toHaveLength(64);
    expect(() => validateParameters(doc, { ...valid, ChangeId: `a${'b'.repeat(64)}` })).toThrow(/ChangeId/);
  });
});
