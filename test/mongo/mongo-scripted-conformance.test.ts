/**
 * The conformance suite and the real-storage cases, with the real `mongodb`
 * driver against the scripted wire-protocol server (no mongod can run here).
 */
import type { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { testTransactionContext } from '../../src/testing/index.js';
import { testMongoDeployment } from './mongo-deployment-suite.js';
import { ScriptedMongoServer, conformanceSubject, scriptedClient } from './mongo-support.js';

let server: ScriptedMongoServer;
let client: MongoClient;

beforeAll(async () => {
  server = await new ScriptedMongoServer().start();
  client = scriptedClient(server);
  await client.connect();
});

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

testTransactionContext({
  name: 'mongodb (real driver, scripted server)',
  test: { describe, it },
  // Sessions are independent, so transactions can overlap; MongoDB has no savepoints.
  capabilities: { savepoints: false, concurrentTransactions: true },
  make: () => conformanceSubject(client, 'txkit'),
});

testMongoDeployment({ name: 'scripted server', test: { describe, it }, client: () => client, db: 'txkit' });
