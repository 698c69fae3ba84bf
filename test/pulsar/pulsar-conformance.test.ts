import { afterAll, describe, it } from 'vitest';
import { pulsarTransactions } from '../../src/adapters/pulsar/index.js';
import { testTransactionContext } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { TopicReader, uniqueTopic } from './pulsar-support.js';

const serviceUrl = service('pulsar');

describe.skipIf(serviceUrl === undefined)('pulsar', () => {
  const readers: TopicReader[] = [];
  afterAll(async () => {
    await Promise.all(readers.map((r) => r.close()));
  });

  // Each test gets its own context (its own client, as users make them) and topic; a
  // write is a keyed message in the transaction, a read the latest committed value of
  // that key as a downstream consumer sees it.
  testTransactionContext({
    name: 'pulsar (binary protocol)',
    test: { describe, it },
    capabilities: { savepoints: false, concurrentTransactions: true },
    timeoutMs: 60_000,
    make: async () => {
      const topic = uniqueTopic('conformance');
      const reader = await TopicReader.open(serviceUrl ?? '', topic);
      readers.push(reader);
      const context = pulsarTransactions({ serviceUrl: serviceUrl ?? '', operationTimeoutMs: 20_000 });
      // Connects the coordinator client and the topic's producer before the test: the suite's
      // deadline test counts reruns within 40 ms, which a first connection would use up.
      await context.withTransaction((tx) => tx.handle.send({ topic, messages: [{ key: 'txkit-warm-up', value: 'x' }] }));
      return {
        context,
        write: async (tx, key, value) => {
          await tx.handle.send({ topic, messages: [{ key, value }] });
        },
        read: async (key) => (await reader.caughtUp()).latest(key),
        cleanup: () => reader.close(),
      };
    },
  });
});
