import { createHash, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { formatIssues } from '../zod-issues.js';
import type { BundleContents, BundleMember } from './reader.js';
import { checkSignature, SIGNATURE_PATH, type SignatureCheck, signatureKeyId } from './signature.js';
import { assertSafePath, pathProblem } from './tar.js';

export const MANIFEST_PATH = 'manifest.json';
export const BUNDLE_FORMAT = 'conntrack-responder-evidence';
export const BUNDLE_FORMAT_VERSION = 1 as const;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

export const ManifestSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  formatVersion: z.literal(BUNDLE_FORMAT_VERSION),
  incidentId: z.string().min(1),
  instanceId: z.string().nullable(),
  /** When the bundle was made (the incident's close time, so that the same incident gives the same bundle). */
  createdAt: z.string(),
  outcome: z.string(),
  times: z.record(z.string(), z.string().nullable()),
  /** Every file of the bundle except the manifest itself, sorted by path. */
  files: z.array(z.object({ path: z.string(), sha256: sha256Hex, bytes: z.number().int().nonnegative() })),
});

export type Manifest = z.infer<typeof ManifestSchema>;
export type BundleFiles = ReadonlyMap<string, string | Buffer>;

export function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export function toBuffer(content: string | Buffer): Buffer {
  return typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
}

export function buildManifest(
  header: Omit<Manifest, 'format' | 'formatVersion' | 'files'>,
  files: BundleFiles,
): Manifest {
  const entries = [...files.entries()]
    .filter(([path]) => path !== MANIFEST_PATH)
    .map(([path, content]) => {
      assertSafePath(path);
      const buffer = toBuffer(content);
      return { path, sha256: sha256(buffer), bytes: buffer.length };
    })
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { format: BUNDLE_FORMAT, formatVersion: BUNDLE_FORMAT_VERSION, ...header, files: entries };
}

/**
 * The files every bundle of format version 1 holds (buildEvidenceBundle always writes them), and
 * the four files of every command folder. A manifest that leaves one out is refused: an empty or
 * partial manifest would otherwise "verify" whatever files it still names.
 */
export const REQUIRED_FILES = [
  'approvals.json',
  'chart.svg',
  'execution-history.json',
  'impact.json',
  'incident.json',
  'log-events.json',
  'postmortem.md',
  'timeline.json',
] as const;
export const COMMAND_FILES = ['parameters.json', 'result.json', 'stderr.txt', 'stdout.txt'] as const;
const COMMAND_FOLDER = /^commands\/([^/]+)\/[^/]+$/;

/** One thing wrong, by the file it is about and the rule it broke (rules: docs/evidence-bundle.md). */
export interface BundleProblem {
  readonly file: string;
  readonly rule: string;
  readonly detail: string;
}

export interface AlteredFile {
  readonly path: string;
  readonly expected: string;
  readonly actual: string;
  readonly expectedBytes: number;
  readonly actualBytes: number;
}

export interface VerifyOptions {
  /** The manifest's sha256 as recorded outside the bundle (incident record, notification). */
  readonly expectedDigest?: string;
  /** The public key the bundle's signature must verify with. */
  readonly publicKey?: KeyObject;
}

export type DigestCheck =
  | { readonly status: 'not-given' }
  | { readonly status: 'matches' | 'differs'; readonly expected: string };

export type BundleSignatureCheck =
  | { readonly status: 'absent' }
  | { readonly status: 'not-checked'; readonly keyId: string | null }
  | SignatureCheck;

export interface BundleVerification {
  readonly ok: boolean;
  readonly incidentId: string | null;
  /** sha256 of manifest.json itself: compare it with the value recorded outside the bundle. */
  readonly manifestSha256: string | null;
  readonly verified: readonly string[];
  readonly altered: readonly AlteredFile[];
  readonly missing: readonly string[];
  readonly unexpected: readonly string[];
  /** Problems with the manifest, its digest or its signature, each naming its file and rule. */
  readonly problems: readonly BundleProblem[];
  /** The manifest against the digest recorded outside the bundle, when one was given. */
  readonly digest: DigestCheck;
  /** The signature: absent, present but not checked (no key given), valid or invalid. */
  readonly signature: BundleSignatureCheck;
}

/** The contents of a bundle held in memory (tests, the writer), as the streaming readers give them. */
export function contentsOf(files: ReadonlyMap<string, Buffer>): BundleContents {
  const members = new Map<string, BundleMember>();
  for (const [path, content] of files) members.set(path, { sha256: sha256(content), bytes: content.length });
  return {
    members,
    manifest: files.get(MANIFEST_PATH) ?? null,
    signature: files.get(SIGNATURE_PATH) ?? null,
  };
}

export function verifyBundleFiles(
  files: ReadonlyMap<string, Buffer>,
  options: VerifyOptions = {},
): BundleVerification {
  return verifyBundle(contentsOf(files), options);
}

const RESERVED = new Set<string>([MANIFEST_PATH, SIGNATURE_PATH]);

/**
 * Checks every file against the manifest (sha256 and size), the manifest against the format's
 * rules, and, when asked, the manifest against its recorded digest and its signature against a
 * public key. Every discrepancy is reported by name; nothing stops at the first one.
 */
