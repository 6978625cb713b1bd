import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runbookViolations } from '../../../functions/core/runbook/conventions.js';
import {
  buildDocument,
  composeScript,
  DocumentError,
  scriptToRunCommand,
} from '../../../functions/core/runbook/document.js';

/**
 * Shared shell helpers live once in `runbooks/scripts/lib/` and are spliced into each script when
 * its document is built, because SSM runs exactly one script per step. These tests pin the include
 * form, what it becomes, and every include that must be refused with file and line.
 */
const include = (path: string, tag = path) =>
  `source "$(dirname "\${BASH_SOURCE[0]}")/${path}"  # conntrack-responder:include ${tag}`;
const DIRECTIVE = '# shellcheck source-path=SCRIPTDIR source=lib/common.sh';

const LIBRARY = '# shellcheck shell=bash\ngreet() { printf \'hello %s\\n\' "$1"; }\n';
const LIBRARIES = { 'lib/common.sh': LIBRARY };
const SCRIPT = [
  '#!/usr/bin/env bash',
  'set -euo pipefail',
  DIRECTIVE,
  include('lib/common.sh'),
  'greet "$SSM_Name"',
  '',
].join('\n');

const YAML = `schemaVersion: '2.2'
description: Greets.
parameters:
  Name:
    type: String
    description: Who.
    default: world
    allowedPattern: '^[a-z]{1,16}$(?![\\s\\S])'
    interpolationType: ENV_VAR
mainSteps:
  - action: aws:runShellScript
    name: greet
    precondition:
      StringEquals: [platformType, Linux]
    inputs:
      timeoutSeconds: '10'
      runCommand: []
`;

describe('composeScript', () => {
  it('replaces the include line and its shellcheck directive with the library text', () => {
    expect(composeScript(SCRIPT, LIBRARIES, 'greet.sh')).toBe(
      [
        '#!/usr/bin/env bash',
        'set -euo pipefail',
        '# shellcheck shell=bash',
        'greet() { printf \'hello %s\\n\' "$1"; }',
        'greet "$SSM_Name"',
        '',
      ].join('\n'),
    );
  });

  it('leaves a script without includes exactly as it is', () => {
    const plain = '#!/bin/bash\nset -euo pipefail\necho "source: $0"\n\n';
    expect(composeScript(plain, LIBRARIES)).toBe(plain);
  });

  it('is what buildDocument puts into runCommand', () => {
    const doc = buildDocument(YAML, SCRIPT, 'greet.yaml', { libraries: LIBRARIES, scriptSource: 'greet.sh' });
    expect(doc.mainSteps[0].inputs.runCommand).toEqual(scriptToRunCommand(composeScript(SCRIPT, LIBRARIES)));
    expect(doc.mainSteps[0].inputs.runCommand.join('\n')).not.toContain('conntrack-responder:include');
  });

  const refused: [string, string, Record<string, string>, RegExp][] = [
    [
      'a library that does not exist',
      SCRIPT.replaceAll('lib/common.sh', 'lib/missing.sh'),
      LIBRARIES,
      /^greet\.sh:4: includes lib\/missing\.sh, which does not exist \(libraries: lib\/common\.sh\)$/,
    ],
    ['any include when there are no libraries', SCRIPT, {}, /^greet\.sh:4: .*\(libraries: none\)$/],
    [
      'a path out of lib/ with ..',
      SCRIPT.replace(include('lib/common.sh'), include('lib/../../etc/profile')),
      LIBRARIES,
      /^greet\.sh:4: include path 'lib\/\.\.\/\.\.\/etc\/profile' must name a file directly in lib\//,
    ],
    [
      'an absolute path',
      SCRIPT.replace(include('lib/common.sh'), include('/etc/profile')),
      LIBRARIES,
      /^greet\.sh:4: include path '\/etc\/profile'/,
    ],
    [
      'a sub-folder of lib/',
      SCRIPT.replace(include('lib/common.sh'), include('lib/x/common.sh')),
      { 'lib/x/common.sh': LIBRARY },
      /^greet\.sh:4: include path 'lib\/x\/common\.sh'/,
    ],
    [
      'a tag that names another file than the one sourced',
      SCRIPT.replace(include('lib/common.sh'), include('lib/common.sh', 'lib/other.sh')),
      { ...LIBRARIES, 'lib/other.sh': LIBRARY },
      /^greet\.sh:4: the include sources 'lib\/common\.sh' but its tag names 'lib\/other\.sh'$/,
    ],
    [
      'an include in another form (indented, other quoting)',
      SCRIPT.replace(include('lib/common.sh'), `  ${include('lib/common.sh')}`),
      LIBRARIES,
      /^greet\.sh:4: malformed include: expected exactly 'source "\$\(dirname/,
    ],
    [
      'a file sourced without the tag (it would be missing in SSM)',
      SCRIPT.replace(include('lib/common.sh'), '. "$(dirname "$0")/lib/common.sh"'),
      LIBRARIES,
      /^greet\.sh:4: sources a file without '# conntrack-responder:include <path>'/,
    ],
    [
      'the same library twice',
      SCRIPT.replace('greet "', `${include('lib/common.sh')}\ngreet "`),
      LIBRARIES,
      /^greet\.sh:5: lib\/common\.sh is already included at line 4$/,
    ],
    [
      'a library that includes another (nested)',
      SCRIPT,
      { 'lib/common.sh': `${LIBRARY}${include('lib/more.sh')}\n`, 'lib/more.sh': LIBRARY },
      /^lib\/common\.sh \(included at greet\.sh:4\):3: a library cannot include or source another file$/,
    ],
    [
      'a library that sources a file',
      SCRIPT,
      { 'lib/common.sh': `${LIBRARY}source /etc/os-release\n` },
      /^lib\/common\.sh \(included at greet\.sh:4\):3: a library cannot include or source another file$/,
    ],
    [
      'a library with a shebang',
      SCRIPT,
      { 'lib/common.sh': `#!/bin/bash\n${LIBRARY}` },
      /^lib\/common\.sh \(included at greet\.sh:4\):1: a library has no shebang$/,
    ],
    [
      'a shellcheck directive that names another file',
      SCRIPT.replace(DIRECTIVE, '# shellcheck source=lib/other.sh'),
      LIBRARIES,
      /^greet\.sh:3: the shellcheck directive names 'lib\/other\.sh' but the include is lib\/common\.sh$/,
    ],
  ];

  it.each(refused)('refuses %s, naming file and line', (_case, script, libraries, message) => {
    expect(() => composeScript(script, libraries, 'greet.sh')).toThrow(DocumentError);
    expect(() => composeScript(script, libraries, 'greet.sh')).toThrow(message);
    // The loader refuses the document the same way.
    expect(() => buildDocument(YAML, script, 'greet.yaml', { libraries, scriptSource: 'greet.sh' })).toThrow(
      message,
    );
  });
});

