import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetExecutionHistoryCommand, type HistoryEvent, type SFNClient } from '@aws-sdk/client-sfn';
import { packEvidenceBundle, sortedBundleFiles } from '../core/evidence/archive.js';
import type { EvidenceBundle } from '../core/evidence/bundle.js';

/**
 * Where the workflow's evidence goes on AWS: every file of the bundle and the `.tar.gz` under
 * `incidents/` in the evidence bucket (Object Lock, when the bucket has it, applies by default
 * retention), and the execution history read back from Step Functions.
 */

export const EVIDENCE_PREFIX = 'incidents/';

const CONTENT_TYPES: ReadonlyArray<[RegExp, string]> = [
  [/\.json$/, 'application/json'],
  [/\.md$/, 'text/markdown; charset=utf-8'],
  [/\.svg$/, 'image/svg+xml'],
  [/\.txt$/, 'text/plain; charset=utf-8'],
];

function contentType(path: string): string {
  return CONTENT_TYPES.find(([pattern]) => pattern.test(path))?.[1] ?? 'application/octet-stream';
}

export interface StoredBundle {
  readonly location: string;
  readonly archive: string;
  readonly objects: number;
}

export async function putEvidenceBundle(
  client: S3Client,
  bucket: string,
  bundle: EvidenceBundle,
): Promise<StoredBundle> {
  const folder = `${EVIDENCE_PREFIX}${bundle.root}/`;
  const files = sortedBundleFiles(bundle);
  for (const [path, content] of files) {
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `${folder}${path}`,
        Body: content,
        ContentType: contentType(path),
      }),
    );
  }
  const archiveKey = `${EVIDENCE_PREFIX}${bundle.root}.tar.gz`;
  await client.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: archiveKey,
      Body: packEvidenceBundle(bundle),
      ContentType: 'application/gzip',
    }),
  );
  return {
    location: `s3://${bucket}/${folder}`,
    archive: `s3://${bucket}/${archiveKey}`,
    objects: files.length + 1,
  };
}

/** The execution's history so far, oldest first (every page). */
export async function executionHistory(
  client: SFNClient,
  executionArn: string,
  maxEvents = 5000,
): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(
      new GetExecutionHistoryCommand({
        executionArn,
        maxResults: 1000,
        includeExecutionData: true,
        nextToken,
      }),
    );
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken !== undefined && events.length < maxEvents);
  return events;
}
