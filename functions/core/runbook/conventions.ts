import {
  type CommandDocument,
  composeScript,
  DocumentError,
  INCLUDE_TAG,
  parameterValueProblems,
  parseDocumentTemplate,
} from './document.js';

/**
 * The project's rules for SSM documents and their scripts (issue 3), as a pure check that returns
 * every violation in words. The parametrized document test runs it over `runbooks/`; the CDK
 * construct may run it at synth.
 *
 * Beyond what `parseDocumentTemplate` already enforces (schemaVersion '2.2', only fields SSM
 * allows, String parameters, one aws:runShellScript step), a document must have: a description;
 * for every parameter a description, `interpolationType: ENV_VAR`, `allowedPattern` or
 * `allowedValues`, a pattern anchored with ^…$(?![\s\S]) in every alternative, and a default that passes its
 * own constraints; the Linux precondition; `timeoutSeconds`; the `runCommand: []` placeholder.
 * Its script must start with a bash shebang and `set -euo pipefail`, include libraries only in the
 * form `composeScript` accepts, and (with what it includes) never contain `{{`, use each parameter
 * as `SSM_<Name>` and reference no undeclared `SSM_*` variable: the parameter rules hold for the
 * composed script, the one SSM runs.
 */

export interface RunbookFiles {
  readonly name: string;
  readonly yamlText: string;
  /** `undefined` when the script file does not exist. */
  readonly scriptText: string | undefined;
  /** The scripts folder's libraries by include path (`lib/common.sh`), as `buildDocument` takes them. */
  readonly libraries?: Readonly<Record<string, string>>;
  /** Shown in messages (default `<name>.yaml` / `<name>.sh`). */
  readonly yamlSource?: string;
  readonly scriptSource?: string;
}

/** Splits a pattern at its top-level `|` (outside groups, classes and escapes). */
export function topLevelAlternatives(pattern: string): string[] {
  const alternatives: string[] = [];
  let depth = 0;
  let inClass = false;
  let start = 0;
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index];
    if (char === '\\') {
      index++;
    } else if (inClass) {
      if (char === ']') inClass = false;
    } else if (char === '[') {
      inClass = true;
    } else if (char === '(') {
      depth++;
    } else if (char === ')') {
      depth--;
    } else if (char === '|' && depth === 0) {
      alternatives.push(pattern.slice(start, index));
      start = index + 1;
    }
  }
  alternatives.push(pattern.slice(start));
  return alternatives;
}

/**
 * How every allowedPattern ends: `$` and then "no character at all". SSM does not say whether it
 * matches a whole value or finds the pattern in it, nor which engine it uses (its documents'
 * `allowedPattern` is "a regular expression the parameter must match":
 * https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-doc-syntax.html).
 * Under a Java-style find, `$` alone also matches before a final line break, so `80\n` would pass
 * `^[0-9]+$`; `(?![\s\S])` holds only at the very end of the value in Java and JavaScript alike
 * (`\z` is Java only: JavaScript reads it as the letter z).
 */
export const END_OF_VALUE = '$(?![\\s\\S])';

/** True when every top-level alternative starts with `^` and ends with END_OF_VALUE. */
export function isFullyAnchored(pattern: string): boolean {
  return topLevelAlternatives(pattern).every((alternative) => {
    if (!alternative.startsWith('^') || !alternative.endsWith(END_OF_VALUE)) return false;
    // `\$` is a literal dollar sign, not the end.
    const backslashes = /\\*$/.exec(alternative.slice(0, -END_OF_VALUE.length))?.[0].length ?? 0;
    return backslashes % 2 === 0;
  });
}

function documentViolations(doc: CommandDocument, source: string): string[] {
  const violations: string[] = [];
  if (!doc.description?.trim()) violations.push(`${source}: the document has no description`);
  for (const [name, parameter] of Object.entries(doc.parameters ?? {})) {
    const where = `${source}: parameter '${name}'`;
    if (!parameter.description?.trim()) violations.push(`${where} has no description`);
    if (parameter.interpolationType !== 'ENV_VAR') {
      violations.push(`${where} must set interpolationType: ENV_VAR (it reaches the script as SSM_${name})`);
    }
    if (parameter.allowedPattern === undefined && parameter.allowedValues === undefined) {
      violations.push(`${where} needs an allowedPattern or allowedValues`);
    }
    if (parameter.allowedPattern !== undefined && !isFullyAnchored(parameter.allowedPattern)) {
      violations.push(
        `${where}: allowedPattern ${parameter.allowedPattern} must anchor every alternative with ^…${END_OF_VALUE} ` +
          '(otherwise "8080; reboot", or "8080" and a line break under a find-style matcher, can match)',
      );
    }
    if (parameter.default !== undefined) {
      for (const problem of parameterValueProblems(name, parameter, parameter.default)) {
        violations.push(`${source}: the default is invalid: ${problem}`);
      }
    }
  }
  const [step] = doc.mainSteps;
  const platform = step.precondition?.StringEquals[1];
  if (platform !== 'Linux') {
    violations.push(`${source}: mainSteps.0 needs precondition StringEquals: [platformType, Linux]`);
  }
  if (step.inputs.timeoutSeconds === undefined) {
    violations.push(`${source}: mainSteps.0.inputs.timeoutSeconds is not set (SSM would allow 3600 s)`);
  }
  if (step.inputs.runCommand.length > 0) {
    violations.push(
      `${source}: mainSteps.0.inputs.runCommand must be the [] placeholder (the script is spliced in from its .sh file)`,
    );
  }
  return violations;
}

