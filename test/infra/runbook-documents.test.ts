import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildDocument } from '../../functions/core/runbook/document.js';
import { FIXTURE_RUNBOOKS, synthesize } from './support.js';

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

  it('uses the ConntrackResponder- prefix by default', () => {
    const { template } = synthesize({ runbookDirectory: FIXTURE_RUNBOOKS });
    template.hasResourceProperties('AWS::SSM::Document', { Name: 'ConntrackResponder-echo-env' });
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

    it('a runbook folder that does not exist', () => {
      folder = mkdtempSync(join(tmpdir(), 'ctr-runbooks-'));
      expect(() => synthesize({ runbookDirectory: join(folder, 'missing') })).toThrow(
        /runbook folder .*missing\/ssm does not exist/,
      );
    });
  });
});
