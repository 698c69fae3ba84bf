/**
 * The full conformance suite and the real-storage cases on a real replica set
 * (or sharded cluster) from MONGODB_URI. Without one the suites skip with the
 * printed reason; TXKIT_REQUIRE=mongodb makes that a failure instead.
 */
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { testTransactionContext } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { testMongoDeployment } from './mongo-deployment-suite.js';
import { conformanceSubject, uniqueName } from './mongo-support.js';

const url = service('mongodb');
// Each case is registered and reported as skipped when no replica set is reachable.
const test = { describe, it: (name: string, fn: () => Promise<void>, timeoutMs?: number) => it.skipIf(url === undefined)(name, fn, timeoutMs) };
const dbName = uniqueName('txkit');
let client: MongoClient;

beforeAll(async () => {
  if (url === undefined) return;
  client = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
});

afterAll(async () => {
  if (url === undefined) return;
  await client.db(dbName).dropDatabase();
  await client.close();
});

testTransactionContext({
  name: 'mongodb (replica set from MONGODB_URI)',
  test,
  capabilities: { savepoints: false, concurrentTransactions: true },
  make: () => conformanceSubject(client, dbName),
});

testMongoDeployment({ name: 'replica set', test, client: () => client, db: dbName });
