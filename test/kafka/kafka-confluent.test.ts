// The same adapter on @confluentinc/kafka-javascript (the KafkaJS API on librdkafka). It is not a
// dependency of this repo: its install compiles librdkafka, so the global setup installs the version
// pinned by test/support/confluent/package-lock.json once into the txkit cache
// (scripts/services/confluent.mjs); TXKIT_CONFLUENT_KAFKA_MODULE names another installed copy.
import { describe, it } from 'vitest';
import { kafkaTransactions } from '../../src/adapters/kafka/index.js';
import type { KafkaConsumerFactoryLike, KafkaLike } from '../../src/adapters/kafka/index.js';
import { testTransactionContext } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { clientChecks, conformanceTarget, uniqueName, suiteKafka } from './kafka-support.js';

interface ConfluentModule {
  KafkaJS: { Kafka: new (config: object) => KafkaLike & KafkaConsumerFactoryLike; logLevel: { NOTHING: number } };
}

const brokers = service('kafka');
const modulePath = service('confluent-kafka');
let confluent: ConfluentModule | undefined;
if (modulePath !== undefined) {
  const mod = (await import(modulePath)) as { default?: ConfluentModule } & Partial<ConfluentModule>;
  confluent = mod.KafkaJS !== undefined ? (mod as ConfluentModule) : mod.default;
}

describe.skipIf(brokers === undefined || confluent === undefined)('kafka adapter on @confluentinc/kafka-javascript', () => {
  if (confluent === undefined || brokers === undefined) return;
  const { KafkaJS } = confluent;
  const ck = new KafkaJS.Kafka({ kafkaJS: { brokers: brokers.split(','), logLevel: KafkaJS.logLevel.NOTHING } });
  const { kafka, admin, closers } = suiteKafka(brokers, 'txkit-confluent-tests');
  const context = (transactionalId = uniqueName('ck')) => {
    const ctx = kafkaTransactions(ck, { transactionalId, client: 'confluent' });
    closers.push(() => ctx.close());
    return ctx;
  };

  testTransactionContext({
    name: 'kafka (@confluentinc/kafka-javascript)',
    test: { describe, it },
    capabilities: { savepoints: false, concurrentTransactions: false },
    // librdkafka connects and runs InitProducerId at the first begin (~70-400 ms here).
    make: () => conformanceTarget(kafka, admin, (transactionalId) => kafkaTransactions(ck, { transactionalId, client: 'confluent' }), { warm: true }),
  });

  it('aborted messages are invisible to read_committed (kafkajs and Java) and visible to read_uncommitted', () =>
    clientChecks.abortedInvisible(kafka, admin, () => context(), (r) => closers.push(() => r.close())));

  it('zombie fencing: the fenced producer gets FencedError, its transaction stays invisible, and its context refuses new ones', () =>
    clientChecks.zombieFenced(kafka, admin, (id) => context(id)));

  it('transactionalConsumer copies a topic exactly once with sendOffsets through the consumer', () =>
    clientChecks.consumerCopies(kafka, admin, ck, context(), (close) => closers.push(close)));
});
