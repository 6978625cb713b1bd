import { createHash } from 'node:crypto';
import { z } from 'zod';
import { assertSafePath } from './tar.js';

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
  files: z.array(
    z.object({ path: z.string().min(1), sha256: sha256Hex, bytes: z.number().int().nonnegative() }),
  ),
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

export interface BundleVerification {
  readonly ok: boolean;
  readonly incidentId: string | null;
  /** sha256 of manifest.json itself: compare it with the value recorded elsewhere (incident record, notification). */
  readonly manifestSha256: string | null;
  readonly verified: readonly string[];
  readonly altered: readonly { readonly path: string; readonly expected: string; readonly actual: string }[];
  readonly missing: readonly string[];
  readonly unexpected: readonly string[];
  /** Problems with the manifest itself (absent, not JSON, wrong shape, duplicate entries). */
  readonly problems: readonly string[];
}

/**
 * Checks every file against the manifest. Paths are relative to the bundle's folder. Every
 * discrepancy is reported by name; nothing stops at the first one.
 */
export function verifyBundleFiles(files: ReadonlyMap<string, Buffer>): BundleVerification {
  const problems: string[] = [];
  const manifestBytes = files.get(MANIFEST_PATH);
  const empty = { verified: [], altered: [], missing: [], unexpected: [] };
  if (manifestBytes === undefined) {
    return {
      ok: false,
      incidentId: null,
      manifestSha256: null,
      ...empty,
      unexpected: [...files.keys()].sort(),
      problems: [`${MANIFEST_PATH} is missing: nothing can be verified`],
    };
  }
  let manifest: Manifest;
  try {
    const parsed = ManifestSchema.safeParse(JSON.parse(manifestBytes.toString('utf8')));
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
      throw new Error(`does not match the manifest format (${issues.join('; ')})`);
    }
    manifest = parsed.data;
  } catch (error) {
    return {
      ok: false,
      incidentId: null,
      manifestSha256: sha256(manifestBytes),
      ...empty,
      problems: [
        `${MANIFEST_PATH} ${error instanceof SyntaxError ? `is not valid JSON (${error.message})` : (error as Error).message}`,
      ],
    };
  }

  const verified: string[] = [];
  const altered: { path: string; expected: string; actual: string }[] = [];
  const missing: string[] = [];
  const listed = new Set<string>();
  for (const entry of manifest.files) {
    if (listed.has(entry.path)) problems.push(`${MANIFEST_PATH} lists ${entry.path} twice`);
    listed.add(entry.path);
    if (entry.path === MANIFEST_PATH) {
      problems.push(`${MANIFEST_PATH} lists itself`);
      continue;
    }
    const content = files.get(entry.path);
    if (content === undefined) {
      missing.push(entry.path);
      continue;
    }
    const actual = sha256(content);
    if (actual !== entry.sha256) altered.push({ path: entry.path, expected: entry.sha256, actual });
    else verified.push(entry.path);
  }
  const unexpected = [...files.keys()].filter((path) => path !== MANIFEST_PATH && !listed.has(path)).sort();
  return {
    ok: problems.length === 0 && altered.length === 0 && missing.length === 0 && unexpected.length === 0,
    incidentId: manifest.incidentId,
    manifestSha256: sha256(manifestBytes),
    verified,
    altered,
    missing,
    unexpected,
    problems,
  };
}
