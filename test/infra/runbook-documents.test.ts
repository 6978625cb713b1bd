import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildDocument } from '../../functions/core/runbook/document.js';
import { loadRunbook } from '../../functions/local/runbooks.js';
import { FIXTURE_RUNBOOKS, synthesize } from './support.js';

/** The fixture script with an include of lib/common.sh as its third line. */
function withInclude(script: string): string {
  const lines = script.split('\n');
  lines.splice(
    2,
    0,
    `source "$(dirname "\${BASH_SOURCE[0]}")/lib/common.sh"  # conntrack-responder:include lib/common.sh`,
  );
  return lines.join('\n');
}

describe('runbook documents', () => {
  it('turns each ssm/<name>.yaml and its script into a Command document named after the file', () => {
    // Prepare
    const expected = buildDocument(
      readFileSync(join(FIXTURE_RUNBOOKS, 'ssm/echo-env.yaml'), 'utf8'),
      readFileSync(join(FIXTURE_RUNBOOKS, 'scripts/echo-env.sh'), 'utf8'),
    );
    // Act
    const { template, stack } = synthesize({
      runbookDirectory: FIXTURE_RUNBOOKS,
      kernelLogShipping: false,
      documentNamePrefix: 'Ctr-',
    });
    // Assess
    template.resourceCountIs('AWS::SSM::Document', 1);
    template.hasResourceProperties('AWS::SSM::Document', {
      Name: 'Ctr-echo-env',
      DocumentType: 'Command',
      DocumentFormat: 'JSON',
      UpdateMethod: 'NewVersion',
      Content: expected,
    });
    expect(expected.mainSteps[0].inputs.runCommand[0]).toBe('#!/usr/bin/env bash');
    expect(stack.resolve(stack.responder.documents.documentArn('echo-env'))).toEqual({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':ssm:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':document/Ctr-echo-env',
        ],
      ],
    });
    expect(() => stack.responder.documents.documentArn('nope')).toThrow(
      "no runbook document 'nope' (known: echo-env)",
    );
  });

  it("by default prefixes names with the stack's name, the construct's path and their hash", () => {
    const { stack, template } = synthesize({ runbookDirectory: FIXTURE_RUNBOOKS, kernelLogShipping: false });
    const prefix = stack.responder.documents.documentName('');
    expect(prefix).toMatch(/^Test-Responder-[0-9A-F]{8}-$/);
    template.hasResourceProperties('AWS::SSM::Document', { Name: `${prefix}echo-env` });
    template.hasOutput('DocumentNamePrefix', { Value: prefix });
    // The same construct in the same stack keeps its names from one synth to the next.
    expect(
      synthesize({
        runbookDirectory: FIXTURE_RUNBOOKS,
        kernelLogShipping: false,
      }).stack.responder.documents.documentName(''),
    ).toBe(prefix);
  });

  it('splices the scripts/lib/ libraries a script includes, as the local executor does', async () => {
    // Prepare
    const folder = mkdtempSync(join(tmpdir(), 'ctr-runbooks-'));
    try {
      mkdirSync(join(folder, 'ssm'));
      mkdirSync(join(folder, 'scripts', 'lib'), { recursive: true });
      writeFileSync(
        join(folder, 'ssm', 'echo-env.yaml'),
        readFileSync(join(FIXTURE_RUNBOOKS, 'ssm/echo-env.yaml')),
      );
      const script = withInclude(readFileSync(join(FIXTURE_RUNBOOKS, 'scripts/echo-env.sh'), 'utf8'));
      writeFileSync(join(folder, 'scripts', 'echo-env.sh'), script);
      writeFileSync(join(folder, 'scripts', 'lib', 'common.sh'), 'readonly SPLICED=yes\n');
      // Act
      const { template } = synthesize({ runbookDirectory: folder, kernelLogShipping: false });
      const { document } = await loadRunbook('echo-env', { directory: folder });
      // Assess
      template.hasResourceProperties('AWS::SSM::Document', { Content: document });
      const runCommand = document.mainSteps[0].inputs.runCommand;
      expect(runCommand.slice(2, 4)).toEqual(['readonly SPLICED=yes', 'set -euo pipefail']);
      expect(runCommand.join('\n')).not.toContain('conntrack-responder:include');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  describe('refuses a runbook folder that would deploy something else than the lab ran', () => {
    let folder: string;
    const write = (path: string, text: string) => {
      mkdirSync(join(folder, path, '..'), { recursive: true });
      writeFileSync(join(folder, path), text);
    };
    const fixture = (file: string) => readFileSync(join(FIXTURE_RUNBOOKS, file), 'utf8');
    afterEach(() => rmSync(folder, { recursive: true, force: true }));

    it.each([
      [
        'a document without its script',
        { 'ssm/lonely.yaml': 'ssm/echo-env.yaml' },
        /ssm\/lonely\.yaml has no script .*scripts\/lonely\.sh/,
      ],
      [
        'a script without its document',
        {
          'ssm/echo-env.yaml': 'ssm/echo-env.yaml',
          'scripts/echo-env.sh': 'scripts/echo-env.sh',
          'scripts/orphan.sh': 'scripts/echo-env.sh',
        },
        /scripts\/orphan\.sh has no document .*ssm\/orphan\.yaml/,
      ],
      [
        'a file name SSM and the executor cannot share',
        { 'ssm/Bad_Name.yaml': 'ssm/echo-env.yaml', 'scripts/Bad_Name.sh': 'scripts/echo-env.sh' },
        /Bad_Name\.yaml: document file names are lower-case/,
      ],
    ])('%s', (_name, files, message) => {
      folder = mkdtempSync(join(tmpdir(), 'ctr-runbooks-'));
      for (const [path, source] of Object.entries(files)) write(path, fixture(source));
      expect(() => synthesize({ runbookDirectory: folder })).toThrow(message);
    });

    it('an invalid document, naming file and line', () => {
      folder = mkdtempSync(join(tmpdir(), 'ctr-runbooks-'));
      write('ssm/broken.yaml', fixture('ssm/echo-env.yaml').replace('type: String', 'type: Integer'));
      write('scripts/broken.sh', fixture('scripts/echo-env.sh'));
      expect(() => synthesize({ runbookDirectory: folder })).toThrow(
        /broken\.yaml:\d+: parameters\.Message\.type/,
      );
    });

    it('an include of a library that does not exist, naming the script and line', () => {
      folder = mkdtempSync(join(tmpdir(), 'ctr-runbooks-'));
      write('ssm/echo-env.yaml', fixture('ssm/echo-env.yaml'));
      write('scripts/echo-env.sh', withInclude(fixture('scripts/echo-env.sh')));
      expect(() => synthesize({ runbookDirectory: folder })).toThrow(
        /scripts\/echo-env\.sh:3: includes lib\/common\.sh, which does not exist \(libraries: none\)/,
      );
    });

    it('log shipping without the ship-kernel-log runbook', () => {
      expect(() => synthesize({ runbookDirectory: FIXTURE_RUNBOOKS })).toThrow(
        /kernel log shipping needs the ship-kernel-log runbook .*turn kernelLogShipping off/,
      );
    });

    it('a runbook folder that does not exist', () => {
      folder = mkdtempSync(join(tmpdir(), 'ctr-runbooks-'));
      expect(() => synthesize({ runbookDirectory: join(folder, 'missing') })).toThrow(
        /runbook folder .*missing\/ssm does not exist/,
      );
    });
  });
});
