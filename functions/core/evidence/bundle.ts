import { renderChart } from './chart.js';
import { estimateImpact } from './impact.js';
import { allSamples, type IncidentEvidence } from './incident.js';
import { buildManifest, MANIFEST_PATH, type Manifest, sha256, toBuffer } from './manifest.js';
import { renderPostmortem } from './postmortem.js';
import {
  type ManifestSigner,
  SIGNATURE_PATH,
  type SignatureFile,
  signatureFileText,
  signManifest,
} from './signature.js';
import { buildTimeline } from './timeline.js';

/**
 * The evidence bundle of one incident, as file contents keyed by their path inside the bundle's
 * folder. Pure and deterministic: the same evidence always gives byte-identical files (the
 * manifest's time is the incident's close time), so a bundle can be rebuilt and compared.
 *
 * Layout (under a folder named after the incident id):
 *   manifest.json                 incident id, times, outcome, sha256 and size of every other file
 *   postmortem.md                 summary, impact, timeline, root cause, actions, follow-ups
 *   chart.svg                     entries vs limit, drop rate, timeline markers (and the forecast)
 *   forecast.json                 near-full only: the forecast that opened it and its host samples
 *   incident.json                 id, instance, alert, detection and close times, outcome
 *   log-events.json               the log events that triggered the incident
 *   diagnostics/before.json       collect-diagnostics report before any change
 *   diagnostics/after.json        the same after the soak (when collected)
 *   plan.json                     the decision engine's plan (when made)
 *   approvals.json                every approval decision
 *   commands/NN-<step>-<document>[-<action>]/
 *       parameters.json           the document parameters exactly as sent
 *       result.json               command id, status, exit code, start and end
 *       stdout.txt, stderr.txt    the command's output
 *   verification.json             the verification result (when verified)
 *   errors.json                   errors the workflow caught, and what could not be recorded (when any)
 *   guardrails.json               which guardrail decided what, in order (when the guardrails ran)
 *   timeline.json                 the derived timeline and its consistency problems
 *   impact.json                   the drop estimate from the kernel counters
 *   execution-history.json        the state machine's execution history
 *   signature.json                the manifest's signature (signed bundles only; not in the manifest)
 */
export interface EvidenceBundle {
  /** Folder (and archive) name: the incident id made safe for a path. */
  readonly root: string;
  /** Every file including manifest.json, keyed by its path relative to `root`. */
  readonly files: ReadonlyMap<string, string | Buffer>;
  readonly manifest: Manifest;
  /** sha256 of manifest.json: the digest recorded outside the bundle (incident record, notification). */
  readonly manifestSha256: string;
  /** The manifest's signature, when the bundle was signed (also in `files` as signature.json). */
  readonly signature?: SignatureFile;
}

export const CHART_PATH = 'chart.svg';
export const POSTMORTEM_PATH = 'postmortem.md';

