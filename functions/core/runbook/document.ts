import { isMap, LineCounter, parseDocument as parseYaml } from 'yaml';
import { z } from 'zod';
import { ResponderError } from '../errors.js';

/**
 * SSM Command documents of this project (pure: text in, objects out).
 *
 * A document lives as two files: `runbooks/ssm/<name>.yaml`, a complete schemaVersion 2.2 Command
 * document whose single `aws:runShellScript` step has `runCommand: []`, and
 * `runbooks/scripts/<name>.sh`, the script that is spliced into `runCommand` one line per item.
 * The CDK construct and the local executor both go through this module, so the document the
 * lab runs is the document AWS runs.
 *
 * API:
 * - `buildDocument(yamlText, scriptText, source?, { libraries?, scriptSource? })` → the full
 *   document, the script's include lines replaced by their libraries (throws `DocumentError`)
 * - `composeScript(scriptText, libraries, scriptSource?)` → the script as SSM runs it
 * - `parseDocumentTemplate(yamlText, source?)` → the YAML as written (runCommand left as is)
 * - `listParameters(doc)` → name, description, default, constraints of each parameter
 * - `validateParameters(doc, values)` → the values with defaults applied (throws
 *   `ParameterValidationError`, like SendCommand's InvalidParameters)
 * - `stepTimeoutSeconds(doc)` → the step's execution timeout (SSM's default 3600 when unset)
 */

/** Fields SSM accepts on a Command document parameter (all types; this project uses String only). */
const parameterSchema = z.strictObject({
  type: z.literal('String', { error: "expected type 'String' (ENV_VAR interpolation needs String)" }),
  description: z.string().optional(),
  default: z.string().optional(),
  allowedValues: z.array(z.string()).min(1).optional(),
  allowedPattern: z.string().optional(),
  displayType: z.enum(['textarea', 'textfield']).optional(),
  minChars: z.number().int().nonnegative().optional(),
  maxChars: z.number().int().positive().optional(),
  minItems: z.number().int().nonnegative().optional(),
  maxItems: z.number().int().positive().optional(),
  interpolationType: z.literal('ENV_VAR').optional(),
});

const timeoutSecondsSchema = z
  .union([z.string().regex(/^[1-9][0-9]{0,5}$/), z.number().int().positive()])
  .refine((value) => Number(value) <= 172_800, 'at most 172800 seconds (48 hours)');

const stepSchema = z.strictObject({
  action: z.literal('aws:runShellScript'),
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'expected a step name of letters, digits, . _ -'),
  precondition: z
    .strictObject({
      StringEquals: z.tuple([z.literal('platformType'), z.enum(['Linux', 'MacOS', 'Windows'])]),
    })
    .optional(),
  inputs: z.strictObject({
    runCommand: z.array(z.string()),
    timeoutSeconds: timeoutSecondsSchema.optional(),
    workingDirectory: z.string().optional(),
  }),
});

const documentSchema = z.strictObject({
  schemaVersion: z.literal('2.2', { error: "expected schemaVersion '2.2' (quoted)" }),
  description: z.string().optional(),
  parameters: z
    .record(z.string().regex(/^[A-Za-z0-9_]+$/, 'parameter names are letters, digits and _'), parameterSchema)
    .optional(),
  mainSteps: z.tuple([stepSchema], { error: 'expected exactly one aws:runShellScript step in mainSteps' }),
});

export type DocumentParameter = z.infer<typeof parameterSchema>;
export type ShellScriptStep = z.infer<typeof stepSchema>;
/** A schemaVersion 2.2 Command document with one `aws:runShellScript` step. */
export type CommandDocument = z.infer<typeof documentSchema>;

/** A document that is not valid; the message names the source, the line and the field. */
export class DocumentError extends ResponderError {
  override readonly name = 'DocumentError';
}

