import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The one test that runs the real thing: `npx cdk synth` (the CLI, the app in cdk.json, local
 * esbuild bundling, the cdk-nag packs), offline, into a temporary cloud assembly.
 */
describe('npx cdk synth', () => {
  let outdir: string;
  let cliOutput: string;

  beforeAll(async () => {
    outdir = mkdtempSync(join(tmpdir(), 'ctr-synth-'));
    const { stdout, stderr } = await promisify(execFile)(
      'npx',
      ['cdk', 'synth', '--quiet', '--no-notices', '--output', outdir],
      { cwd: repositoryRoot, env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' }, timeout: 180_000 },
    );
    cliOutput = stdout + stderr;
  }, 200_000);

  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  const readJson = (file: string) => JSON.parse(readFileSync(join(outdir, file), 'utf8'));

  it('writes the ConntrackResponder stack with a clean policy validation report', () => {
    const manifest = readJson('manifest.json');
    expect(manifest.artifacts.ConntrackResponder).toMatchObject({
      type: 'aws:cloudformation:stack',
      properties: { templateFile: 'ConntrackResponder.template.json' },
    });
    const template = readJson('ConntrackResponder.template.json');
    const types = Object.values(template.Resources as Record<string, { Type: string }>).map((r) => r.Type);
    expect(types).toEqual(
      expect.arrayContaining([
        'AWS::Lambda::Function',
        'AWS::Logs::SubscriptionFilter',
        'AWS::DynamoDB::Table',
        'AWS::S3::Bucket',
        'AWS::SNS::Topic',
        'AWS::SQS::Queue',
        'AWS::StepFunctions::StateMachine',
      ]),
    );
    const report = readJson('validation-report.json');
    expect(
      report.pluginReports.filter((plugin: { conclusion: string }) => plugin.conclusion !== 'success'),
    ).toEqual([]);
    expect(cliOutput).not.toMatch(/AwsSolutions-|Serverless-/);
  });

  it('bundles detect locally as one ESM file that loads and acknowledges a control message', async () => {
    // Prepare: find the function's asset and let it resolve the SDK (external, as on Lambda).
    const template = readJson('ConntrackResponder.template.json');
    const [detect] = functionsOf(template).filter((resource) =>
      resource.Metadata['aws:cdk:path']?.includes('/Detection/'),
    );
    const assetDirectory = join(outdir, String(detect?.Metadata['aws:asset:path']));
    expect(readdirSync(assetDirectory).sort()).toEqual(['index.mjs', 'index.mjs.map']);
    const code = readFileSync(join(assetDirectory, 'index.mjs'), 'utf8');
    expect(code).not.toMatch(/from\s*"@aws-sdk\/client-dynamodb\/dist/); // the SDK stays external
    symlinkSync(join(repositoryRoot, 'node_modules'), join(outdir, 'node_modules'));
    Object.assign(process.env, {
      INCIDENT_TABLE_NAME: 'incidents',
      INCIDENT_STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:incident',
      INSTANCE_ID_PATTERN: 'i-[0-9a-f]{8,17}',
      COOLDOWN_MINUTES: '30',
      DEFAULT_MODE: 'approve',
      INCIDENT_RETENTION_DAYS: '90',
      NOTIFICATION_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:conntrack-responder',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      AWS_REGION: 'eu-west-1',
    });
    const control = {
      messageType: 'CONTROL_MESSAGE',
      owner: 'CloudwatchLogs',
      logGroup: '',
      logStream: '',
      subscriptionFilters: [],
      logEvents: [
        {
          id: '',
          timestamp: 1_700_000_000_000,
          message: 'CWL CONTROL MESSAGE: Checking health of destination Lambda.',
        },
      ],
    };
    const event = { awslogs: { data: gzipSync(JSON.stringify(control)).toString('base64') } };
    // Act
    const bundled = await import(pathToFileURL(join(assetDirectory, 'index.mjs')).href);
    const result = await bundled.handler(event, { awsRequestId: 'synth-test', functionName: 'detect' });
    // Assess
    expect(result).toMatchObject({ messageType: 'CONTROL_MESSAGE', incidents: [] });
  });

  it('bundles the guardrails function the same way, and it loads and names a bad input', async () => {
    const template = readJson('ConntrackResponder.template.json');
    const [guardrails] = functionsOf(template).filter((resource) =>
      resource.Metadata['aws:cdk:path']?.includes('/Guardrails/'),
    );
    const assetDirectory = join(outdir, String(guardrails?.Metadata['aws:asset:path']));
    expect(readdirSync(assetDirectory).sort()).toEqual(['index.mjs', 'index.mjs.map']);
    if (!existsSync(join(outdir, 'node_modules'))) {
      symlinkSync(join(repositoryRoot, 'node_modules'), join(outdir, 'node_modules'));
    }
    Object.assign(process.env, { INCIDENT_TABLE_NAME: 'incidents', AWS_REGION: 'eu-west-1' });
    const bundled = await import(pathToFileURL(join(assetDirectory, 'index.mjs')).href);
    await expect(
      bundled.handler({ operation: 'guess' }, { awsRequestId: 'synth-test', functionName: 'guardrails' }),
    ).rejects.toThrow(/guardrail step input is invalid: operation/);
  });
});

function functionsOf(template: { Resources: unknown }) {
  return Object.values(
    template.Resources as Record<string, { Type: string; Metadata: Record<string, string> }>,
  ).filter((resource) => resource.Type === 'AWS::Lambda::Function');
}
