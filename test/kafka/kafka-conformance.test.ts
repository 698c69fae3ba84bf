import { afterAll, beforeAll, describe, it } from 'vitest';
import { kafkaTransactions } from '../../src/adapters/kafka/index.js';
import { testTransactionContext } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { conformanceTarget, makeKafka } from './kafka-support.js';

const brokers = service('kafka');

// Kafka transactions are one at a time per producer, so requires_new inside a running
// transaction (and the suite's concurrent case, which runs them in parallel) is declared
// unsupported; kafka-transactions.test.ts shows concurrent calls queue and all succeed.
describe.skipIf(brokers === undefined)('kafka', () => {
  const kafka = makeKafka(brokers ?? '', 'txkit-conformance');
  const admin = kafka.admin();
  beforeAll(() => admin.connect());
  afterAll(() => admin.disconnect());

  testTransactionContext({
    name: 'kafka (kafkajs)',
    test: { describe, it },
    capabilities: { savepoints: false, concurrentTransactions: false },
    make: () => conformanceTarget(kafka, admin, (transactionalId) => kafkaTransactions(kafka, { transactionalId })),
  });
});