/** Parameter values that SSM would refuse (SendCommand's InvalidParameters); nothing ran. */
export class ParameterValidationError extends ResponderError {
  override readonly name = 'ParameterValidationError';
  constructor(
    readonly problems: readonly string[],
    options?: ErrorOptions,
  ) {
    super(`invalid parameters: ${problems.join('; ')}`, options);
  }
}

/** Parses and checks a document's YAML as written (its `runCommand` is left as it is). */
export function parseDocumentTemplate(yamlText: string, source = 'document'): CommandDocument {
  const lineCounter = new LineCounter();
  const yaml = parseYaml(yamlText, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const [yamlError] = yaml.errors;
  if (yamlError) throw new DocumentError(`${source}: ${yamlError.message}`);
  const result = documentSchema.safeParse(yaml.toJS());
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = issue.path.map(String);
      // For an unknown key, point at that key's line rather than at its parent's.
      const firstUnknown = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
      const nodePath = firstUnknown === undefined ? path : [...path, firstUnknown];
      const node = yaml.getIn(nodePath, true) as { range?: [number, number] } | undefined;
      const at = node?.range ?? (isMap(yaml.contents) && path.length === 0 ? yaml.contents.range : undefined);
      const line = at ? `:${lineCounter.linePos(at[0]).line}` : '';
      return `${source}${line}: ${path.join('.') || '(document)'}: ${issue.message}`;
    });
    throw new DocumentError(problems.join('\n'));
  }
  for (const [name, parameter] of Object.entries(result.data.parameters ?? {})) {
    if (parameter.allowedPattern === undefined) continue;
    try {
      new RegExp(parameter.allowedPattern);
    } catch (error) {
      throw new DocumentError(
        `${source}: parameters.${name}.allowedPattern is not a valid regular expression: ${(error as Error).message}`,
      );
    }
  }
  return result.data;
}

/** A script as SSM's `runCommand`: one item per line (a final newline adds no empty item). */
export function scriptToRunCommand(scriptText: string): string[] {
  return scriptText.replace(/\r?\n$/, '').split(/\r?\n/);
}

/**
 * Shared shell helpers live once, in `runbooks/scripts/lib/<name>.sh`, and each script names them
 * with one include line that works when the script runs as a file and is explicit enough to be
 * replaced safely when a document is built (SSM runs exactly one script per step):
 *
 *     # shellcheck source-path=SCRIPTDIR source=lib/common.sh
 *     source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"  # conntrack-responder:include lib/common.sh
 *
 * The include line (and the shellcheck directive right above it) becomes the library's text.
 * Libraries are keyed by that path; they cannot include anything themselves.
 */
export const INCLUDE_TAG = 'conntrack-responder:include';

const INCLUDE_LINE =
  /^source "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)\/(?<sourced>[^"]*)" {2}# conntrack-responder:include (?<path>\S+)$/;
/** One file directly in `lib/`: no sub-folders, no `..`, no absolute paths. */
const LIBRARY_PATH = /^lib\/[a-z0-9][a-z0-9_-]*\.sh$/;
const SHELLCHECK_SOURCE_DIRECTIVE = /^#\s*shellcheck\s.*\bsource=(?<path>\S+)/;
/** `source x` or `. x` as a command: anything sourced without the include tag would be missing in SSM. */
const SOURCE_COMMAND = /^\s*(?:source|\.)\s+\S/;

/** An include line's problem, or the library path it names. */
function includeTarget(line: string): { path: string } | { problem: string } {
  const match = INCLUDE_LINE.exec(line);
  if (!match?.groups) {
    return {
      problem: `malformed include: expected exactly 'source "$(dirname "\${BASH_SOURCE[0]}")/lib/<name>.sh"  # ${INCLUDE_TAG} lib/<name>.sh'`,
    };
  }
  const { sourced = '', path = '' } = match.groups;
  if (sourced !== path) return { problem: `the include sources '${sourced}' but its tag names '${path}'` };
  if (!LIBRARY_PATH.test(path)) {
    return {
      problem: `include path '${path}' must name a file directly in lib/ (lib/<name>.sh: lower-case, no '..', no sub-folders)`,
    };
  }
  return { path };
}