export function verifyBundle(contents: BundleContents, options: VerifyOptions = {}): BundleVerification {
  const problems: BundleProblem[] = [];
  const problem = (file: string, rule: string, detail: string) => problems.push({ file, rule, detail });
  const manifestBytes = contents.manifest;
  const manifestSha256 = manifestBytes ? sha256(manifestBytes) : null;
  const digest: DigestCheck =
    options.expectedDigest === undefined
      ? { status: 'not-given' }
      : {
          status: manifestSha256 === options.expectedDigest ? 'matches' : 'differs',
          expected: options.expectedDigest,
        };
  if (digest.status === 'differs') {
    problem(
      MANIFEST_PATH,
      'digest-mismatch',
      `sha256 ${manifestSha256 ?? '(no manifest)'} is not the recorded ${digest.expected}: this is not the manifest the responder wrote`,
    );
  }
  let signature: BundleSignatureCheck = { status: 'absent' };
  if (contents.signature && manifestBytes) {
    signature = options.publicKey
      ? checkSignature(manifestBytes, contents.signature, options.publicKey)
      : { status: 'not-checked', keyId: signatureKeyId(contents.signature) };
    if (signature.status === 'invalid') problem(SIGNATURE_PATH, signature.rule, signature.detail);
  } else if (options.publicKey) {
    problem(SIGNATURE_PATH, 'signature-missing', 'a public key was given but the bundle is not signed');
  }

  const empty = { verified: [], altered: [], missing: [] };
  const others = () => [...contents.members.keys()].filter((path) => !RESERVED.has(path)).sort();
  if (manifestBytes === null) {
    problem(MANIFEST_PATH, 'manifest-missing', 'is missing: nothing can be verified');
    return {
      ok: false,
      incidentId: null,
      manifestSha256,
      ...empty,
      unexpected: others(),
      problems,
      digest,
      signature,
    };
  }
  let manifest: Manifest;
  try {
    const parsed = ManifestSchema.safeParse(JSON.parse(manifestBytes.toString('utf8')));
    if (!parsed.success) {
      const issues = formatIssues(parsed.error, { root: '(top)' });
      problem(MANIFEST_PATH, 'manifest-format', `does not match the manifest format (${issues})`);
      return {
        ok: false,
        incidentId: null,
        manifestSha256,
        ...empty,
        unexpected: [],
        problems,
        digest,
        signature,
      };
    }
    manifest = parsed.data;
  } catch (error) {
    problem(MANIFEST_PATH, 'manifest-json', `is not valid JSON (${(error as Error).message})`);
    return {
      ok: false,
      incidentId: null,
      manifestSha256,
      ...empty,
      unexpected: [],
      problems,
      digest,
      signature,
    };
  }

  const verified: string[] = [];
  const altered: AlteredFile[] = [];
  const missing: string[] = [];
  const listed = new Set<string>();
  manifest.files.forEach((entry, index) => {
    const where = `${MANIFEST_PATH} files[${index}]`;
    const unsafe = pathProblem(entry.path);
    if (unsafe) {
      problem(where, 'path-unsafe', `path ${JSON.stringify(entry.path)} ${unsafe}`);
      return;
    }
    if (RESERVED.has(entry.path)) {
      problem(where, 'path-reserved', `lists ${entry.path}, which the manifest cannot cover`);
      return;
    }
    if (listed.has(entry.path)) {
      problem(where, 'path-duplicate', `lists ${JSON.stringify(entry.path)} a second time`);
      return;
    }
    listed.add(entry.path);
    const member = contents.members.get(entry.path);
    if (member === undefined) {
      missing.push(entry.path);
      return;
    }
    if (member.sha256 !== entry.sha256 || member.bytes !== entry.bytes) {
      altered.push({
        path: entry.path,
        expected: entry.sha256,
        actual: member.sha256,
        expectedBytes: entry.bytes,
        actualBytes: member.bytes,
      });
    } else verified.push(entry.path);
  });
  for (const required of REQUIRED_FILES) {
    if (!listed.has(required)) {
      problem(MANIFEST_PATH, 'required-file', `does not list ${required}, which every bundle holds`);
    }
  }
  const commandFolders = new Map<string, Set<string>>();
  for (const path of listed) {
    const folder = COMMAND_FOLDER.exec(path)?.[1];
    if (folder === undefined) continue;
    const files = commandFolders.get(folder) ?? new Set<string>();
    files.add(path.slice(`commands/${folder}/`.length));
    commandFolders.set(folder, files);
  }
  for (const [folder, files] of commandFolders) {
    const absent = COMMAND_FILES.filter((file) => !files.has(file));
    if (absent.length > 0) {
      problem(
        MANIFEST_PATH,
        'required-file',
        `lists commands/${folder}/ without ${absent.join(', ')} (every command folder holds ${COMMAND_FILES.join(', ')})`,
      );
    }
  }
  const unexpected = others().filter((path) => !listed.has(path));
  return {
    ok: problems.length === 0 && altered.length === 0 && missing.length === 0 && unexpected.length === 0,
    incidentId: manifest.incidentId,
    manifestSha256,
    verified,
    altered,
    missing,
    unexpected,
    problems,
    digest,
    signature,
  };
}
