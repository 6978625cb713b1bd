import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Arn, Stack } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { buildDocument } from '../../functions/core/runbook/document.js';
import { readScriptLibraries } from '../../functions/core/runbook/libraries.js';

export interface RunbookDocumentsProps {
  /** A folder laid out like the repository's `runbooks/`: `ssm/<name>.yaml`, `scripts/<name>.sh`, `scripts/lib/*.sh`. */
  readonly directory: string;
  /** Put in front of each file name to make the document's name in AWS. */
  readonly namePrefix: string;
  /** When false, a folder without `ssm/` simply has no documents (a checkout before any runbook exists). */
  readonly mustExist: boolean;
}

/** File base names of documents: lower-case words joined by dashes, as the local executor requires. */
const DOCUMENT_FILE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/**
 * One SSM Command document per `ssm/<name>.yaml`, with `scripts/<name>.sh` (its `lib/` includes
 * replaced by their text) spliced into its
 * `runCommand` by the same loader the local executor uses, so AWS runs exactly what the lab ran.
 * Documents are named `<prefix><name>` and updated as new versions: a named document cannot be
 * replaced in place by CloudFormation.
 */
export class RunbookDocuments extends Construct {
  /** Documents by file base name (`raise-limits`), in name order. */
  readonly documents: ReadonlyMap<string, ssm.CfnDocument>;
  private readonly namePrefix: string;

  constructor(scope: Construct, id: string, props: RunbookDocumentsProps) {
    super(scope, id);
    this.namePrefix = props.namePrefix;
    const documents = new Map<string, ssm.CfnDocument>();
    for (const runbook of readRunbooks(props.directory, props.mustExist)) {
      if (this.documentName(runbook.name).length > 128) {
        throw new Error(
          `document name '${this.documentName(runbook.name)}' is longer than SSM's 128 characters`,
        );
      }
      const document = new ssm.CfnDocument(this, runbook.name, {
        name: this.documentName(runbook.name),
        documentType: 'Command',
        documentFormat: 'JSON',
        content: runbook.content,
        updateMethod: 'NewVersion',
      });
      documents.set(runbook.name, document);
    }
    this.documents = documents;
  }

  /** The name in AWS of the document made from `ssm/<baseName>.yaml`. */
  documentName(baseName: string): string {
    return `${this.namePrefix}${baseName}`;
  }

  /** ARN of a document of this construct, for `ssm:SendCommand` permissions; throws for an unknown one. */
  documentArn(baseName: string): string {
    if (!this.documents.has(baseName)) {
      const known = [...this.documents.keys()];
      throw new Error(
        `no runbook document '${baseName}' (known: ${known.length > 0 ? known.join(', ') : 'none'})`,
      );
    }
    return Arn.format(
      { service: 'ssm', resource: 'document', resourceName: this.documentName(baseName) },
      Stack.of(this),
    );
  }
}

interface Runbook {
  readonly name: string;
  readonly content: Record<string, unknown>;
}

function readRunbooks(directory: string, mustExist: boolean): Runbook[] {
  const documentsDirectory = join(directory, 'ssm');
  const scriptsDirectory = join(directory, 'scripts');
  // Messages name files relative to the working directory, never a machine-specific absolute path.
  const shown = (path: string) => relative(process.cwd(), path) || path;
  if (!existsSync(documentsDirectory)) {
    if (!mustExist) return [];
    throw new Error(`runbook folder ${shown(documentsDirectory)} does not exist`);
  }
  const libraries = readScriptLibraries(scriptsDirectory);
  const yamlFiles = readdirSync(documentsDirectory)
    .filter((file) => file.endsWith('.yaml'))
    .sort();
  const names = yamlFiles.map((file) => file.slice(0, -'.yaml'.length));
  const scripts = existsSync(scriptsDirectory)
    ? readdirSync(scriptsDirectory).filter((f) => f.endsWith('.sh'))
    : [];
  for (const script of scripts) {
    if (!names.includes(script.slice(0, -'.sh'.length))) {
      throw new Error(
        `${shown(join(scriptsDirectory, script))} has no document ${shown(join(documentsDirectory, script.replace(/\.sh$/, '.yaml')))}`,
      );
    }
  }
  return names.map((name) => {
    const yamlPath = join(documentsDirectory, `${name}.yaml`);
    if (!DOCUMENT_FILE_NAME.test(name)) {
      throw new Error(`${shown(yamlPath)}: document file names are lower-case letters, digits and dashes`);
    }
    const scriptPath = join(scriptsDirectory, `${name}.sh`);
    if (!existsSync(scriptPath)) throw new Error(`${shown(yamlPath)} has no script ${shown(scriptPath)}`);
    const document = buildDocument(
      readFileSync(yamlPath, 'utf8'),
      readFileSync(scriptPath, 'utf8'),
      shown(yamlPath),
      { libraries, scriptSource: shown(scriptPath) },
    );
    return { name, content: document as unknown as Record<string, unknown> };
  });
}
