/**
 * The one impure-looking step of detection, kept apart so the rest of `core/detect` stays free of
 * Node built-ins: `awslogs.data` is base64 of gzip of JSON. Decompression is bounded so that a
 * crafted payload cannot exhaust memory (a real delivery decodes to a few MB at most).
 */

import { LogInputError } from './errors.js';

/** The most one delivery may decode to (a real one decodes to a few MB at most). */
export const MAX_DECODED_BYTES = 64 * 1024 * 1024;

export function decodeAwsLogsData(data: string): unknown {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw new LogInputError('awslogs.data is not base64');
  // Loaded on first use: zlib costs the CLI's start-up time, and most inputs are not deliveries.
  const { gunzipSync } = process.getBuiltinModule('node:zlib');
  let json: string;
  try {
    json = gunzipSync(Buffer.from(data, 'base64'), { maxOutputLength: MAX_DECODED_BYTES }).toString('utf8');
  } catch (error) {
    throw new LogInputError(`awslogs.data is not gzip data: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new LogInputError(`awslogs.data does not hold JSON: ${(error as Error).message}`);
  }
}