export function bundleRootName(incidentId: string): string {
  const safe = incidentId
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, 120);
  if (!safe)
    throw new Error(`evidence: incident id ${JSON.stringify(incidentId)} gives no usable folder name`);
  return safe;
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export function buildEvidenceBundle(evidence: IncidentEvidence): EvidenceBundle {
  const root = bundleRootName(evidence.incidentId);
  const timeline = buildTimeline(evidence);
  const impact = estimateImpact(evidence, timeline);
  const files = new Map<string, string | Buffer>();

  files.set(
    'incident.json',
    json({
      incidentId: evidence.incidentId,
      instanceId: evidence.instanceId,
      alert: evidence.alert,
      detectedAt: evidence.detectedAt,
      closedAt: evidence.closedAt,
      outcome: evidence.outcome,
    }),
  );
  files.set('log-events.json', json(evidence.logEvents));
  if (evidence.before) files.set('diagnostics/before.json', json(evidence.before));
  if (evidence.after) files.set('diagnostics/after.json', json(evidence.after));
  if (evidence.plan) files.set('plan.json', json(evidence.plan));
  files.set('approvals.json', json(evidence.approvals));
  evidence.commands.forEach((command, index) => {
    const action = command.actionId ? `-${command.actionId.replace(/[^A-Za-z0-9-]+/g, '-')}` : '';
    const folder = `commands/${String(index + 1).padStart(2, '0')}-${command.step}-${command.document.replace(/[^A-Za-z0-9-]+/g, '-')}${action}`;
    files.set(`${folder}/parameters.json`, json(command.parameters));
    files.set(
      `${folder}/result.json`,
      json({
        step: command.step,
        document: command.document,
        actionId: command.actionId,
        commandId: command.commandId,
        status: command.status,
        exitCode: command.exitCode,
        startedAt: command.startedAt,
        finishedAt: command.finishedAt,
      }),
    );
    files.set(`${folder}/stdout.txt`, command.stdout);
    files.set(`${folder}/stderr.txt`, command.stderr);
  });
  if (evidence.verification) files.set('verification.json', json(evidence.verification));
  if (evidence.forecast) files.set('forecast.json', json(evidence.forecast));
  if ((evidence.guardrails ?? []).length > 0) files.set('guardrails.json', json(evidence.guardrails));
  if ((evidence.errors ?? []).length > 0 || (evidence.notes ?? []).length > 0) {
    files.set('errors.json', json({ errors: evidence.errors ?? [], notes: evidence.notes ?? [] }));
  }
  files.set('timeline.json', json(timeline));
  files.set('impact.json', json(impact));
  files.set('execution-history.json', json(evidence.executionHistory));

  const host = evidence.before?.host.hostname ?? evidence.instanceId ?? 'unknown host';
  files.set(
    CHART_PATH,
    renderChart({
      title: `Incident ${evidence.incidentId} on ${host}: conntrack entries, limit and drops`,
      samples: allSamples(evidence),
      markers: timeline.events,
      ...projectionOf(evidence),
    }),
  );

  const listed = [...files.keys(), POSTMORTEM_PATH].sort();
  files.set(
    POSTMORTEM_PATH,
    renderPostmortem({ evidence, timeline, impact, files: listed, chartPath: CHART_PATH }),
  );

  const manifest = buildManifest(
    {
      incidentId: evidence.incidentId,
      instanceId: evidence.instanceId,
      createdAt: evidence.closedAt,
      outcome: evidence.outcome.status,
      times: {
        firstDrop: timeline.at['first-drop'] ?? null,
        detected: timeline.at.detected ?? null,
        diagnosed: timeline.at.diagnosed ?? null,
        approved: timeline.at.approved ?? null,
        remediated: timeline.at.remediated ?? null,
        verified: timeline.at.verified ?? null,
        rolledBack: timeline.at['rolled-back'] ?? null,
        closed: timeline.at.closed ?? null,
      },
    },
    files,
  );
  const manifestText = json(manifest);
  files.set(MANIFEST_PATH, manifestText);
  return { root, files, manifest, manifestSha256: sha256(manifestText) };
}

/**
 * The bundle with signature.json added: the manifest signed by `signer` (KMS or a local key). The
 * manifest, and so its digest, stay the same.
 */
export async function signEvidenceBundle(
  bundle: EvidenceBundle,
  signer: ManifestSigner,
): Promise<EvidenceBundle> {
  const manifest = bundle.files.get(MANIFEST_PATH);
  if (manifest === undefined) throw new Error('evidence: the bundle has no manifest to sign');
  const signature = await signManifest(toBuffer(manifest), signer);
  const files = new Map(bundle.files);
  files.set(SIGNATURE_PATH, signatureFileText(signature));
  return { ...bundle, files, signature };
}

/** The forecast's line to the predicted full time, for the chart (near-full incidents). */
function projectionOf(evidence: IncidentEvidence) {
  const forecast = evidence.forecast;
  const last = forecast?.samples.at(-1);
  if (!forecast?.predictedFullAt || !last || last.entries === null) return {};
  return {
    projection: {
      from: { at: last.at, entries: last.entries },
      fullAt: forecast.predictedFullAt,
      max: forecast.max,
    },
  };
}