describe('runbookViolations on a script with includes', () => {
  const check = (scriptText: string, libraries: Record<string, string>) =>
    runbookViolations({ name: 'greet', yamlText: YAML, scriptText, libraries });

  it('accepts a well-formed include', () => {
    expect(check(SCRIPT, LIBRARIES)).toEqual([]);
  });

  it('reports a bad include as a violation', () => {
    expect(check(SCRIPT, {})).toEqual([expect.stringMatching(/^greet\.sh:4: includes lib\/common\.sh/)]);
  });

  it('checks SSM_ references on the composed script, in either file', () => {
    const readsOnlyInLibrary = SCRIPT.replace('"$SSM_Name"', 'world');
    expect(check(readsOnlyInLibrary, LIBRARIES)).toEqual([
      "greet.sh: never reads parameter 'Name' as SSM_Name",
    ]);
    expect(check(readsOnlyInLibrary, { 'lib/common.sh': `${LIBRARY}name=\${SSM_Name:-}\n` })).toEqual([]);
    expect(check(SCRIPT, { 'lib/common.sh': `${LIBRARY}force=\${SSM_Force:-}\n` })).toEqual([
      'greet.sh: references SSM_Force, which is not a parameter of the document',
    ]);
  });

  it("names the library's own line for '{{' and carriage returns", () => {
    expect(check(SCRIPT, { 'lib/common.sh': `${LIBRARY}echo "{{ Name }}"\r\n` })).toEqual([
      'lib/common.sh: has carriage returns (use LF line endings)',
      "lib/common.sh:3: contains '{{' (parameters arrive only as SSM_<Name> variables)",
    ]);
  });
});

describe('a script with includes behaves the same as a file and as the document SSM runs', () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'ctr-include-'));
    await mkdir(join(folder, 'scripts', 'lib'), { recursive: true });
    await mkdir(join(folder, 'composed'));
    await writeFile(join(folder, 'scripts', 'greet.sh'), SCRIPT);
    await writeFile(join(folder, 'scripts', 'lib', 'common.sh'), LIBRARY);
    // The composed script alone in a folder without lib/: it must not need the library file.
    await writeFile(join(folder, 'composed', 'greet.sh'), composeScript(SCRIPT, LIBRARIES));
    await chmod(join(folder, 'composed', 'greet.sh'), 0o700);
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('prints the same from both, run from another working directory', () => {
    const run = (path: string) => {
      const result = spawnSync('bash', [path], {
        cwd: tmpdir(),
        env: { ...process.env, SSM_Name: 'lab' },
        encoding: 'utf8',
      });
      return { code: result.status, stdout: result.stdout, stderr: result.stderr };
    };
    expect(run(join(folder, 'scripts', 'greet.sh'))).toEqual({ code: 0, stdout: 'hello lab\n', stderr: '' });
    expect(run(join(folder, 'composed', 'greet.sh'))).toEqual({ code: 0, stdout: 'hello lab\n', stderr: '' });
  });
});