/**
 * The script as SSM runs it: each include line replaced by its library's text. Throws a
 * `DocumentError` naming the file and line of a malformed, path-escaping, unknown, repeated or
 * nested include, and of a file sourced without the include tag.
 */
export function composeScript(
  scriptText: string,
  libraries: Readonly<Record<string, string>> = {},
  scriptSource = 'script',
): string {
  const lines = scriptText.split('\n');
  const composed: string[] = [];
  const included = new Map<string, number>();
  lines.forEach((line, index) => {
    const at = `${scriptSource}:${index + 1}`;
    if (!line.includes(INCLUDE_TAG)) {
      if (SOURCE_COMMAND.test(line)) {
        throw new DocumentError(
          `${at}: sources a file without '# ${INCLUDE_TAG} <path>' (SSM runs one script, so only tagged lib/ includes are spliced in)`,
        );
      }
      composed.push(line);
      return;
    }
    const target = includeTarget(line);
    if ('problem' in target) throw new DocumentError(`${at}: ${target.problem}`);
    const { path } = target;
    const earlier = included.get(path);
    if (earlier !== undefined) {
      throw new DocumentError(`${at}: ${path} is already included at line ${earlier}`);
    }
    if (!Object.hasOwn(libraries, path)) {
      const known = Object.keys(libraries).sort();
      throw new DocumentError(
        `${at}: includes ${path}, which does not exist (libraries: ${known.length > 0 ? known.join(', ') : 'none'})`,
      );
    }
    included.set(path, index + 1);
    const directive = SHELLCHECK_SOURCE_DIRECTIVE.exec(composed.at(-1) ?? '');
    if (directive) {
      if (directive.groups?.path !== path) {
        throw new DocumentError(
          `${scriptSource}:${index}: the shellcheck directive names '${directive.groups?.path}' but the include is ${path}`,
        );
      }
      composed.pop();
    }
    composed.push(...libraryLines(libraries[path] ?? '', `${path} (included at ${at})`));
  });
  return composed.join('\n');
}

function libraryLines(text: string, source: string): string[] {
  const lines = scriptToRunCommand(text);
  if (lines[0]?.startsWith('#!')) throw new DocumentError(`${source}:1: a library has no shebang`);
  lines.forEach((line, index) => {
    if (line.includes(INCLUDE_TAG) || SOURCE_COMMAND.test(line)) {
      throw new DocumentError(`${source}:${index + 1}: a library cannot include or source another file`);
    }
  });
  return lines;
}

export interface BuildOptions {
  /** Library texts by include path (`lib/common.sh`), from `runbooks/scripts/lib/`. */
  readonly libraries?: Readonly<Record<string, string>>;
  /** Shown in include errors (default `script`). */
  readonly scriptSource?: string;
}

/**
 * The full document: the YAML with the composed script spliced into `runCommand`. The YAML must
 * hold the `runCommand: []` placeholder, so that the script has exactly one source.
 */
export function buildDocument(
  yamlText: string,
  scriptText: string,
  source = 'document',
  options: BuildOptions = {},
): CommandDocument {
  const template = parseDocumentTemplate(yamlText, source);
  const [step] = template.mainSteps;
  if (step.inputs.runCommand.length > 0) {
    throw new DocumentError(`${source}: mainSteps.0.inputs.runCommand must be the [] placeholder`);
  }
  if (scriptText.trim() === '') throw new DocumentError(`${source}: the script is empty`);
  const script = composeScript(scriptText, options.libraries, options.scriptSource);
  return {
    ...template,
    mainSteps: [{ ...step, inputs: { ...step.inputs, runCommand: scriptToRunCommand(script) } }],
  };
}

