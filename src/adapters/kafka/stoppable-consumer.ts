/**
 * A kafkajs consumer whose fetch loop cannot outlive its stop.
 *
 * kafkajs 2.2.x: when the broker list changes, the consumer's fetch manager stops its
 * fetchers and makes new ones for the new list. If the consumer is stopped (its runner
 * no longer running) between the two, nobody stops the new fetchers, and the runner
 * answers each of their fetches with `[]` at once because it is not running: they
 * loop on resolved promises forever, so no timer of the process runs again and the
 * stop never returns. The fetch manager asks the consumer's own cluster for the node
 * ids before it makes fetchers and before each fetch; here that question throws once
 * `disconnect()` has been called (txkit disconnects its consumers, it never stops one to
 * run it again), so such fetchers end at their first fetch and the runner, no longer
 * running, ends its loop.
 *
 * Applies to kafkajs' `Kafka` class (found by its private cluster factory); any other
 * client's consumer is returned as made.
 * @internal
 */

import { clusterFactoryOf } from './kafkajs-cluster.js';

/** The part of a consumer the guard wraps. */
interface StoppableLike {
  disconnect(): Promise<void>;
}

interface ClusterLike {
  getNodeIds(): number[];
}

/** Thrown into kafkajs' fetch manager of a stopped consumer; kafkajs logs it at debug level and ends its loop. */
export class ConsumerStoppedError extends Error {
  override readonly name = 'ConsumerStoppedError';
}

/** `kafka.consumer(config)`, guarded as the module describes when `kafka` is a kafkajs client. */
export function stoppableConsumer<C extends StoppableLike, Config>(kafka: { consumer(config: Config): C }, config: Config): C {
  const factory = clusterFactoryOf(kafka);
  if (factory === undefined) return kafka.consumer(config);
  let stopped = false;
  // The consumer's cluster is made by the client's factory; this view of the client hands it over guarded.
  const view = Object.create(kafka) as typeof kafka & Record<symbol, unknown>;
  view[factory.symbol] = (options: object): ClusterLike => {
    const cluster = factory.create(options) as ClusterLike;
    const nodeIds = cluster.getNodeIds;
    cluster.getNodeIds = () => {
      if (stopped) throw new ConsumerStoppedError('this consumer is stopping: it fetches no more');
      return nodeIds.call(cluster);
    };
    return cluster;
  };
  const consumer = view.consumer(config);
  const disconnect = consumer.disconnect;
  // Set before kafkajs' own stop begins (it marks its runner stopped in the same tick).
  consumer.disconnect = () => {
    stopped = true;
    return disconnect.call(consumer);
  };
  return consumer;
}
