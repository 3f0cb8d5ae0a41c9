/**
 * Writes a test's `<dir>/local.json`, the file `npm start` leaves for the CLI, typed by the CLI's own schema
 * of it (cli/target.ts LocalFile), so a fixture cannot drift from what the CLI reads. Endpoints a test
 * does not use point at a closed port.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalFile } from '../../cli/target';

export function writeLocalFile(dir: string, fields: Pick<LocalFile, 'sfnEndpoint' | 'stateMachineArn'> & Partial<LocalFile>): void {
  const file: LocalFile = {
    pid: process.pid,
    region: 'us-east-1',
    s3Endpoint: 'http://127.0.0.1:9',
    kubeconfig: join(dir, 'kubeconfig'),
    bucket: 'unused',
    approvalUrl: 'http://127.0.0.1:9',
    modelName: 'fashion-mnist',
    namespaces: { staging: 'mlpipe-staging', production: 'mlpipe-production' },
    ...fields,
  };
  writeFileSync(join(dir, 'local.json'), JSON.stringify(file));
}
