import { buildEvidenceBundle } from '../../core/evidence/bundle.js';
import { evidenceFromState, type ObservedCommand } from '../../core/workflow/evidence.js';
import { writeEvidenceBundle } from '../evidence-writer.js';
import type { LocalCommandRecord } from './local-ssm.js';
import type { EvidenceWriter } from './respond.js';

/** The local twin's commands as the evidence bundle records them (failed and timed-out ones included). */
export function observedCommands(commands: readonly LocalCommandRecord[]): ObservedCommand[] {
  return commands.map((command) => ({
    commandId: command.commandId,
    document: command.document,
    parameters: command.parameters,
    sentAt: command.sentAt,
    finishedAt: command.finishedAt ?? null,
    status: command.result?.status ?? (command.error ? 'Failed' : 'InProgress'),
    exitCode: command.result?.exitCode ?? null,
    // The whole output, as SSM would have written it to S3.
    stdout: command.result?.fullStdout ?? '',
    stderr: command.result?.fullStderr ?? command.error ?? '',
  }));
}

/** Writes the bundle as `<outDir>/<incident id>/` and `<outDir>/<incident id>.tar.gz`. */
export function localEvidenceWriter(report: (line: string) => void = () => {}): EvidenceWriter {
  return async ({ state, history, commands, outDir }) => {
    const { evidence, problems } = evidenceFromState({
      state,
      history,
      closedAt: new Date().toISOString(),
      observedCommands: observedCommands(commands),
    });
    for (const problem of problems) report(`evidence: ${problem}`);
    const written = await writeEvidenceBundle(outDir, buildEvidenceBundle(evidence));
    return { location: written.directory, directory: written.directory, archive: written.archive };
  };
}
