import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  END_OF_VALUE,
  isFullyAnchored,
  runbookViolations,
} from '../../../functions/core/runbook/conventions.js';

const fixture = (path: string) =>
  readFileSync(new URL(`../../fixtures/runbooks/${path}`, import.meta.url), 'utf8');
const YAML = fixture('ssm/echo-env.yaml');
const SCRIPT = fixture('scripts/echo-env.sh');

/** Replaces text that must be there (so that a mutation can never silently do nothing). */
function edit(text: string, from: string | RegExp, to: string): string {
  const changed = typeof from === 'string' ? text.split(from).join(to) : text.replace(from, () => to);
  if (changed === text) throw new Error(`mutation ${String(from)} did not apply`);
  return changed;
}

function violations(yamlText: string, scriptText: string | undefined): string[] {
  return runbookViolations({ name: 'echo-env', yamlText, scriptText });
}

describe('runbookViolations', () => {
  it('finds nothing wrong with the fixture document', () => {
    expect(violations(YAML, SCRIPT)).toEqual([]);
  });

  const brokenDocuments: [string, string, RegExp][] = [
    ['schemaVersion 2.0', edit(YAML, '"2.2"', '"2.0"'), /schemaVersion/],
    [
      'a field SSM does not allow',
      edit(YAML, 'mainSteps:', 'outputs: []\nmainSteps:'),
      /Unrecognized key.*outputs/,
    ],
    ['no description', edit(YAML, /^description: .*\n/m, ''), /the document has no description/],
    [
      'a parameter without a description',
      edit(YAML, '    description: Text echoed back in the JSON result.\n', ''),
      /parameter 'Message' has no description/,
    ],
    [
      'a parameter without ENV_VAR interpolation',
      edit(YAML, 'interpolationType: ENV_VAR', ''),
      /parameter 'Message' must set interpolationType: ENV_VAR/,
    ],
    [
      'a parameter without allowedPattern or allowedValues',
      edit(YAML, '    allowedPattern: "^[A-Za-z0-9 ,.-]{0,64}$(?![\\\\s\\\\S])"\n', ''),
      /parameter 'Message' needs an allowedPattern or allowedValues/,
    ],
    [
      'a pattern without $',
      edit(YAML, '"^[A-Za-z0-9 ,.-]{0,64}$(?![\\\\s\\\\S])"', '"^[A-Za-z0-9 ,.-]{0,64}"'),
      /allowedPattern .* must anchor every alternative/,
    ],
    [
      'a pattern ending in $ alone, which a find-style matcher satisfies before a final line break',
      edit(YAML, '"^[A-Za-z0-9 ,.-]{0,64}$(?![\\\\s\\\\S])"', '"^[A-Za-z0-9 ,.-]{0,64}$"'),
      /allowedPattern .* must anchor every alternative/,
    ],
    [
      'a pattern with an unanchored alternative',
      edit(YAML, '"^[A-Za-z0-9 ,.-]{0,64}$(?![\\\\s\\\\S])"', '"^$(?![\\\\s\\\\S])|[a-z]+$(?![\\\\s\\\\S])"'),
      /must anchor every alternative/,
    ],
    [
      'a default its own pattern rejects',
      edit(YAML, 'default: hello', "default: 'hi!'"),
      /the default is invalid/,
    ],
    [
      'a default outside allowedValues',
      edit(YAML, 'default: print', 'default: shout'),
      /the default is invalid: parameter 'Mode'/,
    ],
    [
      'a non-String parameter',
      edit(YAML, '    type: String\n', '    type: StringList\n'),
      /expected type 'String'/,
    ],
    ['no Linux precondition', edit(YAML, '[platformType, Linux]', '[platformType, Windows]'), /precondition/],
    ['no timeoutSeconds', edit(YAML, '      timeoutSeconds: "2"\n', ''), /timeoutSeconds is not set/],
    ['commands in runCommand', edit(YAML, 'runCommand: []', 'runCommand: [id]'), /\[\] placeholder/],
  ];
  it.each(brokenDocuments)('reports %s', (_label, yamlText, message) => {
    const found = violations(yamlText, SCRIPT);
    expect(found.length).toBeGreaterThan(0);
    expect(found.join('\n')).toMatch(message);
  });

  const brokenScripts: [string, string | undefined, RegExp][] = [
    ['a missing script', undefined, /echo-env\.sh: missing/],
    [
      'a sh shebang',
      edit(SCRIPT, '#!/usr/bin/env bash', '#!/bin/sh'),
      /echo-env\.sh:1: must start with a bash shebang/,
    ],
    [
      'no strict mode',
      edit(SCRIPT, 'set -euo pipefail\n', ''),
      /the first command must be 'set -euo pipefail'/,
    ],
    [
      'strict mode too late',
      edit(SCRIPT, 'set -euo pipefail\n', 'echo hi\nset -euo pipefail\n'),
      /first command/,
    ],
    [
      '{{ }} interpolation',
      edit(SCRIPT, /"\$\{SSM_Message\?\}"/, '"{{Message}}"'),
      /echo-env\.sh:\d+: contains '\{\{'/,
    ],
    [
      'a parameter never read',
      edit(SCRIPT, /message="\$\{SSM_Message\?\}"/, 'message=x'),
      /never reads parameter 'Message'/,
    ],
    [
      'an undeclared SSM_ variable',
      `${SCRIPT}echo "\${SSM_Force:-}"\n`,
      /references SSM_Force, which is not a parameter/,
    ],
    ['CRLF line endings', edit(SCRIPT, '\n', '\r\n'), /carriage returns/],
  ];
  it.each(brokenScripts)('reports %s', (_label, scriptText, message) => {
    expect(violations(YAML, scriptText).join('\n')).toMatch(message);
  });
});

describe('isFullyAnchored', () => {
  const E = END_OF_VALUE;
  it.each([
    [`^[0-9]+${E}`, true],
    [`^${E}|^[1-9][0-9]{0,9}${E}`, true],
    [`^([1-9]|[1-4][0-9]|50)${E}`, true],
    [`^[1-9]${E}|^[1-5][0-9]${E}`, true],
    [`^(tcp|udp)${E}`, true],
    [`^[a|b]${E}`, true],
    ['^[0-9]+$', false],
    [`^[0-9]+$|^a${E}`, false],
    ['^[0-9]+', false],
    [`[0-9]+${E}`, false],
    [`^a|b${E}`, false],
    [`^a${E}|b`, false],
    [`^a\\${E}`, false],
    [`^a\\\\${E}`, true],
  ])('%s → %s', (pattern, anchored) => {
    expect(isFullyAnchored(pattern)).toBe(anchored);
  });
});
