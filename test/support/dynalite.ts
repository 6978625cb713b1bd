import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { INCIDENT_TABLE } from '../../functions/core/incident/incident.js';

/**
 * A real DynamoDB-compatible server (dynalite, in memory) on a loopback port, so that conditional
 * writes and their races are exercised for real rather than mocked.
 */
export interface LocalDynamo {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  /** A client for this server with dummy credentials. */
  readonly client: DynamoDBClient;
  /** Creates a table shaped like the CDK incidents table and returns its name. */
  createIncidentTable(name?: string): Promise<string>;
  close(): Promise<void>;
}

export const LOCAL_REGION = 'eu-west-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export async function startLocalDynamo(): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  let tables = 0;
  return {
    endpoint,
    client,
    async createIncidentTable(name = `incidents-${++tables}`) {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          KeySchema: [
            { AttributeName: INCIDENT_TABLE.partitionKey, KeyType: 'HASH' },
            { AttributeName: INCIDENT_TABLE.sortKey, KeyType: 'RANGE' },
          ],
          AttributeDefinitions: [
            { AttributeName: INCIDENT_TABLE.partitionKey, AttributeType: 'S' },
            { AttributeName: INCIDENT_TABLE.sortKey, AttributeType: 'S' },
          ],
        }),
      );
      return name;
    },
    async close() {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
