import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CHANGE_ID_PATTERN,
  type EniChangeRecord,
  type EniChangeStore,
} from '../../core/allowance/eni-change.js';

/**
 * ENI timeout changes for the local twin: one JSON file per ChangeId in a folder (beside the host
 * scripts' own state), created with O_EXCL like the conditional put the incidents table gets on AWS.
 */
export function fileEniChangeStore(directory: string): EniChangeStore {
  const path = (changeId: string) => {
    if (!CHANGE_ID_PATTERN.test(changeId)) throw new Error(`unusable ChangeId ${JSON.stringify(changeId)}`);
    return join(directory, `${changeId}.json`);
  };
  const write = async (record: EniChangeRecord, flag: 'wx' | 'w') => {
    await mkdir(directory, { recursive: true });
    await writeFile(path(record.changeId), `${JSON.stringify(record, null, 2)}\n`, { flag });
  };
  return {
    async get(changeId) {
      try {
        return JSON.parse(await readFile(path(changeId), 'utf8')) as EniChangeRecord;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    },
    async create(record) {
      try {
        await write(record, 'wx');
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw error;
      }
    },
    async update(record) {
      if ((await this.get(record.changeId)) === null)
        throw new Error(`no saved change ${record.changeId} to update`);
      await write(record, 'w');
    },
  };
}