export interface ParameterInfo {
  readonly name: string;
  readonly description: string | undefined;
  /** Present when the parameter is optional. */
  readonly default: string | undefined;
  readonly required: boolean;
  readonly allowedPattern: string | undefined;
  readonly allowedValues: readonly string[] | undefined;
  /** What the script reads (SSM Agent ≥ 3.3.2746.0 exports it for ENV_VAR parameters). */
  readonly environmentVariable: string;
}

export function listParameters(doc: CommandDocument): ParameterInfo[] {
  return Object.entries(doc.parameters ?? {}).map(([name, parameter]) => ({
    name,
    description: parameter.description,
    default: parameter.default,
    required: parameter.default === undefined,
    allowedPattern: parameter.allowedPattern,
    allowedValues: parameter.allowedValues,
    environmentVariable: `SSM_${name}`,
  }));
}

/** The value as it may appear in a message: quoted, escaped, shortened. */
function shown(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** Problems of one value against its parameter's constraints (empty when it is valid). */
export function parameterValueProblems(name: string, parameter: DocumentParameter, value: string): string[] {
  const problems: string[] = [];
  if (parameter.allowedValues !== undefined && !parameter.allowedValues.includes(value)) {
    problems.push(
      `parameter '${name}': value ${shown(value)} is not one of ${parameter.allowedValues.map(shown).join(', ')}`,
    );
  }
  // ECMAScript semantics, no flags: the pattern is anchored only where it says so.
  if (parameter.allowedPattern !== undefined && !new RegExp(parameter.allowedPattern).test(value)) {
    problems.push(
      `parameter '${name}': value ${shown(value)} does not match allowedPattern ${parameter.allowedPattern}`,
    );
  }
  if (parameter.minChars !== undefined && value.length < parameter.minChars) {
    problems.push(
      `parameter '${name}': value ${shown(value)} is shorter than ${parameter.minChars} characters`,
    );
  }
  if (parameter.maxChars !== undefined && value.length > parameter.maxChars) {
    problems.push(
      `parameter '${name}': value ${shown(value)} is longer than ${parameter.maxChars} characters`,
    );
  }
  return problems;
}

/**
 * Checks parameter values as SendCommand does and returns them with defaults applied: unknown
 * and missing parameters, values that are not strings, values outside `allowedValues` or not
 * matching `allowedPattern`. Throws one `ParameterValidationError` listing every problem.
 */
export function validateParameters(
  doc: CommandDocument,
  values: Readonly<Record<string, unknown>>,
): Record<string, string> {
  const declared = doc.parameters ?? {};
  const problems: string[] = [];
  for (const name of Object.keys(values)) {
    if (!Object.hasOwn(declared, name)) {
      const known = Object.keys(declared);
      problems.push(
        `unknown parameter '${name}' (expected ${known.length > 0 ? `one of ${known.join(', ')}` : 'none'})`,
      );
    }
  }
  const resolved: Record<string, string> = {};
  for (const [name, parameter] of Object.entries(declared)) {
    const given = Object.hasOwn(values, name) ? values[name] : undefined;
    const value = given ?? parameter.default;
    if (value === undefined) {
      problems.push(`missing required parameter '${name}'`);
    } else if (typeof value !== 'string') {
      problems.push(`parameter '${name}': expected a string, got ${typeof value}`);
    } else {
      problems.push(...parameterValueProblems(name, parameter, value));
      resolved[name] = value;
    }
  }
  if (problems.length > 0) throw new ParameterValidationError(problems);
  return resolved;
}

/** SSM's default execution timeout when the step sets none. */
export const DEFAULT_TIMEOUT_SECONDS = 3600;

export function stepTimeoutSeconds(doc: CommandDocument): number {
  const value = doc.mainSteps[0].inputs.timeoutSeconds;
  return value === undefined ? DEFAULT_TIMEOUT_SECONDS : Number(value);
}
