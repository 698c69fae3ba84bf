/**
 * A kafkajs consumer disconnected while its fetch manager replaces its fetchers for a new
 * broker list, on the real broker. kafkajs 2.2.x makes the new fetchers after the runner has
 * stopped; the runner answers their fetches with [] at once, and they loop on resolved promises
 * forever (no timer runs again, disconnect() never returns). The consumers txkit makes
 * (kafkaSource, transactionalConsumer, a relay's position reads) come from stoppableConsumer,
 * whose disconnect makes those fetchers end at their first fetch.
 *
 * The broker list change is the one thing made up: the consumer's broker pool names a second
 * node (which leads no partition) from a chosen moment, and the disconnect comes exactly when
 * the fetch manager asks for the node ids to make its new fetchers. A loop is counted, not
 * waited out: past SPIN_LIMIT questions for the node ids the made-up pool throws, which ends it.
 */
import assert from 'node:assert/strict';
import type { Consumer, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { clusterFactoryOf } from '../../src/adapters/kafka/kafkajs-cluster.js';
import { stoppableConsumer } from '../../src/adapters/kafka/stoppable-consumer.js';
import { service } from '../support/services.js';
import { createTopics, makeKafka, uniqueName, waitUntil } from './kafka-support.js';

const brokers = service('kafka');
/** A consumer that fetches asks for the node ids once per fetch (50 ms or more apart); a loop asks this many times in a moment. */
const SPIN_LIMIT = 10_000;
/** The made-up node: no partition has it as leader, so a fetch from it asks the broker nothing. */
const PHANTOM_NODE = 9_999;

interface Scenario {
  /** The consumer under test; disconnected by the made-up pool. */
  consumer?: Consumer;
  /** From this moment the broker pool names the phantom node too. */
  phantom: boolean;
  /** Questions for the node ids since `phantom`. */
  asked: number;
  disconnected?: Promise<void>;
  spun: boolean;
}

/** `kafka` whose clusters' broker pools answer as `scenario` says. */
function withMadeUpBrokers(kafka: Kafka, scenario: Scenario): Kafka {
  const factory = clusterFactoryOf(kafka);
  assert.ok(factory, 'kafkajs has its private cluster factory');
  (kafka as unknown as Record<symbol, unknown>)[factory.symbol] = (options: object) => {
    const cluster = factory.create(options) as { brokerPool: { getNodeIds(): number[] } };
    const pool = cluster.brokerPool;
    const real = pool.getNodeIds.bind(pool);
    pool.getNodeIds = () => {
      if (!scenario.phantom) return real();
      scenario.asked += 1;
      // The first question after the change is a fetcher's check, which throws kafkajs' rebalance error;
      // the second is the fetch manager's, making the new fetchers: the consumer is disconnected right then.
      if (scenario.asked === 2 && scenario.consumer !== undefined) scenario.disconnected = scenario.consumer.disconnect();
      if (scenario.asked > SPIN_LIMIT) {
        scenario.spun = true;
        throw new Error('the fetchers loop without fetching');
      }
      return [...real(), PHANTOM_NODE];
    };
    return cluster;
  };
  return kafka;
}

describe.skipIf(brokers === undefined)('a kafkajs consumer disconnected while its fetch manager changes brokers', () => {
  const admin = makeKafka(brokers ?? '', 'txkit-stoppable-admin').admin();
  const topic = uniqueName('stoppable-consumer');

  beforeAll(async () => {
    await admin.connect();
    await createTopics(admin, [topic]);
  });
  afterAll(() => admin.disconnect());

  const cases = [
    { name: 'kafkajs alone loops (the fault reproduced)', guarded: false },
    { name: 'stoppableConsumer stops', guarded: true },
  ];
  for (const { name, guarded } of cases) {
    it(name, async () => {
      const scenario: Scenario = { phantom: false, asked: 0, spun: false };
      const kafka = withMadeUpBrokers(makeKafka(brokers ?? '', uniqueName('stoppable')), scenario);
      const config = { groupId: uniqueName('stoppable-group'), maxWaitTimeInMs: 50 };
      const consumer = guarded ? stoppableConsumer(kafka, config) : kafka.consumer(config);
      scenario.consumer = consumer;
      let fetching = false;
      consumer.on(consumer.events.FETCH_START, () => void (fetching = true));
      await consumer.connect();
      await consumer.subscribe({ topics: [topic] });
      await consumer.run({ eachMessage: async () => undefined });
      await waitUntil(() => fetching, 30_000, 'the consumer fetching');
      scenario.phantom = true;
      await waitUntil(() => scenario.disconnected !== undefined, 30_000, 'the fetch manager making new fetchers');
      await scenario.disconnected;
      assert.equal(scenario.spun, !guarded, `looped: ${scenario.spun}, after ${scenario.asked} questions for the node ids`);
      if (guarded) assert.ok(scenario.asked < 10, `${scenario.asked} questions for the node ids after the change`);
    }, 60_000);
  }
});