const BASH_SHEBANG = /^#!(\/bin\/bash|\/usr\/bin\/env bash)\s*$/;
const STRICT_MODE = /^set -E?euo pipefail\s*$/;

/** Rules that hold line by line in every file that ends up in the script (its own and its libraries). */
function lineViolations(text: string, source: string): string[] {
  const violations: string[] = [];
  if (text.includes('\r')) violations.push(`${source}: has carriage returns (use LF line endings)`);
  text.split('\n').forEach((line, index) => {
    if (line.includes('{{')) {
      violations.push(
        `${source}:${index + 1}: contains '{{' (parameters arrive only as SSM_<Name> variables)`,
      );
    }
  });
  return violations;
}

function scriptViolations(
  script: string,
  source: string,
  libraries: Readonly<Record<string, string>>,
  parameterNames: readonly string[] | undefined,
): string[] {
  const violations: string[] = [];
  const lines = script.split('\n');
  if (!BASH_SHEBANG.test(lines[0] ?? '')) {
    violations.push(`${source}:1: must start with a bash shebang (#!/bin/bash or #!/usr/bin/env bash)`);
  }
  const firstCommand = lines.findIndex(
    (line, index) => index > 0 && line.trim() !== '' && !/^\s*#/.test(line),
  );
  if (firstCommand === -1) {
    violations.push(`${source}: has no commands`);
  } else if (!STRICT_MODE.test(lines[firstCommand] ?? '')) {
    violations.push(`${source}:${firstCommand + 1}: the first command must be 'set -euo pipefail'`);
  }
  violations.push(...lineViolations(script, source));
  for (const match of script.matchAll(new RegExp(`# ${INCLUDE_TAG} (\\S+)`, 'g'))) {
    const path = match[1] ?? '';
    const text = Object.hasOwn(libraries, path) ? libraries[path] : undefined;
    if (text !== undefined) violations.push(...lineViolations(text, path));
  }
  let composed = script;
  try {
    composed = composeScript(script, libraries, source);
  } catch (error) {
    if (!(error instanceof DocumentError)) throw error;
    violations.push(error.message);
  }
  if (parameterNames !== undefined) {
    for (const name of parameterNames) {
      if (!new RegExp(`\\bSSM_${name}\\b`).test(composed)) {
        violations.push(`${source}: never reads parameter '${name}' as SSM_${name}`);
      }
    }
    const referenced = new Set(
      Array.from(composed.matchAll(/\bSSM_([A-Za-z0-9_]+)/g), (match) => match[1] ?? ''),
    );
    for (const name of referenced) {
      if (!parameterNames.includes(name)) {
        violations.push(`${source}: references SSM_${name}, which is not a parameter of the document`);
      }
    }
  }
  return violations;
}

/** Every rule the document and its script break (empty when they follow them all). */
export function runbookViolations(files: RunbookFiles): string[] {
  const yamlSource = files.yamlSource ?? `${files.name}.yaml`;
  const scriptSource = files.scriptSource ?? `${files.name}.sh`;
  const violations: string[] = [];
  let parameterNames: string[] | undefined;
  try {
    const doc = parseDocumentTemplate(files.yamlText, yamlSource);
    parameterNames = Object.keys(doc.parameters ?? {});
    violations.push(...documentViolations(doc, yamlSource));
  } catch (error) {
    if (!(error instanceof DocumentError)) throw error;
    violations.push(error.message);
  }
  if (files.scriptText === undefined) {
    violations.push(`${scriptSource}: missing (every document needs a script with the same base name)`);
  } else {
    violations.push(
      ...scriptViolations(files.scriptText, scriptSource, files.libraries ?? {}, parameterNames),
    );
  }
  return violations;
}
